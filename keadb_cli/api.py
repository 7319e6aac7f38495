"""kea-db's public Python API: the six commands a program or an Ansible module calls.

Every function takes one :class:`Settings` (where the database is and which Kea release to
compare with) and returns one :class:`Result` (``verdict``, ``exit_code``, ``changed``,
``detail``, ``to_json()``). Nothing here prints, prompts or exits; the ``kea-db`` command
line is a thin layer over these functions, so ``Result.to_json()`` is the document its
``--json`` prints and ``Result.exit_code`` its exit status.

Errors: a verdict is never an exception. A database that is BEHIND, a refused upgrade, a
server that cannot be reached (UNREACHABLE) or refuses the login (DENIED) is a result with
its exit code, as the command line prints it. Settings that cannot work raise
:class:`~keadb_cli.errors.KeaDbError` subclasses, as the command line exits 3 or 4 for
them: :class:`~keadb_cli.errors.SettingsError` (a bad value, an unreadable password file,
an unknown Kea release; exit code 4) and :class:`~keadb_cli.errors.ConfigError` (a Kea
configuration file that is unreadable or invalid; exit code 3).

Example::

    from keadb_cli import api

    settings = api.Settings(type="postgresql", host="db1", user="kea", name="kea",
                            password_file="/etc/kea/db-password", kea_version="2.6")
    result = api.check_version(settings)
    if result.verdict == "BEHIND":
        print(api.upgrade(settings, plan=True).to_json()["results"][0]["plan"])

Importing this module is cheap: SQLAlchemy, alembic and the database drivers are imported
only by the functions that need them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keadb_cli.errors import ConfigError, ExitCode, KeaDbError, SettingsError, worst_exit

if TYPE_CHECKING:
    from keadb_cli.commands.upgrade.run import Confirm
    from keadb_cli.kea.access import DbAccess
    from keadb_cli.kea.releases import Release
    from keadb_cli.schema.state import Target

__all__ = [
    "ConfigError",
    "ExitCode",
    "KeaDbError",
    "Result",
    "Settings",
    "SettingsError",
    "check_version",
    "init",
    "preflight",
    "test_tls",
    "upgrade",
    "verify",
]

Progress = Callable[[str], None]
JSON_FORMAT = 1  # the "format" of every --json document (README, "JSON")

# Settings fields that are DbAccess attributes (Kea's keywords and kea-db's own two).
_ACCESS_FIELDS = (
    "type", "host", "port", "user", "name", "connect_timeout", "read_timeout",
    "write_timeout", "tcp_user_timeout", "trust_anchor", "cert_file", "key_file",
    "cipher_list", "ssl_mode", "readonly", "statement_timeout", "server_public_key",
)
_INT_FIELDS = ("port", "connect_timeout", "read_timeout", "write_timeout", "tcp_user_timeout")
_TRUE = ("1", "true", "t", "yes", "y", "on")
_FALSE = ("0", "false", "f", "no", "n", "off")


@dataclass(frozen=True)
class Settings:
    """Where the database is, how to log in, and which Kea release to compare with.

    Field names are the command line's options (``--connect-timeout`` is
    ``connect_timeout``). ``None`` means "not given". Precedence is the command line's:
    a keyword argument (an option), then a ``KEA_DB_*`` environment variable (only through
    :meth:`from_env`), then the Kea configuration file ``config``. ``config`` is one file
    (a sequence of files for :func:`preflight`); ``backend`` selects its entries (``lease``,
    ``hosts``, ``config``, ``Dhcp4``, or a path such as ``Dhcp4.hosts-databases[1]``).

    The password: ``password`` (never shown: it is left out of ``repr`` and every result),
    else the first line of ``password_file``, else the configuration file's. Without
    ``kea_version`` and ``expect``, the installed Kea's release is used, as on the command
    line.

    Raises:
        SettingsError: a value of the wrong type (a port that is not a number...).
    """

    type: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    name: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    config: str | Sequence[str] | None = None
    backend: str | None = None
    kea_version: str | None = None
    expect: str | None = None
    connect_timeout: int | None = None
    read_timeout: int | None = None
    write_timeout: int | None = None
    tcp_user_timeout: int | None = None
    trust_anchor: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cipher_list: str | None = None
    ssl_mode: str | None = None
    readonly: bool | None = None
    statement_timeout: float | None = None
    server_public_key: str | None = None

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SettingsError(f"{name} must be a whole number, got {value!r}")
        if self.readonly is not None and not isinstance(self.readonly, bool):
            raise SettingsError(f"readonly must be True or False, got {self.readonly!r}")
        timeout = self.statement_timeout
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, int | float)):
            raise SettingsError(f"statement_timeout must be a number, got {timeout!r}")
        for name in ("type", "host", "user", "name", "password", "password_file", "backend",
                     "kea_version", "expect", "trust_anchor", "cert_file", "key_file",
                     "cipher_list", "ssl_mode", "server_public_key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise SettingsError(f"{name} must be a string, got {type(value).__name__}")
        if self.config is not None and not isinstance(self.config, str):
            files = tuple(self.config)
            if not all(isinstance(f, str) for f in files):
                raise SettingsError("config must be a file name or a sequence of file names")
            object.__setattr__(self, "config", files)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Settings:
        """Settings from the ``KEA_DB_*`` environment variables (``KEA_DB_HOST``,
        ``KEA_DB_PASSWORD``, ``KEA_DB_CONFIG``...), with ``given`` keyword arguments
        over them, as command-line options are over the environment.

        ``environ`` defaults to ``os.environ``. ``KEA_DB_PASSWORD`` is not read when a
        password file is given (as on the command line, the file wins).

        Raises:
            SettingsError: a variable that is not a number where one is needed.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = "KEA_DB_" + f.name.upper()
            raw = env.get(key)
            if not raw or f.name in given:
                continue
            values[f.name] = _from_text(f.name, key, raw)
        if given.get("password_file") is not None or (
            "password_file" in values and "password" not in given
        ):
            values.pop("password", None)
        values.update(given)
        return cls(**values)

    @classmethod
    def from_kea_config(cls, path: str, **given: Any) -> Settings:
        """Settings for the database entries of the Kea configuration file ``path``, with
        ``given`` keyword arguments over the file's values."""
        return cls(config=path, **given)

    @property
    def configs(self) -> tuple[str, ...]:
        """The Kea configuration files given (none, one, or several for preflight)."""
        if self.config is None:
            return ()
        return (self.config,) if isinstance(self.config, str) else tuple(self.config)

    def resolved_password(self) -> str | None:
        """``password``, else the first line of ``password_file``, else None.

        Raises:
            SettingsError: the password file cannot be read or is not a password file.
        """
        if self.password is not None:
            return self.password
        if self.password_file:
            from keadb_cli.commands.settings import read_password_file

            return read_password_file(self.password_file)
        return None

    def access_values(self) -> dict[str, Any]:
        """The connection values given, keyed by DbAccess attribute."""
        return {name: getattr(self, name) for name in _ACCESS_FIELDS}


def _from_text(name: str, key: str, raw: str) -> Any:
    """An environment variable's text as the field's type (as click converts it)."""
    if name in _INT_FIELDS:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{key} must be a whole number, got {raw!r}") from None
    if name == "statement_timeout":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{key} must be a number of seconds, got {raw!r}") from None
    if name == "readonly":
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise SettingsError(f"{key} must be true or false, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Result:
    """What one command found or did, over every backend it acted on.

    ``verdict`` is the verdict of the worst backend (check-version: MATCH, BEHIND...; init:
    the state it found, EMPTY, MATCH...; upgrade: likewise; verify: CLEAN, DRIFT...;
    test-tls: VERIFIED, CLEARTEXT...; preflight: pass, warn or fail). ``exit_code`` is the
    command line's exit status (:class:`~keadb_cli.errors.ExitCode`, 0 when all is well).
    ``changed`` is True only when the database was written (init built a schema, upgrade
    ran steps). ``detail`` is one line for people. ``results`` holds the per-backend result
    objects (preflight: ``report``, the whole report); ``warnings`` the Kea configuration
    file's warnings. :meth:`to_json` is the document ``--json`` prints.
    """

    command: str
    verdict: str
    exit_code: ExitCode
    changed: bool
    detail: str
    results: tuple[Any, ...] = ()
    report: Any = None
    target: Target | None = None
    release: Release | None = None
    warnings: tuple[str, ...] = ()
    json_key: str = field(default="results", repr=False)
    json_extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document: ``format``, ``kea_db_version``, the command's own keys,
        and its list of results (preflight: ``entries``). Every kept password is ``***``."""
        from keadb_cli import __version__
        from keadb_cli.text import redact_json

        doc: dict[str, Any] = {"format": JSON_FORMAT, "kea_db_version": __version__}
        if self.report is not None:  # preflight: the report's keys, then its entries
            doc.update(self.report.to_json())
            doc[self.json_key] = doc.pop("entries")
        else:
            doc.update(self.json_extra)
            doc[self.json_key] = [r.to_json() for r in self.results]
        redacted: dict[str, Any] = redact_json(doc)
        return redacted


# -- the six commands ----------------------------------------------------------------------


def _target(settings: Settings) -> Target:
    from keadb_cli.commands.settings import resolve_target

    return resolve_target(settings.kea_version, settings.expect)


def _accesses(settings: Settings, release: Release | None) -> tuple[list[DbAccess], list[str]]:
    """The SQL backends the settings name, and the configuration file's warnings."""
    from keadb_cli.commands.settings import select_accesses

    configs = settings.configs
    if len(configs) > 1:
        raise SettingsError("config: give one Kea configuration file (preflight takes several)")
    selection = select_accesses(settings.access_values(), settings.resolved_password(),
                                config=configs[0] if configs else None,
                                backend=settings.backend, release=release)
    return selection.accesses, selection.warnings


def _label(access: DbAccess) -> str:
    return access.path or access.label()


def _summary(command: str, items: Sequence[Any], codes: Sequence[ExitCode],
             verdicts: Sequence[str], labels: Sequence[str], details: Sequence[str], *,
             changed: bool, warnings: Sequence[str], extra: dict[str, Any],
             target: Target | None = None, release: Release | None = None) -> Result:
    """One Result over per-backend results: the worst one's verdict and exit code."""
    from keadb_cli.text import redact

    code = worst_exit(codes)
    worst_at = next((i for i, c in enumerate(codes) if c == code), 0)
    verdict = verdicts[worst_at] if verdicts else ""
    if len(items) == 1:
        detail = details[0]
    else:
        detail = "; ".join(f"{label}: {d}" for label, d in zip(labels, details, strict=True))
    return Result(command, verdict, code, changed, redact(detail), tuple(items), target=target,
                  release=release, warnings=tuple(warnings), json_extra=extra)


def check_version(settings: Settings, *, wait: float | None = None) -> Result:
    """Read Kea's schema_version as a Kea server does and compare it with the release.

    Read-only. Verdicts: MATCH (exit 0), BEHIND, AHEAD, EMPTY, FOREIGN, UNREACHABLE,
    DENIED. ``wait`` (seconds) waits for a server that is starting, and on a standby for
    its replay to reach MATCH (the command line's ``--wait-timeout``).

    Raises:
        SettingsError, ConfigError: settings that cannot work (see the module docstring).
    """
    from keadb_cli.commands.check_version import check_all

    target = _target(settings)
    accesses, warnings = _accesses(settings, target.release)
    results = check_all(accesses, target, wait=wait)
    return _summary(
        "check-version", results, [r.verdict.exit_code for r in results],
        [r.verdict.value for r in results], [_label(r.access) for r in results],
        [r.detail for r in results], changed=False, warnings=warnings,
        extra={"target": target.to_json()}, target=target,
    )


def init(settings: Settings, *, lock_timeout: float = 60.0,
         progress: Progress | None = None) -> Result:
    """Create Kea's schema on an empty database, as ``kea-admin db-init`` does.

    A database already at the release's schema is "nothing to do" (exit 0, not changed);
    a database that is not empty, BEHIND or AHEAD is refused with its exit code.
    ``progress`` receives progress lines.

    Raises:
        SettingsError, ConfigError: settings that cannot work.
    """
    from keadb_cli.commands.init import Action, init_all

    target = _target(settings)
    accesses, warnings = _accesses(settings, target.release)
    results = init_all(accesses, target, lock_timeout=lock_timeout, progress=progress)
    return _summary(
        "init", results, [r.exit_code for r in results], [r.verdict for r in results],
        [_label(r.access) for r in results], [r.detail for r in results],
        changed=any(r.action is Action.INITIALIZED for r in results), warnings=warnings,
        extra={"target": target.to_json()}, target=target,
    )


def upgrade(
    settings: Settings, *, plan: bool = False, allow_other_sessions: bool = False,
    fix_user_context: bool = False, verify: bool = True, lock_timeout: float = 60.0,
    rows_per_second: float | None = None, confirm: Confirm | None = None,
    progress: Progress | None = None,
) -> Result:
    """Upgrade Kea's schema step by step to what the release expects.

    ``plan=True`` changes nothing: the result lists the steps (``to_json()["results"][i]
    ["plan"]``), the findings of upgrade's own checks and a downtime estimate
    (``["estimate"]``, at ``rows_per_second`` when given, else kea-db's measured default
    rate). Without ``plan`` the call itself
    is the go-ahead (the command line's ``--yes``), unless ``confirm(access, steps,
    findings)`` is given and returns False. EMPTY, AHEAD, FOREIGN, DRIFT, other sessions
    and the other refusals are results with their exit codes.

    Raises:
        SettingsError, ConfigError: settings that cannot work (``rows_per_second``
            without ``plan``).
    """
    from keadb_cli.commands.upgrade.run import Action, Options, upgrade_all

    if rows_per_second is not None and not plan:
        raise SettingsError("--rows-per-second goes with --plan (it rates the estimate)")
    target = _target(settings)
    accesses, warnings = _accesses(settings, target.release)
    options = Options(lock_timeout=lock_timeout, allow_other_sessions=allow_other_sessions,
                      fix_user_context=fix_user_context, plan_only=plan, verify=verify,
                      rows_per_second=rows_per_second)
    results = upgrade_all(accesses, target, options, confirm=None if plan else confirm,
                          progress=progress)
    return _summary(
        "upgrade", results, [r.exit_code for r in results], [r.verdict for r in results],
        [_label(r.access) for r in results], [r.detail for r in results],
        changed=any(r.action is Action.UPGRADED for r in results), warnings=warnings,
        extra={"target": target.to_json()}, target=target,
    )


def verify(settings: Settings) -> Result:
    """Check that the database really is the schema its schema_version records.

    Verdicts: CLEAN (exit 0), DRIFT, UNVERIFIED, EMPTY, FOREIGN, UNREACHABLE, DENIED. The
    Kea database is never written (the expectation is built in a scratch namespace).

    Raises:
        SettingsError, ConfigError: settings that cannot work.
    """
    from keadb_cli.commands.verify import verify_all

    accesses, warnings = _accesses(settings, None)
    results = verify_all(accesses)
    return _summary(
        "verify", results, [r.exit_code for r in results], [r.verdict for r in results],
        [_label(r.access) for r in results], [r.detail for r in results],
        changed=False, warnings=warnings, extra={},
    )


def test_tls(
    settings: Settings, *, require_tls: bool = False, require_verify: bool = False,
    require_client_cert: bool = False, min_tls: str | None = None, warn_days: int = 30,
) -> Result:
    """Say what the TLS of Kea's session to the database really is.

    Verdicts: VERIFIED (exit 0; TLS_POLICY when a ``require_*`` or ``min_tls`` fails),
    ENCRYPTED-UNVERIFIED, CLEARTEXT, TLS-REFUSED, HANDSHAKE-FAILED, UNREACHABLE, DENIED.
    Only ``kea_version`` of the target settings counts (default: the installed Kea, else
    the newest rules).

    Raises:
        SettingsError, ConfigError: settings that cannot work (``min_tls`` not 1.2/1.3...).
    """
    from keadb_cli.commands.settings import release_or_installed
    from keadb_cli.commands.test_tls.check import Policy, parse_min_tls, run_all

    release = release_or_installed(settings.kea_version)
    policy = Policy(require_tls=require_tls, require_verify=require_verify,
                    require_client_cert=require_client_cert,
                    min_tls=parse_min_tls(min_tls) if min_tls else None)
    accesses, warnings = _accesses(settings, release)
    results = run_all(accesses, release, policy, warn_days)
    return _summary(
        "test-tls", results, [r.exit_code for r in results],
        [r.verdict.value for r in results], [r.source or r.target for r in results],
        [r.reason for r in results], changed=False, warnings=warnings,
        extra={"kea_version": str(release) if release else "newest"}, release=release,
    )


def preflight(
    settings: Settings, *, wait: float | None = None, require_tls: bool = False,
    require_verify: bool = False, warn_days: int = 30,
) -> Result:
    """Say whether Kea will start and serve on its databases. Read-only, always.

    Checks every SQL entry of every file of ``settings.config`` (one file or several; no
    file: the one entry the settings describe). ``verdict`` is ``fail``, ``warn`` or
    ``pass``; ``detail`` names every failed check (``file: path: check: detail``);
    ``report`` is the whole report (``to_json()["entries"]``, ``["fleet"]``).

    Raises:
        SettingsError, ConfigError: settings that cannot work.
    """
    from keadb_cli.commands.preflight.model import Status
    from keadb_cli.commands.preflight.run import Options
    from keadb_cli.commands.preflight.run import preflight as run_preflight
    from keadb_cli.commands.settings import access_from_options

    target = _target(settings)
    options = Options(wait=wait, require_tls=require_tls, require_verify=require_verify,
                      warn_days=warn_days)
    report = run_preflight(list(settings.configs), access_from_options(settings.access_values()),
                           settings.resolved_password(), target, options,
                           backend=settings.backend)
    statuses = [c.status for e in report.entries for c in e.checks]
    statuses += [f.status for f in report.fleet]
    code = report.exit_code
    verdict = (Status.FAIL if code != ExitCode.OK else
               Status.WARN if Status.WARN in statuses else Status.PASS).value
    failed = [f"{e.file or 'command line'}: {e.path or e.target}: {c.name}: {c.detail}"
              for e in report.entries for c in e.checks if c.status is Status.FAIL]
    failed += [f"fleet: {f.rule}: {f.detail}" for f in report.fleet
               if f.status is Status.FAIL]
    counts = report.to_json()["counts"]
    detail = (f"{len(report.entries)} entries, {report.databases} database(s): "
              f"{counts['fail']} failed, {counts['warn']} warned")
    if failed:
        detail += ": " + "; ".join(failed)
    from keadb_cli.text import redact

    return Result("preflight", verdict, code, False, redact(detail), report=report,
                  target=target, warnings=tuple(report.warnings), json_key="entries")


test_tls.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported
