"""One backend object per server family, keyed by Kea's ``type`` value.

A backend holds its SQL and its behaviour: the lock, the privilege checks, the upgrade's
data traps, the catalog reader, verify's scratch build and flavour detection. Nothing
else in kea-db branches on "mysql" versus "postgresql": it asks the backend (alembic's
``DefaultImpl`` / ``MySQLImpl`` / ``PostgresqlImpl`` are the model).
"""

from __future__ import annotations

from keadb_cli.db.backends.base import LOCK_NAME, Backend
from keadb_cli.db.backends.mysql import MYSQL, MySQLBackend
from keadb_cli.db.backends.postgresql import POSTGRESQL, PostgreSQLBackend

__all__ = ["BACKENDS", "LOCK_NAME", "MYSQL", "POSTGRESQL", "Backend", "MySQLBackend",
           "PostgreSQLBackend", "backend_for"]

BACKENDS: dict[str, Backend] = {b.type: b for b in (MYSQL, POSTGRESQL)}


def backend_for(db_type: str) -> Backend:
    """The backend for a Kea ``type`` value; KeyError for memfile or anything unknown."""
    return BACKENDS[db_type]
