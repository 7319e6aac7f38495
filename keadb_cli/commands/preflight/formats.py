"""preflight's machine formats beside JSON: a JUnit XML report (one testcase per entry and
check, for GitLab and Jenkins) and GitHub Actions workflow commands (annotations).

Both are built as strings here; the CLI writes them. Every text from a file or a server is
made printable first (:func:`keadb_cli.text.shown`), so neither format carries control
characters.
"""

from __future__ import annotations

import re
from html import escape as _html_escape

from keadb_cli.commands.preflight.model import EntryReport, Report, Status
from keadb_cli.text import shown

_TEXT_LIMIT = 4000


def _t(text: str) -> str:
    return shown(text, _TEXT_LIMIT)


def escape(text: str) -> str:
    """Text for XML character data (xml.sax.saxutils would import urllib: 40 ms)."""
    return _html_escape(text, quote=False)


def quoteattr(text: str) -> str:
    """A quoted XML attribute value."""
    return f'"{_html_escape(text, quote=True)}"'


def _suite_name(entry: EntryReport) -> str:
    return entry.file or "command line"


def junit(report: Report) -> str:
    """The report as JUnit XML: a testsuite per file, a testcase per entry and check.

    A failed check is a ``<failure>``, a skipped one ``<skipped>``, a warning a passing
    testcase whose ``<system-out>`` says why. The failures counted here are exactly the
    failed checks that make the run's exit code non-zero.
    """
    suites: dict[str, list[EntryReport]] = {}
    for entry in report.entries:
        suites.setdefault(_suite_name(entry), []).append(entry)
    total = sum(len(e.checks) for e in report.entries) + len(report.fleet)
    failures = sum(1 for e in report.entries for c in e.checks if c.status is Status.FAIL) + (
        sum(1 for f in report.fleet if f.status is Status.FAIL))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuites name="kea-db preflight" tests="{total}" failures="{failures}" '
             f'errors="0" time="{report.elapsed:.3f}">']
    for name, entries in suites.items():
        checks = [c for e in entries for c in e.checks]
        lines.append(
            f'  <testsuite name={quoteattr(_t(name))} tests="{len(checks)}" '
            f'failures="{sum(c.status is Status.FAIL for c in checks)}" errors="0" '
            f'skipped="{sum(c.status is Status.SKIP for c in checks)}">'
        )
        for entry in entries:
            classname = quoteattr(_t(f"{name}:{entry.path or 'file'}"))
            for check in entry.checks:
                head = f'    <testcase classname={classname} name={quoteattr(check.name)}'
                detail = _t(check.detail)
                if check.status is Status.FAIL:
                    lines.append(f"{head}>")
                    lines.append(f'      <failure type={quoteattr(check.reason_code or "fail")}'
                                 f' message={quoteattr(detail)}>'
                                 f'{escape(_t(f"{entry.target}: {check.detail}"))}</failure>')
                    lines.append("    </testcase>")
                elif check.status is Status.SKIP:
                    lines.append(f"{head}>")
                    lines.append(f"      <skipped message={quoteattr(detail)}/>")
                    lines.append("    </testcase>")
                else:
                    lines.append(f"{head}>")
                    prefix = "warning: " if check.status is Status.WARN else ""
                    lines.append(f"      <system-out>{escape(prefix + detail)}</system-out>")
                    lines.append("    </testcase>")
        lines.append("  </testsuite>")
    if report.fleet:
        lines.extend(_fleet_suite(report))
    lines.append("</testsuites>")
    return "\n".join(lines) + "\n"


def _fleet_suite(report: Report) -> list[str]:
    """The fleet findings: one testsuite ``fleet``, a testcase per finding."""
    fleet = report.fleet
    lines = [f'  <testsuite name="fleet" tests="{len(fleet)}" '
             f'failures="{sum(f.status is Status.FAIL for f in fleet)}" errors="0" skipped="0">']
    for finding in fleet:
        head = (f"    <testcase classname={quoteattr(_t(f'fleet:{finding.database}'))} "
                f"name={quoteattr(finding.rule)}>")
        lines.append(head)
        detail = _t(finding.detail)
        if finding.status is Status.FAIL:
            body = escape(_t(f"{finding.detail} [entries: {finding.names}]"))
            lines.append(f"      <failure type={quoteattr(finding.reason_code or 'fail')} "
                         f"message={quoteattr(detail)}>{body}</failure>")
        else:
            lines.append(f"      <system-out>{escape('warning: ' + detail)}</system-out>")
        lines.append("    </testcase>")
    lines.append("  </testsuite>")
    return lines


def _data(text: str) -> str:
    """A workflow command's message: %, CR and LF escaped (GitHub's escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    """A workflow command's property value (escapeProperty): also ':' and ','."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


_LINE_RE = re.compile(r"^(?P<file>.+?):(?P<line>[0-9]+)(?::[0-9]+)?$")


def github_annotations(report: Report) -> str:
    """One ``::error`` per failed check and one ``::warning`` per warning, pointing at the
    entry's line in its file when known."""
    out = []
    for entry in report.entries:
        where = ""
        match = _LINE_RE.match(entry.location or "")
        if match:
            where = f"file={_prop(match['file'])},line={match['line']},"
        elif entry.file:
            where = f"file={_prop(entry.file)},"
        for check in entry.checks:
            if check.status not in (Status.FAIL, Status.WARN):
                continue
            level = "error" if check.status is Status.FAIL else "warning"
            title = _prop(shown(f"kea-db preflight {check.name}: {entry.path or 'file'}", 200))
            message = _data(shown(f"{entry.target}: {check.detail}", _TEXT_LIMIT))
            out.append(f"::{level} {where}title={title}::{message}")
    for finding in report.fleet:
        level = "error" if finding.status is Status.FAIL else "warning"
        title = _prop(shown(f"kea-db preflight fleet {finding.rule}: {finding.database}", 200))
        message = _data(shown(finding.detail, _TEXT_LIMIT))
        # One annotation on each file involved, at its first entry.
        firsts: dict[str, str] = {}
        for member in finding.members:
            firsts.setdefault(member.file, member.location)
        for file, location in firsts.items():
            match = _LINE_RE.match(location)
            where = (f"file={_prop(match['file'])},line={match['line']},"
                     if match else f"file={_prop(file)},")
            out.append(f"::{level} {where}title={title}::{message}")
    return "".join(line + "\n" for line in out)
