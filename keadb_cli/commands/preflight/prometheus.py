"""preflight as Prometheus metrics: the text exposition format (version 0.0.4), for
``--format prometheus`` on stdout and ``--textfile PATH`` (node_exporter's textfile
collector reads ``*.prom`` files from one directory).

Every metric is a gauge. An entry is labelled ``file`` (the --config path, "" for the
command line), ``entry`` (its path in the file, e.g. ``Dhcp4.lease-database``), ``role``
(lease, hosts, config) and ``backend`` (mysql, postgresql; "" when the entry could not be
read). Status values follow Nagios: 0 pass, 1 warn, 2 fail, 3 skipped (unknown).

Label values are data (file names, server and configuration text): backslash, double quote
and line feed are escaped as the format says, a kept password is starred, and every other
control or format character is written as ``\\xNN`` text so that no terminal or collector
sees it raw. Built as a string here; the CLI writes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from keadb_cli import __version__
from keadb_cli.commands.preflight.model import EntryReport, Report, Status
from keadb_cli.errors import ExitCode, KeaDbError
from keadb_cli.text import _escape, _unsafe, redact

__all__ = ["STATUS_VALUE", "check_textfile", "escape_label", "exposition"]

STATUS_VALUE = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.SKIP: 3}
"""A check's status as a gauge value (Nagios' OK, WARNING, CRITICAL, UNKNOWN)."""

_STATUS_HELP = "0 pass, 1 warn, 2 fail, 3 skipped"

# name -> help text, in the order the families are written.
_FAMILIES = {
    "keadb_preflight_check_status":
        f"Result of one preflight check of one database entry: {_STATUS_HELP}.",
    "keadb_preflight_entry_status": f"Worst check of the entry: {_STATUS_HELP}.",
    "keadb_preflight_entry_exit_code":
        "Exit code the entry's worst failed check stands for (0: none failed).",
    "keadb_preflight_entry_info":
        "The entry's password-free target and where it is written; always 1.",
    "keadb_preflight_schema_info":
        "Schema version found (\"\" when EMPTY or FOREIGN), the version the Kea release "
        "expects, and the verdict; always 1. Absent when the schema was not read.",
    "keadb_preflight_schema_match": "1 when the schema is the one the Kea release expects.",
    "keadb_preflight_tls_certificate_days_left":
        "Whole days until the database server's TLS certificate expires (negative: "
        "expired). Absent when the server showed no certificate.",
    "keadb_preflight_fleet_finding_status":
        "A rule broken by several configuration files together: 1 warn, 2 fail.",
    "keadb_preflight_exit_code": "Exit code of the preflight run (0: Kea will start).",
    "keadb_preflight_databases": "Distinct databases the run checked.",
    "keadb_preflight_duration_seconds": "Wall time of the preflight run.",
    "keadb_preflight_last_run_timestamp_seconds":
        "When the preflight run ended, in seconds since the Unix epoch.",
    "keadb_preflight_run_info":
        "The Kea release compared with, where it came from, and kea-db's version; always 1.",
}


def escape_label(value: str) -> str:
    """A label value for the exposition format, without the quotes."""
    out = []
    for char in redact(value):
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char != " " and _unsafe(char):
            out.append(_escape(char).replace("\\", "\\\\"))
        else:
            out.append(char)
    return "".join(out)


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    body = ",".join(f'{name}="{escape_label(value)}"' for name, value in pairs)
    return f"{{{body}}}" if body else ""


def _entry_labels(entry: EntryReport) -> list[tuple[str, str]]:
    return [("file", entry.file or ""), ("entry", entry.path), ("role", entry.role or ""),
            ("backend", entry.type or "")]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def exposition(report: Report, *, now: float | None = None) -> str:
    """The report as Prometheus text: the families of :data:`_FAMILIES`, each with its HELP
    and TYPE lines, then one sample per entry, check, finding or run fact."""
    samples: dict[str, list[str]] = {name: [] for name in _FAMILIES}

    def add(name: str, labels: list[tuple[str, str]], value: float) -> None:
        samples[name].append(f"{name}{_labels(labels)} {_number(value)}")

    for entry in report.entries:
        labels = _entry_labels(entry)
        for check in entry.checks:
            add("keadb_preflight_check_status", [*labels, ("check", check.name)],
                STATUS_VALUE[check.status])
        add("keadb_preflight_entry_status", labels, STATUS_VALUE[entry.status])
        add("keadb_preflight_entry_exit_code", labels, int(entry.exit_code))
        add("keadb_preflight_entry_info",
            [*labels, ("target", entry.target), ("location", entry.location),
             ("checked_with", entry.checked_with or "")], 1)
        if entry.schema is not None:
            facts = entry.schema
            add("keadb_preflight_schema_info",
                [*labels, ("found", facts.found or ""), ("expected", facts.expected),
                 ("verdict", facts.verdict)], 1)
            add("keadb_preflight_schema_match", labels, int(facts.verdict == "MATCH"))
        if entry.tls_days_left is not None:
            add("keadb_preflight_tls_certificate_days_left", labels, entry.tls_days_left)
    for finding in report.fleet:
        add("keadb_preflight_fleet_finding_status",
            [("rule", finding.rule), ("database", finding.database)],
            STATUS_VALUE[finding.status])
    add("keadb_preflight_exit_code", [], int(report.exit_code))
    add("keadb_preflight_databases", [], report.databases)
    add("keadb_preflight_duration_seconds", [], round(report.elapsed, 3))
    add("keadb_preflight_last_run_timestamp_seconds", [],
        round(time.time() if now is None else now, 3))
    add("keadb_preflight_run_info",
        [("kea_version", report.kea_version or ""), ("source", report.source),
         ("keadb_version", __version__)], 1)
    lines = []
    for name, help_text in _FAMILIES.items():
        if not samples[name]:
            continue
        lines.append(f"# HELP {name} {_help(help_text)}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(samples[name])
    return "".join(line + "\n" for line in lines)


def check_textfile(path: str) -> None:
    """Refuse a ``--textfile`` whose directory does not exist (before the run, so that no
    database is asked for nothing), or that names a directory.

    Raises:
        KeaDbError: with the USAGE exit code.
    """
    from keadb_cli.text import shown

    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise KeaDbError(f"--textfile {shown(path)}: directory {shown(str(directory))} does "
                         "not exist (node_exporter's --collector.textfile.directory)",
                         exit_code=ExitCode.USAGE, reason_code="no-directory")
    if target.is_dir():
        raise KeaDbError(f"--textfile {shown(path)} is a directory: give a file name ending "
                         "in .prom", exit_code=ExitCode.USAGE, reason_code="is-directory")
