"""``kea-db test-tls``: is this connection, opened the way Kea X.Y opens it, encrypted and
verified?

Three steps, each usable alone, and :func:`run` strings them together:

1. :func:`kea_plan` - what Kea X.Y really does with the entry's TLS keys on this backend
   (PostgreSQL before 3.1 drops them, so libpq's defaults apply; MySQL asks for TLS but keeps
   a cleartext session when the server has none).
2. Two independent signals: the wire probe (:func:`keadb_cli.commands.test_tls.probe.probe`: the
   protocol's TLS upgrade and a handshake, certificate chain included) and the session check
   (:func:`check_session`: log in as Kea would - with Kea's own C client library, libpq or
   libmariadb, through ctypes when it loads, else with psycopg / PyMySQL - and read what the
   server says of this session: ``pg_stat_ssl`` / ``Ssl_version`` + ``Ssl_cipher``).
3. :func:`decide` - one verdict from both signals, the Kea plan, the certificate file
   findings and the CI policy flags; disagreements between the signals are reported.

Nothing here prints or exits; client libraries and drivers are loaded only by
:func:`check_session`, ``ssl`` and ``cryptography`` only when there is TLS to look at.
"""

from __future__ import annotations

import threading

from keadb_cli import errors
from keadb_cli.commands.test_tls.files import (
    DEFAULT_WARN_DAYS,
    check_tls_files,
)
from keadb_cli.commands.test_tls.policy import Policy, Verdict, parse_min_tls
from keadb_cli.commands.test_tls.probe import WireReport, probe
from keadb_cli.commands.test_tls.session import SessionReport, check_session
from keadb_cli.commands.test_tls.verdict import TlsResult, decide
from keadb_cli.db.plan import ConnectPlan
from keadb_cli.errors import (
    ExitCode,
    SettingsError,
)
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.tls_rules import KeaPlan, ReleaseTuple, kea_plan

__all__ = ["KeaPlan", "Policy", "SessionReport", "TlsResult", "Verdict", "check_session",
           "decide", "kea_plan", "parse_min_tls", "run", "run_all", "worst_exit"]


def _session_into(box: list[SessionReport], plan: ConnectPlan, via: str) -> None:
    try:
        box.append(check_session(plan, via=via))
    except Exception as exc:  # check_session reports its failures; this is a bug
        box.append(
            SessionReport(
                connected=False, error=f"the session check failed: {exc}", failure="error"
            )
        )


def _probe_into(box: list[WireReport], plan: ConnectPlan, trust_anchor: str | None) -> None:
    try:
        box.append(probe(plan, trust_anchor=trust_anchor))
    except Exception as exc:  # a bug in the probe must not hide the session's answer
        box.append(WireReport(error=f"the wire probe failed: {exc}", failure="error"))


def run(
    access: DbAccess,
    release: ReleaseTuple | None = None,
    policy: Policy | None = None,
    warn_days: int = DEFAULT_WARN_DAYS,
    *,
    env: dict[str, str] | None = None,
    via: str = "auto",
) -> TlsResult:
    """test-tls for one SQL access entry: file checks, Kea's plan, both signals, a verdict.

    ``release`` is the Kea release whose rules apply (None: the newest); ``env`` supplies
    ``PGSSLMODE`` (default: ``os.environ``); ``via`` picks the session check's client (see
    :func:`check_session`). The probe and the session run in two threads.

    Raises:
        SettingsError: the entry cannot be tried at all (not an SQL backend, no name...).
    """
    if access.type not in ("mysql", "postgresql"):
        raise SettingsError(f"test-tls needs a mysql or postgresql entry, got {access.type!r}")
    kea = kea_plan(access, release, env)
    # Both signals wait on the network (and the C client library releases the GIL while it
    # connects), so they run side by side while this thread checks the files. With a host
    # list, the probe waits for the session: it goes to the host that answered libpq (the
    # first of the list when none did), which target_session_attrs may have chosen.
    wires: list[WireReport] = []
    sessions: list[SessionReport] = []
    listed = kea.plan.host_list
    session_worker = threading.Thread(target=_session_into, args=(sessions, kea.plan, via),
                                      daemon=True)

    def probe_after_session() -> None:
        if listed:
            session_worker.join()
            answered = sessions[0].answered
            host = answered.host if answered is not None else kea.plan.hosts[0]
            _probe_into(wires, kea.plan.one_host(host), access.trust_anchor)
        else:
            _probe_into(wires, kea.plan, access.trust_anchor)

    workers = [session_worker, threading.Thread(target=probe_after_session, daemon=True)]
    for worker in workers:
        worker.start()
    findings = check_tls_files(access, warn_days=warn_days)
    for worker in workers:
        worker.join()
    wire, session = wires[0], sessions[0]
    return decide(access, kea, wire, session, policy=policy, findings=findings, warn_days=warn_days)


# From the worst: the exit code of a run over several backends is that of its worst result.
def worst_exit(results: list[TlsResult]) -> ExitCode:
    """The run's exit code: the worst result in the order every command uses."""
    return errors.worst_exit(r.exit_code for r in results)


def run_all(
    accesses: list[DbAccess],
    release: ReleaseTuple | None,
    policy: Policy,
    warn_days: int = DEFAULT_WARN_DAYS,
) -> list[TlsResult]:
    """test-tls for every access entry, in order."""
    return [run(a, release, policy, warn_days) for a in accesses]
