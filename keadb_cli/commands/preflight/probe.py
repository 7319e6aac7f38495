"""One database, checked once: log in as Kea would (waiting for a server that is still
starting when asked), read its schema state, check the privileges each role that uses it
needs, and ask test-tls what its session really is. Read-only: every statement runs in a
read-only transaction that is rolled back, and privileges are asked of the server's own
privilege functions and views.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keadb_cli.commands.preflight.model import Check, Status, fail, passed, skipped, warn
from keadb_cli.commands.test_tls.files import DEFAULT_WARN_DAYS
from keadb_cli.db.plan import ConnectPlan, plan_for
from keadb_cli.errors import DeniedError, ExitCode, KeaDbError, QueryError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Release, Schema

if TYPE_CHECKING:
    from keadb_cli.commands.test_tls.check import TlsResult
    from keadb_cli.db.node import Node
    from keadb_cli.db.session import Session
    from keadb_cli.db.session_kit import Endpoint

# Login failures that heal (keadb_cli.db.retry.HEALING) are retried; never DENIED, a TLS
# failure, a version verdict, bad settings.


@dataclass(frozen=True)
class Usage:
    """How an entry uses a database: its role and whether Kea only reads it."""

    role: str  # lease, hosts, config
    readonly: bool

    @property
    def writes(self) -> bool:
        return not self.readonly


@dataclass(frozen=True)
class State:
    """The schema state a session found."""

    found: Schema | None
    reason: str  # why there is no usable version ("" for an empty database)
    objects: tuple[str, ...] = ()


@dataclass
class Probe:
    """What one database said, for every entry that names it."""

    login: Check
    attempts: int = 1
    node: Node | None = None
    node_error: Check | None = None
    state: State | None = None
    state_error: Check | None = None
    privileges: dict[Usage, Check] = field(default_factory=dict)
    tls: Check | None = None
    tls_days_left: int | None = None  # the server certificate's, when the probe saw one
    library: str = ""
    max_connections: int | None = None  # the server's limit (fleet rules), None: unknown
    answered: Endpoint | None = None  # the host that answered (of a host list)


def login(
    plan: ConnectPlan,
    wait: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Session | None, Check, int]:
    """Open a session as Kea would; with ``wait`` seconds, retry what can heal until then.

    Returns the session (None on failure), the ``login`` check and the number of attempts.
    """
    from keadb_cli.db.retry import HEALING, Waiter
    from keadb_cli.db.session import open_session

    waiter = Waiter(wait, clock, sleep)
    while True:
        waiter.attempt()
        attempts = waiter.attempts
        try:
            session = open_session(plan)
        except DeniedError as err:
            return None, fail("login", ExitCode.DENIED, err.message,
                              err.reason_code or "denied"), attempts
        except KeaDbError as err:
            if err.reason_code in HEALING and waiter.again():
                continue
            code = err.exit_code if err.exit_code is not ExitCode.INTERNAL else (
                ExitCode.UNREACHABLE)
            after = f" (after {attempts} attempts, --wait-timeout {wait:g} s)" if wait else ""
            return None, fail("login", code, err.message + after,
                              err.reason_code or "unreachable"), attempts
        how = f"logged in with {session.library}"
        if plan.host_list:  # which host of the list answered (libpq's PQhost / PQport)
            how += f" at {session.answered} (host list {plan.host})"
        if session.fallback:
            return session, warn("login", f"{how}, not Kea's client library: "
                                          f"{session.fallback}", "fallback"), attempts
        waited = f" after {attempts} attempts" if attempts > 1 else ""
        return session, passed("login", how + waited), attempts


def read_state(session: Session, plan: ConnectPlan) -> State:
    """``schema_version`` as Kea reads it (check-version's reader).

    Raises:
        QueryError, KeaDbError: as :func:`keadb_cli.commands.check_version.read_state`.
    """
    from keadb_cli.schema.state import read_state as read

    found, reason, objects = read(session, plan)
    return State(found, reason, objects)


# -- privileges --------------------------------------------------------------------------

_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")


# The tables a role's own statements use, listed first when something is missing.
_ROLE_PREFIX = {"lease": "lease", "hosts": "host", "config": "dhcp"}


def _listed(names: list[str], usage: Usage, limit: int = 6) -> str:
    prefix = _ROLE_PREFIX.get(usage.role, "")
    names = sorted(names, key=lambda n: (not n.startswith(prefix), n))
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def privileges(session: Session, plan: ConnectPlan, usage: Usage, user: str) -> Check:
    """Whether ``user`` may do what Kea does with a database of this ``usage``."""
    backend = plan.backend
    wanted = _WRITE if usage.writes else ("SELECT",)
    session.query(backend.read_only_begin)
    try:
        missing = backend.runtime_missing(session, wanted, usage.writes,
                                          lambda names: _listed(names, usage))
        role = backend.active_role(session) if missing else ""
    finally:
        if not session.closed:
            session.query("ROLLBACK")
    what = "read and write its tables and run its routines" if usage.writes else (
        "read its tables")
    kind = f"{'readonly ' if usage.readonly else ''}{usage.role} backend"
    if not missing:
        return passed("privileges", f"{user} may {what} ({kind})")
    text = f"{user} lacks {'; '.join(missing)}: a {kind} needs to {what}"
    if role:
        return warn("privileges", f"{text}, unless role {role} grants it (role grants are "
                                  "not visible to this check)", "role-grants")
    return fail("privileges", ExitCode.PRIVILEGES, text, "missing-privileges")


# -- the node ------------------------------------------------------------------------------


def node_check(probe: Probe, usage: Usage, where: str) -> Check:
    """Whether Kea can use the server for ``usage``: an entry Kea writes to fails on a
    standby, a read-only replica or a Galera node outside the Primary component or not
    Synced; a readonly hosts entry passes there."""
    node = probe.node
    if node is None:
        return probe.node_error or skipped("node", "not checked: no session")
    kind = f"{'readonly ' if usage.readonly else ''}{usage.role} backend"
    if node.role == "unknown":
        return warn("node", f"the server's role is unknown ({node.note})", "node-unknown")
    problem = node.write_problem(ddl=False)
    if not problem:
        return passed("node", f"{node.brief()}: Kea may write here ({kind})")
    text = f"{where} {problem}"
    if not usage.writes:
        return passed("node", f"{text}; a {kind} only reads: Kea can use it")
    return fail("node", ExitCode.NODE_NOT_WRITABLE,
                f"{text}: a {kind} writes, and Kea fails at its first write there; point it "
                "at the primary", "node-not-writable")


# -- TLS -----------------------------------------------------------------------------------


def tls_check(result: TlsResult, access: DbAccess, *, require_tls: bool,
              require_verify: bool, warn_days: int = DEFAULT_WARN_DAYS) -> Check:
    """test-tls's verdict as a preflight check: the policies fail, the rest informs; a
    server certificate that expires within ``warn_days`` days (or has expired) makes a
    passing check a warning and is said in any other."""
    check = _tls_verdict_check(result, access, require_tls=require_tls,
                               require_verify=require_verify)
    days = result.days_left
    cert = result.server_certificate
    if days is None or cert is None or days > warn_days or check.status is Status.SKIP:
        return check
    when = f"{cert.not_after:%Y-%m-%d}"
    note = (f"the server's certificate expired on {when}" if days < 0 else
            f"the server's certificate expires on {when} ({days} days left, --warn-days "
            f"{warn_days}): Kea fails at its next reconnect after that")
    if check.status is Status.PASS:
        return warn("tls", f"{check.detail}; {note}", "cert-expiring")
    return dataclasses.replace(check, detail=f"{check.detail}; {note}")


def _tls_verdict_check(result: TlsResult, access: DbAccess, *, require_tls: bool,
                       require_verify: bool) -> Check:
    from keadb_cli.commands.test_tls.policy import Verdict

    verdict, reason = result.verdict, result.reason
    text = f"{verdict.value}: {reason}"
    if result.failures:
        return fail("tls", ExitCode.TLS_POLICY, f"{text}; {'; '.join(result.failures)}",
                    "tls-policy")
    if verdict is Verdict.VERIFIED:
        return passed("tls", text)
    if verdict in (Verdict.TLS_REFUSED, Verdict.HANDSHAKE_FAILED):
        return fail("tls", result.exit_code, text, result.reason_code.value)
    if verdict in (Verdict.UNREACHABLE, Verdict.DENIED):
        return skipped("tls", f"not checked: {text}")
    if require_verify or (require_tls and verdict is Verdict.CLEARTEXT):
        flag = "--require-verify" if require_verify else "--require-tls"
        return fail("tls", ExitCode.TLS_POLICY, f"{text} ({flag})", "tls-policy")
    asked = access.trust_anchor if verdict is Verdict.ENCRYPTED_UNVERIFIED else (
        access.tls_requested)
    if asked:
        return warn("tls", text, result.reason_code.value)
    return passed("tls", text)


# -- one database ---------------------------------------------------------------------------


def probe_database(
    access: DbAccess,
    usages: list[Usage],
    release: Release | None,
    *,
    wait: float | None,
    require_tls: bool,
    require_verify: bool,
    warn_days: int = DEFAULT_WARN_DAYS,
    env: dict[str, str] | None = None,
) -> Probe:
    """Every check of one database, for each way the entries use it.

    Raises:
        SettingsError: the access cannot be used as given (a TLS file missing...).
    """
    plan = plan_for(access, env).for_reads()  # preflight only reads: the read deadline
    session, login_check, attempts = login(plan, wait)
    probe = Probe(login=dataclasses.replace(login_check, attempts=attempts), attempts=attempts)
    if session is None:
        return probe
    probe.library = session.library
    probe.answered = session.answered
    plan = plan.answered_by(session.answered)  # a host list: messages name the host
    try:
        try:
            probe.node = plan.backend.read_node(session)
        except QueryError as err:
            probe.node_error = warn("node", f"cannot read the server's role: {err.message}",
                                    "query-failed")
        try:
            probe.state = read_state(session, plan)
        except QueryError as err:
            probe.state_error = fail("schema", ExitCode.DENIED,
                                     f"cannot read schema_version: {err.message}",
                                     err.reason_code or "query-failed")
        probe.max_connections = plan.backend.max_connections(session)
        if probe.state is not None and probe.state.found is not None:
            for usage in usages:
                try:
                    probe.privileges[usage] = privileges(session, plan, usage,
                                                         plan.user or "the user")
                except QueryError as err:
                    probe.privileges[usage] = fail(
                        "privileges", ExitCode.PRIVILEGES,
                        f"cannot read the privileges: {err.message}", "query-failed")
    except KeaDbError as err:  # the session broke or a statement timed out
        probe.state_error = fail("schema", ExitCode.UNREACHABLE, err.message,
                                 err.reason_code or "connection-lost")
    finally:
        session.close()
    probe.tls, probe.tls_days_left = _tls(access, release, require_tls=require_tls,
                                          require_verify=require_verify, warn_days=warn_days)
    return probe


def _tls(access: DbAccess, release: Release | None, *, require_tls: bool,
         require_verify: bool, warn_days: int) -> tuple[Check, int | None]:
    from keadb_cli.commands.test_tls.check import Policy, run

    policy = Policy(require_tls=require_tls, require_verify=require_verify)
    try:
        result = run(access, release, policy, warn_days)
    except KeaDbError as err:
        return fail("tls", err.exit_code, err.message, err.reason_code), None
    return tls_check(result, access, require_tls=require_tls, require_verify=require_verify,
                     warn_days=warn_days), result.days_left
