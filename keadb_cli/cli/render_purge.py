"""How ``kea-db purge`` shows its results (text tables, or one JSON document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keadb_cli.cli.render import emit_json, json_document, table


def purge_results(results: Sequence[Any], *, plan_only: bool, as_json: bool) -> None:
    if as_json:
        emit_json(json_document("results", [r.to_json() for r in results],
                                plan=plan_only))
        return
    table(["VERDICT", "BACKEND", "DATABASE", "SCHEMA", "DETAIL"],
          [[r.verdict, r.access.path or r.access.type or "?",
            r.access.label().split(" ", 1)[1], str(r.found) if r.found else "-", r.detail]
           for r in results],
          title="Purge plan (nothing changed)" if plan_only else "Purge")
    rows = [[r.access.label().split(" ", 1)[1], t.table, f"{t.days:g}", str(t.older),
             str(t.to_delete if plan_only else t.deleted), str(t.kept),
             "-" if plan_only else str(t.batches)]
            for r in results for t in r.tables]
    if rows:
        table(["DATABASE", "TABLE", "DAYS", "OLDER", "TO DELETE" if plan_only else "DELETED",
               "KEPT (NEWEST)", "BATCHES"], rows)
