"""``kea-db preflight``: will this Kea release, with these configuration files, start and
serve on these databases? Read-only, always.

Every SQL entry of every file is checked; entries that name the same database with the same
login share one probe (:mod:`keadb_cli.commands.preflight.probe`), and the distinct
databases are probed in parallel, so a run takes about as long as its slowest database.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from keadb_cli.commands.preflight.fleet import FleetFile, ServerKey, fleet_findings, server_key
from keadb_cli.commands.preflight.model import (
    CHECKS,
    Check,
    EntryReport,
    Report,
    SchemaFacts,
    fail,
    passed,
    skipped,
    warn,
)
from keadb_cli.commands.preflight.probe import Probe, Usage, node_check, probe_database
from keadb_cli.commands.settings import Target, require_sql_entry
from keadb_cli.commands.test_tls.files import DEFAULT_WARN_DAYS
from keadb_cli.errors import ConfigError, ExitCode, KeaDbError, SettingsError
from keadb_cli.kea.access import DbAccess
from keadb_cli.kea.releases import Release, Schema

AUTO_INIT_SINCE = Release(2, 5, 6)  # Kea runs kea-admin db-init on an empty database
HOOKS_NEEDED_SINCE = Release(2, 7, 4)  # SQL backends live in libdhcp_mysql/pgsql.so
RETRY_ON_STARTUP_SINCE = Release(2, 5, 5)
MAX_WORKERS = 32  # databases probed at once


@dataclass(frozen=True)
class Options:
    """What the run checks beyond the defaults."""

    wait: float | None = None  # seconds to wait for a server that is starting
    require_tls: bool = False
    require_verify: bool = False
    warn_days: int = DEFAULT_WARN_DAYS  # the server certificate's expiry warning

    def to_json(self) -> dict[str, Any]:
        return {"wait_timeout": self.wait, "require_tls": self.require_tls,
                "require_verify": self.require_verify, "warn_days": self.warn_days}


@dataclass
class _Item:
    """One entry on its way through the run."""

    file: str | None
    path: str
    role: str | None
    location: str
    target: str
    config: Check
    access: DbAccess | None = None  # None: not connected (the config check failed)


def _connection_key(access: DbAccess) -> DbAccess:
    """The part of an access entry that decides which session opens: entries equal here
    share one probe (their roles and readonly flags may differ)."""
    return dataclasses.replace(access, path=None, role=None, readonly=None, on_fail=None,
                               retry_on_startup=None, max_reconnect_tries=None,
                               reconnect_wait_time=None)


def _config_check(errors: list[str], connect_errors: list[str], warnings: list[str],
                  release_text: str, hooks: list[str] | None = None) -> Check:
    hooks = hooks or []
    if errors or hooks:
        return fail("config", ExitCode.CONFIG, "; ".join(errors + hooks + connect_errors),
                    "config-invalid" if errors else "hook-missing")
    if connect_errors:
        return fail("config", ExitCode.CONFIG,
                    f"{'; '.join(connect_errors)} (Kea loads the file, then fails on this "
                    "entry when it connects)", "refused-at-connect")
    if warnings:
        return warn("config", "; ".join(warnings), "config-warning")
    return passed("config", f"valid for {release_text}")


def _items_from_file(path: str, release: Release | None, cli: DbAccess,
                     password: str | None, warnings_out: list[str],
                     backend: str | None = None,
                     fleet_out: list[FleetFile] | None = None) -> list[_Item]:
    """The entries of one file, each with its config check; a file Kea cannot read is one
    failed item. The file's own warnings (not an entry's) go to ``warnings_out``; the file
    as read, every entry of it, to ``fleet_out`` (for the fleet rules)."""
    from keadb_cli.commands.settings import with_password
    from keadb_cli.kea import config as kea_config
    from keadb_cli.kea import entries as kea_entries
    from keadb_cli.kea.validate import release_text

    rules = release_text(release)
    try:
        config = kea_config.load(path)
        entries = kea_entries.extract(config, release=release)
        if fleet_out is not None:
            fleet_out.append(FleetFile(path, config, tuple(entries)))
        if backend is not None:
            entries = kea_entries.select(entries, backend)
    except ConfigError as err:
        return [_Item(path, "", None, "", "-", fail("config", ExitCode.CONFIG, err.message,
                                                      "config-invalid"))]
    warnings_out.extend(config.warnings)
    items = []
    sql = [e for e in entries if e.sql]
    if not sql:
        only = ", ".join(e.path for e in entries) or "no database entry"
        return [_Item(path, "", None, "", "-", skipped("config", f"no MySQL or PostgreSQL "
                                                       f"entry ({only}): nothing to check"))]
    for entry in sql:
        errors = [f.message for f in entry.file_errors]
        hooks = _hook_problems(config.root.get(entry.server), entry.type or "", release)
        connect = [f.message for f in entry.connect_errors]
        warnings = [f.message for f in entry.warnings]
        # A missing hook stops the Kea process, not the login: the database is still
        # checked, so that one run says everything that is wrong.
        check = _config_check(errors, connect, warnings, rules, hooks)
        access = None
        if entry.access is not None and not errors and not connect:
            access = with_password(cli.merged_over(entry.access), password)
        label = (access or entry.access or _raw_access(entry.raw)).label()
        items.append(_Item(path, entry.path, entry.role, entry.location, label, check,
                           access))
    return items


def _hook_problems(section: Any, db_type: str, release: Release | None) -> list[str]:
    """Since 2.7.4 a DHCP server reaches MySQL or PostgreSQL only through its hook library
    (``libdhcp_mysql.so`` / ``libdhcp_pgsql.so`` in ``hooks-libraries``); without it Kea
    does not know the backend type and refuses the configuration."""
    from keadb_cli.db.backends import backend_for

    if release is not None and release < HOOKS_NEEDED_SINCE:
        return []
    hook = backend_for(db_type).kea_hook
    libraries = section.get("hooks-libraries") if isinstance(section, dict) else None
    loaded = [lib.get("library") for lib in libraries or [] if isinstance(lib, dict)]
    if any(isinstance(path, str) and path.rsplit("/", 1)[-1] == hook for path in loaded):
        return []
    kea = f"Kea {release}" if release else "the newest Kea"
    return [f"{kea} uses a {db_type} backend only through the hook library {hook}, which "
            f"hooks-libraries does not load (needed since 2.7.4)"]


def _raw_access(raw: dict[str, Any] | Any) -> DbAccess:
    """Enough of an entry Kea refuses to name it: its string and number values only."""
    values = {attr: raw.get(key) for key, attr in (("type", "type"), ("host", "host"),
                                                   ("user", "user"), ("name", "name"))
              if isinstance(raw.get(key), str)}
    port = raw.get("port")
    if isinstance(port, int) and not isinstance(port, bool) and 0 < port <= 65535:
        values["port"] = port
    return DbAccess(**values)


def _schema_check(probe: Probe, access: DbAccess, expected: Schema,
                  release: Release | None) -> Check:
    """The schema verdict for one entry, and what Kea does about it."""
    from keadb_cli.commands.check_version import Verdict, judge

    if probe.state_error is not None:
        return probe.state_error
    state = probe.state
    assert state is not None
    kea = f"Kea {release}" if release else "Kea"
    if state.found is None and not state.reason:
        if release is not None and release >= AUTO_INIT_SINCE and not access.readonly:
            return warn("schema", f"EMPTY: {kea} will run kea-admin db-init itself when it "
                                  f"starts (schema {expected}); that needs kea-admin on the "
                                  "Kea host, and a failed init hides the real error: run "
                                  "`kea-db init` before the rollout", "auto-init")
        if access.readonly:
            why = "readonly: Kea does not initialise it"
        elif release is None:
            why = "give --kea-version to learn whether that release initialises it"
        else:
            why = "Kea before 2.5.6 does not create the schema"
        return fail("schema", ExitCode.EMPTY,
                    f"EMPTY: {kea} will not start on it ({why}): run `kea-db init` "
                    f"(schema {expected})", "empty")
    if state.found is None:
        names = f" ({', '.join(state.objects[:5])})" if state.objects else ""
        return fail("schema", ExitCode.FOREIGN,
                    f"FOREIGN: {state.reason}{names}: {kea} will not start on it", "foreign")
    verdict = judge(state.found, expected)
    if verdict is Verdict.MATCH:
        return passed("schema", f"MATCH: schema {state.found} is the one {kea} expects")
    code = verdict.exit_code
    what = ("older: back up, stop Kea, then upgrade explicitly" if verdict is Verdict.BEHIND
            else "newer: this release is older than the schema")
    return fail("schema", code,
                f"{verdict.value}: schema {state.found}, {kea} expects {expected} ({what}); "
                "Kea will not start on it, and retry-on-startup does not help (a version "
                "mismatch is not retried)", verdict.value.lower())


def _schema_facts(probe: Probe | None, expected: Schema) -> SchemaFacts | None:
    """The schema version found and the verdict, when the schema was read."""
    from keadb_cli.commands.check_version import Verdict, judge

    if probe is None or probe.state is None or probe.state_error is not None:
        return None
    found = probe.state.found
    if found is None:
        verdict = Verdict.FOREIGN if probe.state.reason else Verdict.EMPTY
        return SchemaFacts(None, str(expected), verdict.value)
    return SchemaFacts(str(found), str(expected), judge(found, expected).value)


def _login_note(check: Check, access: DbAccess, release: Release | None) -> Check:
    """A failed login, with what Kea does then (retry-on-startup, 2.5.5+)."""
    if check.status.value != "fail":
        return check
    retry = access.retry_on_startup and (release is None or release >= RETRY_ON_STARTUP_SINCE)
    if retry:
        note = ("; with retry-on-startup Kea starts without this backend and reconnects as "
                f"max-reconnect-tries ({access.max_reconnect_tries or 0}), "
                f"reconnect-wait-time ({access.reconnect_wait_time or 0} ms) and on-fail "
                f"({access.on_fail or 'stop-retry-exit'}) say")
    else:
        note = "; Kea will not start (retry-on-startup is off)"
    return dataclasses.replace(check, detail=check.detail + note)


def _entry_checks(item: _Item, probe: Probe | None, target: Target,
                  release: Release | None) -> tuple[Check, ...]:
    checks = [item.config]
    if item.access is None or probe is None:
        why = "not checked: the entry's configuration fails"
        return tuple(checks + [skipped(name, why) for name in CHECKS[1:]])
    access = item.access
    checks.append(_login_note(probe.login, access, release))
    if probe.login.status.value == "fail":
        why = "not checked: no session"
        return tuple(checks + [skipped(name, why) for name in CHECKS[2:]])
    usage = Usage(item.role or "lease", bool(access.readonly))
    checks.append(node_check(probe, usage, item.target))
    checks.append(_schema_check(probe, access, target.schema_for(access.type or ""),
                                release))
    if usage in probe.privileges:
        checks.append(probe.privileges[usage])
    else:
        checks.append(skipped("privileges", "not checked: no Kea schema to check them on"))
    checks.append(probe.tls or skipped("tls", "not checked"))
    return tuple(checks)


def preflight(
    configs: list[str],
    cli: DbAccess,
    password: str | None,
    target: Target,
    options: Options,
    *,
    backend: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check every SQL entry of every file in ``configs`` (or, with no file, the one entry
    the command line describes) and report.

    Raises:
        SettingsError: no file and the options name no SQL backend.
    """
    from keadb_cli.commands.settings import with_password

    started = time.monotonic()
    release = target.release
    items: list[_Item] = []
    file_warnings: list[str] = []
    fleet_files: list[FleetFile] = []
    if backend is not None and not configs:
        raise SettingsError("--backend selects entries of --config FILE: give --config")
    if configs:
        for path in configs:
            items.extend(_items_from_file(path, release, cli, password, file_warnings,
                                          backend, fleet_files))
    else:
        access = require_sql_entry(with_password(cli, password))
        access = dataclasses.replace(access, path="command line", role=access.role or "lease")
        items.append(_Item(None, "command line", access.role, "", access.label(),
                           passed("config", "options"), access))

    groups: dict[DbAccess, list[_Item]] = {}
    for item in items:
        if item.access is not None:
            groups.setdefault(_connection_key(item.access), []).append(item)
    probes: dict[DbAccess, Probe] = {}
    if groups:
        if progress:
            progress(f"checking {len(groups)} database(s) in parallel")
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(groups))) as pool:
            futures = {
                key: pool.submit(_probe_safely, members[0].access, members, release, options)
                for key, members in groups.items()
            }
            for key, future in futures.items():
                probes[key] = future.result()

    reports = []
    for item in items:
        probe, shared = None, None
        if item.access is not None:
            key = _connection_key(item.access)
            probe, first = probes.get(key), groups[key][0]
            if first is not item:
                shared = first.path if first.file == item.file else f"{first.file}: {first.path}"
        kind = item.access.type if item.access is not None else None
        facts = _schema_facts(probe, target.schema_for(kind or "")) if kind else None
        reports.append(EntryReport(item.file, item.path, item.role, item.location,
                                   item.target, _entry_checks(item, probe, target, release),
                                   checked_with=shared, node=probe.node if probe else None,
                                   answered=probe.answered if probe else None,
                                   type=kind, schema=facts,
                                   tls_days_left=probe.tls_days_left if probe else None))
    limits: dict[ServerKey, int] = {}
    for key, members in groups.items():
        probed = probes.get(key)
        reached = members[0].access
        if probed is not None and probed.max_connections is not None and reached is not None:
            limits[server_key(reached)] = probed.max_connections
    fleet = fleet_findings(_distinct(fleet_files), release, limits, os.cpu_count() or 1,
                           target.source)
    return Report(tuple(reports), str(release) if release else None, target.source,
                  time.monotonic() - started, len(groups), options.to_json(),
                  tuple(file_warnings), tuple(fleet))


def _distinct(files: list[FleetFile]) -> list[FleetFile]:
    """Each file once, however often --config named it."""
    seen: set[str] = set()
    out = []
    for file in files:
        real = os.path.realpath(file.path)
        if real not in seen:
            seen.add(real)
            out.append(file)
    return out


def _probe_safely(access: DbAccess | None, members: list[_Item], release: Release | None,
                  options: Options) -> Probe:
    """probe_database for a group; bad settings become a failed login, never a crash of
    the whole run."""
    assert access is not None
    usages = sorted({Usage(m.role or "lease", bool(m.access and m.access.readonly))
                     for m in members}, key=lambda u: (u.role, u.readonly))
    try:
        return probe_database(access, usages, release, wait=options.wait,
                              require_tls=options.require_tls,
                              require_verify=options.require_verify,
                              warn_days=options.warn_days)
    except KeaDbError as err:
        code = err.exit_code if err.exit_code is not ExitCode.INTERNAL else ExitCode.SETTINGS
        return Probe(login=fail("login", code, err.message, err.reason_code or "settings"))
