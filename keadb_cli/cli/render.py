"""Output: one JSON document, a rich table on a terminal, or plain text when piped.

stdout carries results; stderr carries errors and warnings. rich is imported only when a
terminal will show its output, so piped runs (CI) pay nothing for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from keadb_cli import __version__
from keadb_cli.api import JSON_FORMAT
from keadb_cli.text import redact, redact_json, shown

if TYPE_CHECKING:
    from keadb_cli.commands.check_version import VersionResult
    from keadb_cli.commands.settings import Target
    from keadb_cli.kea.releases import Release

PROG = "kea-db"

VERDICT_STYLE = {
    "MATCH": "bold green",
    "VERIFIED": "bold green",
    "initialized": "bold green",
    "none": "green",
    "EMPTY": "yellow",
    "BEHIND": "bold yellow",
    "ENCRYPTED-UNVERIFIED": "bold yellow",
    "AHEAD": "bold red",
    "FOREIGN": "bold red",
    "CLEARTEXT": "bold red",
    "TLS-REFUSED": "bold red",
    "HANDSHAKE-FAILED": "bold red",
    "refused": "bold red",
    "DENIED": "bold red",
    "UNREACHABLE": "bold red",
    "pass": "green",
    "warn": "bold yellow",
    "fail": "bold red",
    "skip": "dim",
    "CLEAN": "bold green",
    "DRIFT": "bold red",
    "UNVERIFIED": "bold yellow",
}


def use_rich(stream: IO[str]) -> bool:
    """Pretty output only on a terminal (NO_COLOR and TERM=dumb keep it plain-coloured)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _console(stream: IO[str]) -> Any:
    from rich.console import Console

    no_color = "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"
    return Console(file=stream, no_color=no_color, highlight=False, soft_wrap=False)


# Messages and table cells are built from structured values in which no password has a
# place. What came from a server or a file is shown with control characters escaped
# (keadb_cli.text.shown), and on a terminal it is never read as rich markup. A server may
# still echo the password in its own text: shown() replaces every password kea-db kept with
# ***, and so does every write below, once more, on each value (a JSON string, a table cell,
# a line), never on the layout around it (JSON syntax, padding, "kea-db: error:").
MESSAGE_LIMIT = 2000  # characters of one error or warning line
CELL_LIMIT = 300  # characters of one table cell


def error(message: str) -> None:
    """One line on stderr: ``kea-db: error: ...``."""
    sys.stderr.write(f"{PROG}: error: {shown(message, MESSAGE_LIMIT)}\n")


def warning(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {shown(message, MESSAGE_LIMIT)}\n")


def _dumps(doc: dict[str, Any]) -> str:
    import json  # only for --json: piped human output does not pay for it

    return json.dumps(redact_json(doc), indent=2, sort_keys=False)


def json_document(key: str, items: list[dict[str, Any]], **extra: Any) -> str:
    doc: dict[str, Any] = {"format": JSON_FORMAT, "kea_db_version": __version__}
    doc.update(extra)
    doc[key] = items
    return _dumps(doc)


def api_result(result: Any, *, as_json: bool, human: Any) -> None:
    """A :class:`keadb_cli.api.Result`: its JSON document, or ``human()``'s view; the Kea
    configuration file's warnings on stderr first."""
    for line in result.warnings:
        warning(line)
    if as_json:
        emit_json(_dumps(result.to_json()))
    else:
        human()


def emit_json(text: str) -> None:
    """The JSON document (json.dumps escapes every control character)."""
    sys.stdout.write(text + "\n")


def _out(line: str) -> None:
    """One line of text on stdout, a kept password in it starred."""
    sys.stdout.write(redact(line) + "\n")


def _plain_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def table(
    headers: list[str], rows: list[list[str]], *, title: str = "", style_col: int = 0
) -> None:
    """A table on stdout: rich on a terminal, aligned plain text otherwise."""
    out = sys.stdout
    rows = [[shown(cell, CELL_LIMIT) for cell in row] for row in rows]
    if not use_rich(out):
        if title:
            out.write(shown(title, CELL_LIMIT) + "\n")
        out.write(_plain_table(headers, rows) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    # Text objects, never markup strings: "[/]" or "[link=...]" in a cell stays text.
    t = Table(title=Text(shown(title, CELL_LIMIT)) if title else None, title_justify="left",
              header_style="bold")
    for h in headers:
        t.add_column(h, overflow="fold")
    for row in rows:
        style = VERDICT_STYLE.get(row[style_col], "")
        t.add_row(*(Text(cell, style=style if i == style_col else "")
                    for i, cell in enumerate(row)))
    _console(out).print(t)


def lines(text_lines: list[str]) -> None:
    for line in text_lines:
        _out(line)


# --- command views -------------------------------------------------------------------


def version_results(results: Sequence[VersionResult], target: Target | None) -> None:
    headers = ["VERDICT", "BACKEND", "DATABASE", "FOUND", "EXPECTED", "DETAIL"]
    rows = []
    for r in results:
        backend = r.access.path or r.access.type or "?"
        if r.access.path:
            backend += f" ({r.access.type})"
        detail = r.detail + _node_note(r.node) + answered_note(r.access.host, r.answered)
        if r.tables:
            listed = ", ".join(r.tables[:8]) + (" ..." if len(r.tables) > 8 else "")
            detail += f": {listed}"
        rows.append(
            [
                r.verdict.value,
                backend,
                r.access.label().split(" ", 1)[1],
                str(r.found) if r.found else "-",
                str(r.expected) if r.expected else "-",
                detail,
            ]
        )
    table(headers, rows, title=f"Expected schema from {target.source if target else '?'}")
    for r in results:
        for w in r.warnings:
            warning(f"{r.access.path or r.access.label()}: {w}")


def _node_note(node: Any) -> str:
    """The server's role after a detail, when it is not a plain primary."""
    return "" if node is None or node.role == "primary" else f" (node: {node.brief()})"


def answered_note(host: str | None, answered: Any) -> str:
    """Which host of a host list (``host`` with a comma) answered, after a detail."""
    return f" (answered: {answered})" if answered is not None and "," in (host or "") else ""


def release_map(rows: Sequence[Any], *, as_json: bool) -> None:
    """``kea-db versions``: rows of :class:`keadb_cli.commands.init.ReleaseSchemas`."""
    if as_json:
        emit_json(json_document("releases", [r.to_json() for r in rows]))
        return
    table(
        ["KEA", "MYSQL", "POSTGRESQL", "INIT BUILDS"],
        [
            [
                str(r.release),
                str(r.schemas["mysql"]),
                str(r.schemas["postgresql"]),
                ", ".join(r.buildable) or "-",
            ]
            for r in rows
        ],
    )


def init_results(results: Sequence[Any], target: Target | None) -> None:
    rows = []
    for r in results:
        backend = r.access.path or r.access.type or "?"
        rows.append([
            r.action.value,
            r.verdict,
            backend,
            r.access.label().split(" ", 1)[1],
            str(r.schema) if r.schema else "-",
            r.detail,
        ])
    table(["ACTION", "FOUND", "BACKEND", "DATABASE", "SCHEMA", "DETAIL"], rows,
          title=f"Schema for {target.source if target else '?'}")


def progress_printer() -> Any:
    """A progress callback that writes to stderr on a terminal, or None when not a TTY."""
    if not use_rich(sys.stderr):
        return None

    def show(line: str) -> None:
        sys.stderr.write(f"{PROG}: {redact(line)}\n")
        sys.stderr.flush()

    return show


def demo_report(report: Any, *, as_json: bool) -> None:
    if as_json:
        emit_json(_dumps({"format": JSON_FORMAT, "kea_db_version": __version__,
                          **report.to_json()}))
        return
    lines([f"Throw-away server: {report.server}", ""])
    if report.init is not None:
        r = report.init
        table(["ACTION", "FOUND", "SCHEMA", "SECONDS", "DETAIL"],
              [[r.action.value, r.verdict, str(r.schema) if r.schema else "-",
                f"{r.seconds:.2f}", r.detail]],
              title=f"kea-db init --kea-version {report.release}")
        lines([""])
    rows = [[r.verdict.value, str(t.release), str(r.found) if r.found else "-",
             str(r.expected) if r.expected else "-", r.detail] for t, r in report.checks]
    table(["VERDICT", "KEA", "FOUND", "EXPECTED", "DETAIL"], rows,
          title="kea-db check-version")
    if report.tls:
        lines([""])
        table(["VERDICT", "KEA", "PROTOCOL", "REASON"],
              [[r.verdict.value, r.kea.to_json()["kea_version"] or "newest",
                r.protocol or "-", r.reason] for r in report.tls],
              title="kea-db test-tls --trust-anchor ca.pem")
    lines(["", "Server stopped and its directory removed." if report.removed
           else "Warning: the server directory could not be removed."])


def _entry_json(entry: Any) -> dict[str, Any]:
    from keadb_cli.kea.access import TLS_KEYS

    keywords = entry.access.keywords() if entry.access else {"type": entry.type}
    retry = ("on-fail", "retry-on-startup", "max-reconnect-tries", "reconnect-wait-time")
    timeouts = ("connect-timeout", "read-timeout", "write-timeout", "tcp-user-timeout")
    return {
        "path": entry.path,
        "role": entry.role,
        "server": entry.server,
        "type": entry.type,
        "location": entry.location,
        "check": bool(entry.sql),
        "host": keywords.get("host"),
        "port": keywords.get("port"),
        "name": keywords.get("name"),
        "user": keywords.get("user"),
        "password": "***" if "password" in keywords else None,
        "readonly": keywords.get("readonly"),
        "tls": {k: keywords[k] for k in TLS_KEYS if k in keywords},
        "timeouts": {k: keywords[k] for k in timeouts if k in keywords},
        "retry": {k: keywords[k] for k in retry if k in keywords},
        "warnings": [f.message for f in entry.warnings],
        "errors": [{"message": f.message, "location": f.location, "stage": f.stage}
                   for f in entry.errors],
    }


def backend_list(entries: Sequence[Any], release: Release | None, *, as_json: bool) -> None:
    items = [_entry_json(e) for e in entries]
    rules = str(release) if release else "newest"
    if as_json:
        emit_json(json_document("backends", items, kea_version=rules))
        return
    rows = []
    for item in items:
        if not item["check"]:
            rows.append([item["path"], item["role"], item["type"] or "-", "-", "-", "-",
                         "nothing to check"])
            continue
        where = (item["host"] or "localhost") + (f":{item['port']}" if item["port"] else "")
        extras = [f"{k}={v}" for k, v in {**item["tls"], **item["retry"]}.items()]
        if item["readonly"]:
            extras.insert(0, "readonly")
        rows.append([item["path"], item["role"], item["type"], where, item["name"] or "-",
                     item["user"] or "-", " ".join(extras) or "-"])
    table(["PATH", "ROLE", "TYPE", "SERVER", "NAME", "USER", "SETTINGS"], rows,
          title=f"Validated for Kea {rules}")
    for item in items:
        for err in item["errors"]:
            error(f"{item['path']}: {err['message']} (the file loads; Kea fails on this entry "
                  "when it connects)")


def tls_results(results: Sequence[Any], release: Release | None) -> None:
    rules = str(release) if release else "newest"
    rows = []
    for r in results:
        rows.append([
            r.verdict.value,
            r.source or r.target.split(" ", 1)[0],
            r.target.split(" ", 1)[-1],
            r.protocol or "-",
            r.cipher or "-",
            r.reason + answered_note(r.kea.plan.host, r.session.answered),
        ])
    table(["VERDICT", "BACKEND", "DATABASE", "PROTOCOL", "CIPHER", "REASON"], rows,
          title=f"TLS as Kea {rules} would open it")
    for r in results:
        label = r.source or r.target
        for w in r.warnings:
            warning(f"{label}: {w}")
        for f in r.failures:
            error(f"{label}: policy: {f}")
        for d in r.disagreements:
            warning(f"{label}: the two signals disagree: {d}")


def preflight_report(report: Any) -> None:
    """Grouped by file, then entry: one row per check (the files' warnings: api_result)."""
    from keadb_cli.errors import ExitCode

    files: dict[str, list[Any]] = {}
    for entry in report.entries:
        files.setdefault(entry.file or "command line", []).append(entry)
    for name, entries in files.items():
        rows = []
        for entry in entries:
            labels = [entry.path or "(file)", entry.target]
            if entry.checked_with:
                labels.append(f"same database as {entry.checked_with}")
            for i, check in enumerate(entry.checks):
                rows.append([check.status.value, labels[i] if i < len(labels) else "",
                             check.name, check.detail])
        table(["STATUS", "ENTRY", "CHECK", "DETAIL"], rows, title=name)
    if report.fleet:
        table(["STATUS", "RULE", "DATABASE", "DETAIL"],
              [[f.status.value, f.rule, f.database, f.detail] for f in report.fleet],
              title="fleet (several files together)")
    counts = report.to_json()["counts"]
    code = report.exit_code
    fleet = f", {len(report.fleet)} fleet finding(s)" if report.fleet else ""
    _out(
        f"{len(report.entries)} entries, {report.databases} database(s) checked in "
        f"{report.elapsed:.2f} s: {counts['fail']} failed, {counts['warn']} warned{fleet}; "
        f"exit {int(code)} ({ExitCode(code).name})"
    )


def preflight_metrics(report: Any, text: str) -> None:
    """Prometheus text on stdout (its label values are escaped already); the files'
    warnings on stderr."""
    for line in report.warnings:
        warning(line)
    lines(text.splitlines())


def step_printer() -> Any:
    """Progress lines on stderr, terminal or not (an upgrade's steps and heartbeats)."""

    def show(line: str) -> None:
        sys.stderr.write(f"{PROG}: {shown(line, MESSAGE_LIMIT)}\n")
        sys.stderr.flush()

    return show


def upgrade_confirmer(*, assume_yes: bool) -> Any:
    """The confirmation upgrade asks for: the plan on stderr, then a question on the
    terminal. Without a terminal only --yes confirms."""

    def confirm(access: Any, steps: Sequence[Any], findings: Sequence[str]) -> bool:
        if assume_yes:
            return True
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            return False
        import click

        sys.stderr.write(f"{PROG}: upgrade {shown(access.path or access.label())}:\n")
        for step in steps:
            rewrites = ", ".join(f"{t} (~{step.rows.get(t, '?')} rows)" if step.rows else t
                                 for t in step.tables)
            sys.stderr.write(f"  {step.revision}  schema {step.schema}  {step.kea}  "
                             f"{shown(step.title, 120)}"
                             f"{'  rewrites ' + rewrites if rewrites else ''}\n")
        for finding in findings:
            sys.stderr.write(f"  note: {shown(finding, MESSAGE_LIMIT)}\n")
        return bool(click.confirm("Back up first. Upgrade now?", default=False, err=True))

    return confirm


def upgrade_results(results: Sequence[Any], target: Target | None) -> None:
    rows = []
    for r in results:
        rows.append([
            r.action.value,
            r.verdict,
            r.access.path or r.access.type or "?",
            r.access.label().split(" ", 1)[1],
            str(r.found) if r.found else "-",
            str(r.expected) if r.expected else "-",
            r.detail,
        ])
    table(["ACTION", "FOUND", "BACKEND", "DATABASE", "FROM", "TO", "DETAIL"], rows,
          title=f"Upgrade for {target.source if target else '?'}")
    for r in results:
        label = r.access.path or r.access.label()
        for step in r.steps if r.action.value == "planned" else ():
            rewrites = ", ".join(f"{t} (~{step.rows.get(t, 0)} rows)" for t in step.tables)
            _out(f"  {step.revision}  schema {step.schema}  {step.kea}  "
                 f"{shown(step.title, 120)}{'  rewrites ' + rewrites if rewrites else ''}")
        for step in r.ran:
            _out(f"  {step.revision}  {step.seconds:.2f} s")
        if r.estimate is not None:
            _out(f"  {r.estimate.line()}")
        for finding in r.findings:
            warning(f"{label}: {finding}")


def verify_results(results: Sequence[Any]) -> None:
    rows = []
    for r in results:
        bodies = ""
        if r.comparison is not None:
            bodies = (f" (bodies: {r.comparison.kea_bodies} Kea's, "
                      f"{r.comparison.own_bodies} kea-db's)")
        rows.append([
            r.verdict,
            r.access.path or r.access.type or "?",
            r.access.label().split(" ", 1)[1],
            str(r.found) if r.found else "-",
            r.detail + bodies,
        ])
    table(["VERDICT", "BACKEND", "DATABASE", "SCHEMA", "DETAIL"], rows,
          title="Verify against the recorded schema")
    for r in results:
        label = r.access.path or r.access.label()
        for finding in r.comparison.errors if r.comparison else ():
            _out(f"  error: {shown(finding.line(), MESSAGE_LIMIT)}")
        for finding in r.comparison.warnings if r.comparison else ():
            warning(f"{label}: {finding.line()}")


def export_progress() -> Any:
    """leases export's progress (rows, rate) on stderr, on a terminal only; else None."""
    if not use_rich(sys.stderr):
        return None

    def show(rows: int, seconds: float) -> None:
        rate = rows / seconds if seconds > 0 else 0.0
        sys.stderr.write(f"\r{PROG}: {rows:,} leases ({rate:,.0f}/s)")
        sys.stderr.flush()

    return show


def export_result(result: Any, *, as_json: bool) -> None:
    """The summary of leases export: JSON or one line on stdout with a file; with the
    leases on stdout, nothing more there (a progress line on a terminal is ended)."""
    if use_rich(sys.stderr) and not as_json:  # end the progress line
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    if as_json:
        emit_json(_dumps({"format": JSON_FORMAT, "kea_db_version": __version__,
                          **result.to_json()}))
        return
    if result.output is not None:
        _out(f"Exported {result.rows:,} lease{result.family} rows (schema {result.schema}) "
             f"to {result.output} in {result.seconds:.1f} s")


def import_result(result: Any, *, as_json: bool) -> None:
    """The counts of leases import (or of its plan)."""
    if as_json:
        emit_json(_dumps({"format": JSON_FORMAT, "kea_db_version": __version__,
                          **result.to_json()}))
        return
    verb = "Would import" if result.plan_only else "Imported"
    _out(f"{verb} lease{result.family} (schema {result.schema}) from {result.rows:,} rows "
         f"of {len(result.files)} file(s): {result.new:,} new, {result.updated:,} updated, "
         f"{result.unchanged:,} unchanged, {sum(result.dropped.values()):,} dropped")
    for reason, count in sorted(result.dropped.items()):
        _out(f"  dropped {count:,}: {reason}")
