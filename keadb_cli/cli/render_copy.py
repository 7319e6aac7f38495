"""How ``kea-db copy`` shows its result (a text table, or one JSON document)."""

from __future__ import annotations

from typing import Any

from keadb_cli import __version__
from keadb_cli.api import JSON_FORMAT
from keadb_cli.cli.render import _dumps, _out, emit_json, table


def copy_result(result: Any, *, as_json: bool) -> None:
    if as_json:
        emit_json(_dumps({"format": JSON_FORMAT, "kea_db_version": __version__,
                          **result.to_json()}))
        return
    doc = result.to_json()
    source, target = doc["source"], doc["target"]
    releases = doc["releases"]
    span = releases[0] if len(releases) == 1 else f"{releases[0]} to {releases[-1]}"
    _out(f"Copy {source['type']} {source['name']} (schema {source['schema']}) -> "
         f"{target['type']} {target['name']} (schema {target['schema']}), Kea "
         f"{span}{' (merge)' if result.merge else ''}")
    rows = [[name, str(t["copied"]), str(t["replaced"]), str(t["source_rows"]),
             str(t["target_rows"]), "yes" if t["subnet_counts_equal"] else "NO",
             "yes" if t["checksums_equal"] else "NO"]
            for name, t in doc["tables"].items()]
    table(["TABLE", "COPIED", "REPLACED", "SOURCE ROWS", "TARGET ROWS", "PER SUBNET EQUAL",
           "CHECKSUM EQUAL"], rows)
    comparison = doc["comparison"]
    _out(f"checksum: source {comparison['source_checksum']}, target "
         f"{comparison['target_checksum']}")
    _out(result.detail)
    rewritten = [t.name for t in result.stats if t.differences]
    _out("statistics: recounted in the same transaction; " + (
        f"rewrote {', '.join(rewritten)}" if rewritten else "every counter matched"))
    _out(f"{doc['seconds']:.1f} s")
