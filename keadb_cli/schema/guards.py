"""The checks an upgrade runs before any change, in one pipeline for ``upgrade`` and
``upgrade --plan``.

First the node: a standby, a read-only replica or a Galera node where DDL is not safe
takes no upgrade (:func:`writable_node`, run right after the state is read). Then, in
order: the privileges to change Kea's schema, other sessions on the database, rows a
step cannot convert, lease rows whose user context is not JSON, whether the server
has atomic DDL, and (on a primary, informational) the standbys that will replay the
steps, a synchronous one named. ``upgrade`` refuses
(:class:`~keadb_cli.errors.Refusal`) where a check fails; ``--plan`` runs the same checks
and reports what the upgrade would refuse as findings. The backend object
(:mod:`keadb_cli.db.backends`) holds each check's SQL.

Nothing here prints or exits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from keadb_cli.db.node import PRIMARY
from keadb_cli.errors import ExitCode, Refusal
from keadb_cli.kea.releases import Schema

if TYPE_CHECKING:
    from keadb_cli.db.cluster import ClusterSessions
    from keadb_cli.db.node import Node, Replicas
    from keadb_cli.db.plan import ConnectPlan
    from keadb_cli.db.session import Session

NOT_ATOMIC = ("the server ({server}) has no atomic DDL (MariaDB 10.6+, MySQL 8.0+): kea-db "
              "completes a run its client was cut from, but a server that crashes in the "
              "middle of a statement can leave that statement half done")

# Rows whose user context is not JSON: Kea's lease update triggers read it as JSON, so a
# step whose UPDATE rewrites the rows of a lease table fails on them (kea-admin 3.0.4 stops
# inside MySQL step 18 -> 19 with "Unexpected end of JSON text" on a lease6 row uploaded
# with an empty context). A step that only ALTERs the table fires no trigger: lease4 rows
# with such a context pass kea-admin's and kea-db's steps to 3.0 alike, and Kea 3.0 then
# updates and deletes them. From schema 30.0 on the triggers take a bad context as none
# (MariaDB and Oracle MySQL run 33.0 -> 34.0's lease UPDATEs over '' contexts): only
# steps up to 30.0 are checked. PostgreSQL's lease functions take such a context as no
# context (kea-admin 3.0.4 upgrades a 2.2 database whose leases have '' there): nothing
# to check.
_CONTEXT_TOLERANT = Schema(30, 0)  # the first schema whose triggers survive a bad context


class Step(Protocol):
    """What the checks need of one step of the chain."""

    @property
    def revision(self) -> str: ...

    @property
    def schema(self) -> Schema: ...

    @property
    def tables(self) -> tuple[str, ...]: ...  # tables the step rewrites (ALTER / UPDATE)

    @property
    def updated(self) -> tuple[str, ...]: ...  # tables whose rows an UPDATE rewrites


@dataclass
class Checked:
    """What the checks found that the run goes on with."""

    rows: dict[str, int] = field(default_factory=dict)  # row estimates per table
    bad_contexts: dict[str, list[str]] = field(default_factory=dict)  # to set to NULL
    replicas: Replicas | None = None  # a primary's standbys, which replay every step


def writable_node(node: Node, plan: ConnectPlan, *, command: str, verdict: str,
                  findings: list[str], report: bool) -> None:
    """Refuse a change on a node that takes no writes, naming its state and, when the
    server says, where the primary is. With ``report`` (--plan) it becomes a finding.

    Raises:
        Refusal: (not with ``report``) NODE_NOT_WRITABLE.
    """
    from keadb_cli.db.node import refusal_text

    if node.writable:
        return
    text = refusal_text(node, f"{plan.backend.display} {plan.where}", command)
    if report:
        findings.append(f"{text} (the upgrade refuses this)")
        return
    raise Refusal(verdict, ExitCode.NODE_NOT_WRITABLE, text)


def cluster(session: Session, plan: ConnectPlan, node: Node, *, findings: list[str],
            report: bool) -> ClusterSessions:
    """The sessions the lock and the other-sessions check use: on a Galera node, one on
    every node of the cluster (:meth:`~keadb_cli.db.backends.base.Backend.open_cluster`).
    With ``report`` (--plan) a cluster that cannot be reached is a finding, and the checks
    go on with this node alone.

    Raises:
        KeaDbError: (not with ``report``) a node cannot be known or reached.
    """
    from keadb_cli.db.cluster import ClusterSessions
    from keadb_cli.errors import KeaDbError

    try:
        return plan.backend.open_cluster(session, plan, node)
    except KeaDbError as err:
        if not report:
            raise
        findings.append(f"{err.message} (the upgrade refuses this)")
        return ClusterSessions(session)


def unreadable_node(node: Node, plan: ConnectPlan, *, command: str) -> None:
    """A read of the database failed before the node check ran: on a node that takes no
    writes (a Galera node outside the Primary component refuses to read tables too), the
    node is the reason, and the command is refused as :func:`writable_node` refuses it.
    Returns when the node is writable (the read's own error stands).

    Raises:
        Refusal: NODE_NOT_WRITABLE, the state unknown ("-").
    """
    writable_node(node, plan, command=command, verdict="-", findings=[], report=False)


def before_change(sessions: ClusterSessions, plan: ConnectPlan, steps: Sequence[Step], *,
                  verdict: str, findings: list[str], resumed_step: bool, atomic: bool,
                  allow_other_sessions: bool, fix_user_context: bool,
                  report: bool, node: Node | None = None) -> Checked:
    """Run every check before the first change of an upgrade; ``findings`` receives what
    they find. ``sessions``: the command's session and, on a cluster, one on each other
    node (:func:`cluster`); the other-sessions check reads them all, every other check the
    command's own. ``resumed_step``: the first step was begun by an interrupted run (its
    rows may be converted already). ``atomic``: the server has atomic DDL (or
    transactional DDL). ``node``: the server's role (a Galera node adds what each step's
    DDL does to the cluster). With ``report`` (--plan) nothing refuses: each refusal
    becomes a finding.

    Raises:
        Refusal: (not with ``report``) PRIVILEGES, OTHER_SESSIONS or DATA_TRAP.
    """
    session = sessions.own
    backend = plan.backend
    try:
        backend.check_privileges(session, plan, node)
    except Refusal as refusal:
        if not report:
            raise
        findings.append(f"{refusal.detail} (the upgrade refuses this)")
    checked = Checked()
    others = plan.backend.other_sessions(sessions)
    if report:
        findings.extend(others)
    elif others and not allow_other_sessions:
        findings.extend(others)
        where = _on_nodes(others, sessions)
        raise Refusal(verdict, ExitCode.OTHER_SESSIONS,
                      f"{len(others)} other session(s) on this database{where} (a Kea "
                      "server still running?): stop them, or give "
                      "--allow-other-sessions")
    checked.rows = row_estimates(session, plan)
    tables = set(checked.rows)
    # A resumed step may have converted its rows already: only steps yet to start.
    unstarted = steps[1:] if resumed_step else steps
    addresses, bad = data_traps(session, plan, steps, unstarted, tables)
    if report:
        findings.extend(f"{f} (the upgrade refuses them)" for f in addresses)
    elif addresses:
        findings.extend(addresses)
        raise Refusal(verdict, ExitCode.DATA_TRAP,
                      "lease or reservation addresses a step cannot convert would stop "
                      "the upgrade halfway: fix or delete the rows named in the findings")
    if report:
        for table, rows in bad.items():
            findings.append(f"{table}: user_context is not JSON in the rows of "
                            f"{', '.join(rows)}: the upgrade refuses them unless "
                            "--fix-user-context")
    elif bad and not fix_user_context:
        for table, rows in bad.items():
            more = " and more" if len(rows) > 10 else ""
            findings.append(f"{table}: user_context is not JSON in the rows of "
                            f"{', '.join(rows[:10])}{more}")
        raise Refusal(verdict, ExitCode.DATA_TRAP,
                      "lease rows whose user context is not JSON would stop the upgrade "
                      "halfway (Kea's lease triggers parse it): fix them, or give "
                      "--fix-user-context to set them to NULL (no context) first")
    checked.bad_contexts = bad
    if not atomic:
        findings.append(NOT_ATOMIC.format(server=session.server))
    if node is not None and node.galera is not None:
        toi = toi_findings(node.galera.cluster_size, steps, checked.rows)
        findings.extend(toi if report else toi[:1])  # a run: the cluster-wide note alone
    if node is not None and node.role == PRIMARY and steps:
        checked.replicas = plan.backend.read_replicas(session)
        if checked.replicas is not None:
            findings.extend(checked.replicas.findings())
    return checked


def _on_nodes(others: list[str], sessions: ClusterSessions) -> str:
    """", on node(s) a, b of the cluster's N" when the sessions are a cluster's."""
    if not sessions.peers:
        return ""
    nodes = [a for a in sessions.addresses() if any(o.startswith(f"node {a}: ") for o in others)]
    return f", on node(s) {', '.join(nodes)} of the cluster's {sessions.nodes}"


TOI = ("Galera: each step's DDL runs in total order isolation (TOI): while one of its "
       "statements runs, every node of the cluster ({nodes}) blocks writes to the database, "
       "not only this one, so Kea servers writing through any node wait for it")


def toi_findings(cluster_size: int | None, steps: Sequence[Step],
                 rows: dict[str, int]) -> list[str]:
    """What a Galera cluster feels of the steps: each step's DDL blocks writes on every
    node while it runs (TOI), for as long as it rewrites its tables (``rows``: about how
    many each holds)."""
    if not steps:
        return []
    nodes = f"{cluster_size} nodes" if cluster_size else "all its nodes"
    out = [TOI.format(nodes=nodes)]
    for step in steps:
        rewrites = ", ".join(f"{t} (~{rows.get(t, 0)} rows)" for t in step.tables)
        out.append(f"Galera TOI: {step.revision} (schema {step.schema}) blocks writes on "
                   f"every node while it runs; "
                   + (f"it rewrites {rewrites}" if rewrites else "it rewrites no table"))
    return out


def row_estimates(session: Session, plan: ConnectPlan) -> dict[str, int]:
    return plan.backend.row_estimates(session)


def data_traps(session: Session, plan: ConnectPlan, steps: Sequence[Step],
               unstarted: Sequence[Step], tables: set[str],
               ) -> tuple[list[str], dict[str, list[str]]]:
    """(findings for rows a step yet to start cannot convert, the lease rows per table a
    step would trip over): rows whose address a step cannot convert (the backend's
    ``address_traps``), and rows whose user context is not JSON in each lease table whose
    rows the steps UPDATE under triggers that parse the context strictly (steps to schemas
    up to 30.0). Read in one scan of each big table where the backend screens them."""
    rewritten = {t for s in steps if s.schema <= _CONTEXT_TOLERANT for t in s.updated}
    return plan.backend.data_traps(session, {s.revision for s in unstarted}, rewritten, tables)
