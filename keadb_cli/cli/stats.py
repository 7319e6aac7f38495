"""`kea-db stats check` and `kea-db stats recount`: options, one core call, the view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from keadb_cli.cli.main import _accesses, db_options, json_option
from keadb_cli.errors import ExitCode, worst_exit


@click.group("stats")
def stats_group() -> None:
    """Check Kea's lease statistics tables against the leases, and recount them.

    Kea's triggers keep counters of the leases per subnet, pool and client class; a
    restore, a trigger disabled for a bulk load or a manual edit leaves them wrong, and
    Kea then reports wrong statistics and enforces lease limits on wrong numbers.

    \b
    Example:
      kea-db stats check --config /etc/kea/kea-dhcp4.conf
      kea-db stats recount --config /etc/kea/kea-dhcp4.conf --plan
    """


@stats_group.command("check")
@db_options
@json_option
def check_cmd(as_json: bool, **opts: Any) -> int:
    """Compare every statistics table with a recount of the lease tables.

    Tables: lease4_stat, lease6_stat, the pool counters (lease4_pool_stat,
    lease6_pool_stat) and the client-class counters (lease4_stat_by_client_class,
    lease6_stat_by_client_class), those the schema has. They are counted as Kea's triggers
    count them: states assigned and declined (lease6_stat also registered from schema
    29.0), classes from user_context's ISC.client-classes for assigned leases only. A
    counter at 0 equals no row. Every difference is named (table, subnet, pool, lease
    type, state or class) with both numbers; exit 53 (STATS_MISMATCH) when there is one.
    Read-only: one read-only transaction, rolled back.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db stats check --type postgresql --host db1 \\
          --user kea --name kea --json
    """
    from keadb_cli.commands.stats import check_all

    results = check_all(_accesses(opts))
    _render(results, as_json=as_json, title="Lease statistics against a recount")
    return int(worst_exit(r.exit_code for r in results))


@stats_group.command("recount")
@db_options
@click.option("--plan", "plan_only", is_flag=True,
              help="Change nothing: print the rows each table would gain, change and lose.")
@json_option
def recount_cmd(plan_only: bool, as_json: bool, **opts: Any) -> int:
    """Rewrite the statistics tables as `kea-admin stats-recount` does, in one transaction.

    The database's schema version says which Kea release's rules apply (it must be the
    schema of a release kea-db knows; EMPTY, FOREIGN and unknown schemas are refused). The
    subnet counters and, where the schema has them, the pool counters are deleted and
    refilled with kea-admin's rows; the client-class counters are left alone, as
    kea-admin leaves them (`stats check` still compares them). The lease rows counted are
    locked until the end, so Kea's lease writes wait (PostgreSQL: the lease tables in
    SHARE mode). Refuses a readonly entry and a server that takes no writes.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db stats recount --type mysql --host db1 \\
          --user kea --name kea --plan
    """
    from keadb_cli.commands.stats import recount_all

    results = recount_all(_accesses(opts), plan_only=plan_only)
    title = "Lease statistics recount" + (" (plan: nothing changed)" if plan_only else "")
    _render(results, as_json=as_json, title=title)
    return int(worst_exit(r.exit_code for r in results))


def _render(results: Sequence[Any], *, as_json: bool, title: str) -> None:
    from keadb_cli.cli import render
    from keadb_cli.text import shown

    if as_json:
        render.emit_json(render.json_document("results", [r.to_json() for r in results]))
        return
    # A backend kea-db cannot act on (not a Kea schema, unreachable, refused): one line
    # on stderr each, `kea-db: error: ...`.
    failed = [r for r in results if r.exit_code not in (ExitCode.OK, ExitCode.STATS_MISMATCH)]
    for r in failed:
        render.error(f"{r.access.path or r.access.label()}: {r.verdict}: {r.detail}")
    shown_results = [r for r in results if r not in failed]
    if not shown_results:
        return
    rows = [[r.verdict, r.access.path or r.access.type or "?",
             r.access.label().split(" ", 1)[1], str(r.schema) if r.schema else "-", r.detail]
            for r in shown_results]
    render.table(["VERDICT", "BACKEND", "DATABASE", "SCHEMA", "DETAIL"], rows, title=title)
    for r in shown_results:
        changed = [t for t in r.tables if t.rewritten]
        if changed:
            render.lines([f"  {t.name}: {t.added} added, {t.changed} changed, "
                          f"{t.removed} removed, {t.unchanged} unchanged ({t.rows} -> "
                          f"{t.recount_rows} rows)" for t in changed])
        render.lines([f"  {shown(d.line(), 400)}" for d in r.differences]
                     if r.command == "check" else [])
