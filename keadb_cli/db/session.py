"""The one way kea-db opens a database session.

Every command logs in through the C client library Kea itself links, called with ctypes:
libpq for PostgreSQL, MariaDB Connector/C (libmariadb) for MySQL. Passwords (``.pgpass``,
``PGPASSWORD``), ``PGSSL*``, TLS defaults and error texts are then the library's, as in
Kea. Only when that library cannot be loaded does kea-db use the stack's drivers (psycopg,
which ships its own libpq; PyMySQL), and the session says so in :attr:`Session.fallback`.
A refusal for safety on the first path is final: it is never retried through a driver.

Every session is bounded: each statement has a server-side timeout and a client-side
deadline, results are capped in rows and bytes, and Ctrl-C cancels the running statement
on the server before it propagates (:mod:`keadb_cli.db.session_kit`).
"""

from __future__ import annotations

from keadb_cli.db.plan import ConnectPlan
from keadb_cli.db.session_kit import Row as Row
from keadb_cli.db.session_kit import Session as Session


def open_session(plan: ConnectPlan) -> Session:
    """Log in as Kea would, with Kea's own client library for the plan's backend.

    Raises:
        UnreachableError, DeniedError, TlsError, InsecureAuthError: with the library's
            words, made printable, never the password.
    """
    import importlib

    library = importlib.import_module(plan.backend.library_module)
    if library.load(plan.backend.soname) is not None:
        session: Session = library.connect(plan)
        return session
    from keadb_cli.db import drivers

    return drivers.connect(plan, f"{plan.backend.soname} cannot be loaded")
