"""The click command group. Commands parse options, make one core call, render, and return
an exit code; errors are turned into one line and an exit code in :func:`main` only.

Core modules are imported inside each command so that ``--help`` and fast commands do not
pay for what they do not use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from keadb_cli import __version__
from keadb_cli.cli import completion
from keadb_cli.errors import ExitCode, KeaDbError, SettingsError, worst_exit

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _env(key: str) -> str:
    return "KEA_DB_" + key.upper().replace("-", "_")


def db_options(func: F) -> F:
    """The database access options, named after Kea's keywords, each also KEA_DB_*."""
    return _db_options(func, several_configs=False)


def several_db_options(func: F) -> F:
    """The database access options, with --config repeatable (and no KEA_DB_CONFIG)."""
    return _db_options(func, several_configs=True)


def _db_options(func: F, *, several_configs: bool) -> F:
    config = (
        click.option("--config", "configs", multiple=True, metavar="FILE",
                     help="Kea configuration file (kea-dhcp4.conf, kea-dhcp6.conf); repeat "
                          "for several. Options override the files' values.")
        if several_configs else
        click.option("--config", "config", envvar=_env("config"), metavar="FILE",
                     help="Kea configuration file (kea-dhcp4.conf, kea-dhcp6.conf): act on "
                          "its database entries; options override its values.")
    )
    options = [
        config,
        click.option("--backend", envvar=_env("backend"), metavar="ROLE|PATH",
                     shell_complete=completion.backend,
                     help="With --config: lease, hosts, config, Dhcp4, Dhcp6 or a path "
                          "such as Dhcp4.hosts-databases[1]. Default: every SQL backend."),
        click.option("--type", "type_", metavar="mysql|postgresql", envvar=_env("type"),
                     shell_complete=completion.db_type,
                     help="Backend type (Kea's `type`)."),
        click.option("--host", envvar=_env("host"),
                     help="Server host; Kea's default is localhost (MySQL: the Unix socket). "
                          "PostgreSQL: also libpq's host list (db1,db2: tried in order with "
                          "the one port; PGTARGETSESSIONATTRS picks by role); output names "
                          "the host that answered."),
        click.option("--port", type=int, envvar=_env("port"),
                     help="Server port; 0 or unset means the backend's default."),
        click.option("--user", envvar=_env("user"), help="Database user."),
        click.option("--name", envvar=_env("name"), help="Database name."),
        click.option("--password-file", envvar=_env("password_file"),
                     type=click.Path(dir_okay=True, readable=False),
                     help="Read the password from this file (first line). "
                          "Default: KEA_DB_PASSWORD."),
        click.option("--password-prompt", "-W", is_flag=True,
                     help="Ask for the password on the terminal."),
        click.option("--connect-timeout", type=int, envvar=_env("connect_timeout"),
                     help="Seconds to wait for a connection (Kea's default: 5)."),
        click.option("--read-timeout", type=int, envvar=_env("read_timeout"),
                     help="MySQL: seconds to wait for a read."),
        click.option("--write-timeout", type=int, envvar=_env("write_timeout"),
                     help="MySQL: seconds to wait for a write."),
        click.option("--tcp-user-timeout", type=int, envvar=_env("tcp_user_timeout"),
                     help="PostgreSQL: TCP user timeout in seconds."),
        click.option("--trust-anchor", envvar=_env("trust_anchor"),
                     help="CA file (or MySQL: hashed CA directory) to verify the server."),
        click.option("--cert-file", envvar=_env("cert_file"), help="Client certificate file."),
        click.option("--key-file", envvar=_env("key_file"), help="Client private key file."),
        click.option("--cipher-list", envvar=_env("cipher_list"),
                     help="MySQL: OpenSSL cipher list."),
        click.option("--ssl-mode", envvar=_env("ssl_mode"),
                     metavar="disable|prefer|require|verify-ca|verify-full",
                     help="PostgreSQL: libpq sslmode (Kea 3.1+)."),
        click.option("--readonly", is_flag=True, default=None, envvar=_env("readonly"),
                     help="The backend is read-only for Kea (Kea's `readonly`)."),
        click.option("--statement-timeout", type=float, envvar=_env("statement_timeout"),
                     metavar="SECONDS",
                     help="Deadline of every statement after login, on the server and in "
                          "kea-db (default: 60; upgrade, leases export: 6 hours; leases "
                          "import: 1 hour). Commands "
                          "that only read (check-version, test-tls, preflight) default to 2 x "
                          "connect-timeout (MySQL: read-timeout when larger)."),
        click.option("--server-public-key", envvar=_env("server_public_key"), metavar="FILE",
                     help="MySQL: the server's RSA public key, for caching_sha2_password "
                          "logins without TLS (kea-db never takes the key from the server)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def target_options(func: F) -> F:
    func = click.option(
        "--expect", metavar="MAJOR.MINOR", envvar=_env("expect"),
        help="Expected schema version; overrides the release map.",
    )(func)
    return click.option(
        "--kea-version", metavar="X.Y[.Z]", envvar=_env("kea_version"),
        shell_complete=completion.kea_version,
        help="Kea release to compare with (2.6 means the newest 2.6.x). "
             "Default: the installed kea-dhcp4/kea-dhcp6/kea-admin.",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(func)


def _password(opts: dict[str, Any]) -> str | None:
    """The password from --password-file, KEA_DB_PASSWORD or a prompt (None: not given)."""
    from keadb_cli.commands.settings import read_password_file

    password: str | None = None
    if opts.pop("password_prompt", False):
        password = click.prompt("Password", hide_input=True, default="", show_default=False,
                                err=True)
    elif opts.get("password_file"):
        password = read_password_file(opts["password_file"])
    elif "KEA_DB_PASSWORD" in os.environ:
        password = os.environ["KEA_DB_PASSWORD"]
    opts.pop("password_file", None)
    return password


def _accesses(opts: dict[str, Any], release: Any = None) -> list[Any]:
    """The access entries from options and --config; config warnings go to stderr."""
    from keadb_cli.cli import render
    from keadb_cli.commands.settings import select_accesses

    password = _password(opts)
    config, backend = opts.pop("config", None), opts.pop("backend", None)
    values = {("type" if k == "type_" else k): v for k, v in opts.items()}
    selection = select_accesses(values, password, config=config, backend=backend,
                                release=release)
    for line in selection.warnings:
        render.warning(line)
    return selection.accesses


def _settings(opts: dict[str, Any], **target: Any) -> Any:
    """The API's Settings from the options (click has layered KEA_DB_* under them). The
    password: --password-prompt, else --password-file (read by the API), else
    KEA_DB_PASSWORD."""
    from keadb_cli.api import Settings

    password: str | None = None
    if opts.pop("password_prompt", False):
        password = click.prompt("Password", hide_input=True, default="", show_default=False,
                                err=True)
    elif not opts.get("password_file") and "KEA_DB_PASSWORD" in os.environ:
        password = os.environ["KEA_DB_PASSWORD"]
    configs = opts.pop("configs", None)
    config = opts.pop("config", None) if configs is None else (tuple(configs) or None)
    values = {("type" if k == "type_" else k): v for k, v in opts.items()}
    return Settings(**values, password=password, config=config, **target)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="kea-db")
@click.option("--debug", is_flag=True, envvar="KEA_DB_DEBUG",
              help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Check and prepare ISC Kea DHCP's MySQL and PostgreSQL databases.

    Every command exits with a documented code (see README), and `--json` prints one
    machine-readable document. Passwords come from KEA_DB_PASSWORD, --password-file or
    --password-prompt, never from the command line.
    """
    ctx.obj = {"debug": debug}


def _wait_seconds(wait: bool, wait_timeout: float | None) -> float | None:
    """--wait / --wait-timeout as seconds to wait (None: no wait)."""
    if wait_timeout is not None:
        return wait_timeout
    return 60.0 if wait else None


@cli.command("check-version")
@db_options
@target_options
@click.option("--wait", is_flag=True,
              help="Wait for what can still change: a database that is still starting "
                   "(refused, timed out, not yet in DNS; never a wrong password or a TLS "
                   "failure), and on a standby or read-only replica a BEHIND or EMPTY "
                   "schema (or a MySQL upgrade half replayed) its replay can still bring "
                   "to MATCH. A primary's verdict is final at once.")
@click.option("--wait-timeout", type=click.FloatRange(0, 86400), default=None,
              envvar=_env("wait_timeout"), metavar="SECONDS",
              help="How long --wait waits (default 60; giving it implies --wait).")
@json_option
def check_version_cmd(
    kea_version: str | None, expect: str | None, wait: bool, wait_timeout: float | None,
    as_json: bool, **opts: Any
) -> int:
    """Read Kea's schema_version as a Kea server does and compare it with a release.

    Verdicts: MATCH, BEHIND, AHEAD, EMPTY, FOREIGN, UNREACHABLE, DENIED, each with its own
    exit code. Read-only: runs in a read-only transaction and never creates anything.
    With --wait, after `upgrade` on the primary, a standby is read again until it has
    replayed the upgrade (MATCH) or --wait-timeout ends; the JSON's `wait` says how many
    attempts it took and how long.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db check-version --type postgresql \\
          --host db1 --user kea --name kea --kea-version 2.6
      kea-db check-version --config /etc/kea/kea-dhcp4.conf --kea-version 3.0 \\
          --host standby1 --wait --wait-timeout 120
    """
    from keadb_cli import api
    from keadb_cli.cli import render

    settings = _settings(opts, kea_version=kea_version, expect=expect)
    result = api.check_version(settings, wait=_wait_seconds(wait, wait_timeout))
    render.api_result(result, as_json=as_json,
                      human=lambda: render.version_results(result.results, result.target))
    return int(result.exit_code)


@cli.command("init")
@db_options
@target_options
@click.option("--lock-timeout", type=float, default=60.0, show_default=True,
              envvar=_env("lock_timeout"),
              help="Seconds to wait for another kea-db init on the same server.")
@click.option("--sql", "sql_only", is_flag=True,
              help="Print the DDL for --type and --kea-version without connecting.")
@json_option
def init_cmd(
    kea_version: str | None, expect: str | None, lock_timeout: float, sql_only: bool,
    as_json: bool, **opts: Any,
) -> int:
    """Create Kea's schema on an empty database, exactly as kea-admin db-init does.

    Refuses a readonly backend, a database that is not empty, and any upgrade (BEHIND or
    AHEAD); a database already at the release's schema is "nothing to do" (exit 0). A
    session advisory lock makes concurrent runs safe; PostgreSQL builds in one transaction.
    `kea-db versions` lists the releases whose schema init can build.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db init --type mysql --host db1 --user kea \\
          --name kea --kea-version 2.2
      kea-db init --sql --type postgresql --kea-version 2.2 > kea-2.2.sql
    """
    from keadb_cli import api
    from keadb_cli.cli import render

    if sql_only:
        from keadb_cli.commands.init import sql_script
        from keadb_cli.commands.settings import require_type, resolve_target

        target = resolve_target(kea_version, expect)
        db_type = require_type(opts.get("type_"))
        sys.stdout.write(sql_script(db_type, target.schema_for(db_type)))
        return int(ExitCode.OK)
    settings = _settings(opts, kea_version=kea_version, expect=expect)
    result = api.init(settings, lock_timeout=lock_timeout,
                      progress=None if as_json else render.progress_printer())
    render.api_result(result, as_json=as_json,
                      human=lambda: render.init_results(result.results, result.target))
    return int(result.exit_code)


@cli.command("upgrade")
@db_options
@target_options
@click.option("--plan", "plan_only", is_flag=True,
              help="Change nothing: list the steps, the tables each rewrites (with about how "
                   "many rows), an estimate of the downtime (how long Kea stays stopped) and "
                   "the findings of the run's own checks (what it would refuse included; on "
                   "a primary, the standbys that will replay it).")
@click.option("--rows-per-second", type=click.FloatRange(min=0, min_open=True),
              metavar="N",
              help="With --plan: the rate to estimate the downtime with (rows the steps "
                   "rewrite per second, as measured on a copy); default: kea-db's own "
                   "measurement on a small machine.")
@click.option("--sql", "sql_only", is_flag=True,
              help="Print the SQL of the steps from --from to the target, without connecting.")
@click.option("--from", "from_schema", metavar="MAJOR.MINOR",
              help="With --sql: the schema the database has now.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask; required when there is no terminal to ask on.")
@click.option("--allow-other-sessions", is_flag=True,
              help="Upgrade although other sessions (a Kea server?) use the database.")
@click.option("--fix-user-context", is_flag=True,
              help="Set lease user contexts that are not JSON to NULL first (Kea reads them "
                   "as no context); without it such rows refuse the upgrade.")
@click.option("--skip-verify", is_flag=True,
              help="Do not compare the database with its recorded schema first (see verify).")
@click.option("--lock-timeout", type=float, default=60.0, show_default=True,
              envvar=_env("lock_timeout"),
              help="Seconds to wait for another kea-db init or upgrade on the same server.")
@json_option
def upgrade_cmd(
    kea_version: str | None, expect: str | None, plan_only: bool,
    rows_per_second: float | None, sql_only: bool, from_schema: str | None, yes: bool,
    allow_other_sessions: bool, fix_user_context: bool, skip_verify: bool,
    lock_timeout: float, as_json: bool, **opts: Any,
) -> int:
    """Upgrade Kea's schema explicitly, step by step, to what a Kea release expects.

    Refuses what is not an upgrade, each with its own exit code: EMPTY (init's job), AHEAD,
    FOREIGN, a readonly backend, a schema older than kea-db's first revision. Before any
    change: the lock init takes, the state read again, privileges, other sessions on the
    database (a running Kea), lease rows that would stop a step, and verify's comparison of
    the database with its recorded schema (DRIFT refuses). Asks on a terminal; give
    --yes otherwise. PostgreSQL runs every step in one transaction; on MySQL a cut run
    (error, kill, Ctrl-C) is completed by running upgrade again.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db upgrade --type mysql --host db1 --user kea \\
          --name kea --kea-version 3.0 --plan
      kea-db upgrade --sql --type postgresql --from 13.0 --kea-version 3.0 > up.sql
    """
    from keadb_cli import api
    from keadb_cli.cli import render

    if sql_only:
        from keadb_cli.commands.settings import require_type, resolve_target
        from keadb_cli.commands.upgrade.run import upgrade_sql
        from keadb_cli.kea.releases import parse_schema

        target = resolve_target(kea_version, expect)
        db_type = require_type(opts.get("type_"))
        if not from_schema:
            raise SettingsError("--sql needs --from MAJOR.MINOR: the schema the database has")
        sys.stdout.write(upgrade_sql(db_type, parse_schema(from_schema, "--from"),
                                     target.schema_for(db_type)))
        return int(ExitCode.OK)
    if from_schema:
        raise SettingsError("--from goes with --sql; a connected upgrade reads the schema")
    settings = _settings(opts, kea_version=kea_version, expect=expect)
    result = api.upgrade(settings, plan=plan_only, allow_other_sessions=allow_other_sessions,
                         fix_user_context=fix_user_context, verify=not skip_verify,
                         lock_timeout=lock_timeout, rows_per_second=rows_per_second,
                         confirm=render.upgrade_confirmer(assume_yes=yes),
                         progress=render.step_printer())
    render.api_result(result, as_json=as_json,
                      human=lambda: render.upgrade_results(result.results, result.target))
    return int(result.exit_code)


@cli.command("verify")
@db_options
@json_option
def verify_cmd(as_json: bool, **opts: Any) -> int:
    """Check that a database really is the Kea schema its schema_version records.

    Builds that schema from kea-db's revisions on the same server, in a scratch namespace
    that is removed again (PostgreSQL: a schema in a rolled-back transaction; MySQL: a
    database `keadb_verify_...` that is dropped), and compares it with the live one. A
    missing or changed Kea object, or a missing row of a Kea lookup table, is an error
    (DRIFT, exit 51); an object of the operator's own (a table, column, index, trigger) is
    a warning. Routine and trigger bodies count as right when they are kea-db's or Kea's
    own text for that schema (recognised by a hash). The Kea database is never written.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db verify --config /etc/kea/kea-dhcp4.conf --json
    """
    from keadb_cli import api
    from keadb_cli.cli import render

    result = api.verify(_settings(opts))
    render.api_result(result, as_json=as_json,
                      human=lambda: render.verify_results(result.results))
    return int(result.exit_code)


@cli.command("purge")
@db_options
@click.option("--audit-older-than", "audit_days", type=float, metavar="DAYS",
              help="Delete config-backend audit entries (dhcp4/dhcp6 audit and revisions) "
                   "older than DAYS (1 or more), except each object's newest entry.")
@click.option("--logs-older-than", "logs_days", type=float, metavar="DAYS",
              help="Delete forensic log rows (table logs) older than DAYS (1 or more).")
@click.option("--plan", "plan_only", is_flag=True,
              help="Change nothing: count per table the rows to delete and the old rows "
                   "kept as an object's newest entry.")
@click.option("--batch-size", "batch", type=int, default=1000, show_default=True,
              metavar="ROWS", help="Rows per DELETE, each its own short transaction.")
@json_option
def purge_cmd(audit_days: float | None, logs_days: float | None, plan_only: bool, batch: int,
              as_json: bool, **opts: Any) -> int:
    """Delete old config-backend audit entries and forensic log rows, which Kea never does.

    An audit entry is as old as its revision. Each object's newest entry (its audit row
    with the highest id) and the revision holding it stay, however old; a revision goes
    once it holds no entry. Counts first, then deletes in batches. Refuses an age under one
    day (exit 2), and a database that is not a Kea schema kea-db knows or lacks the tables
    (EMPTY 12, FOREIGN 13), deleting nothing. Entries naming one database purge it once.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db purge --type mysql --host db1 --user kea --name kea \\
          --audit-older-than 90 --logs-older-than 365 --plan
      kea-db purge --config /etc/kea/kea-dhcp4.conf --backend config \\
          --audit-older-than 30 --json
    """
    from keadb_cli.cli.render_purge import purge_results
    from keadb_cli.commands.purge import Options, check_options, purge_all

    options = Options(audit_days=audit_days, logs_days=logs_days, plan_only=plan_only,
                      batch=batch)
    check_options(options)  # before a password prompt or a connection
    results = purge_all(_accesses(opts), options)
    purge_results(results, plan_only=plan_only, as_json=as_json)
    return int(worst_exit(r.exit_code for r in results))


@cli.group("leases", context_settings=CONTEXT_SETTINGS)
def leases_group() -> None:
    """Kea's lease data: export the SQL database's leases as Kea's memfile CSV, import
    memfile CSV lease files into it.

    \b
    Example:
      kea-db leases export -4 --config /etc/kea/kea-dhcp4.conf --output leases4.csv
      kea-db leases import -4 --config /etc/kea/kea-dhcp4.conf kea-leases4.csv
    """


@leases_group.command("export")
@db_options
@click.option("-4", "v4", is_flag=True, help="Export the IPv4 leases (lease4).")
@click.option("-6", "v6", is_flag=True, help="Export the IPv6 leases (lease6).")
@click.option("--output", "-o", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write to this file (through a temporary file beside it, renamed at the "
                   "end). Default: stdout.")
@click.option("--force", is_flag=True, help="Replace --output when it exists.")
@json_option
def leases_export_cmd(v4: bool, v6: bool, output: str | None, force: bool, as_json: bool,
                      **opts: Any) -> int:
    """Write the database's leases as Kea's memfile CSV, byte for byte what `kea-admin
    lease-dump -4|-6` of the release matching the schema writes for the same database.

    Calls the schema's own dump routines (lease4DumpHeader/lease4DumpData,
    lease6DumpHeader/lease6DumpData) and writes each row as kea-admin does: on MySQL the
    mysql client's batch output with tabs turned into commas (NULL as the word NULL), on
    PostgreSQL psql's unaligned output. Rows stream with bounded memory. Refuses (nothing
    written) a database without a known Kea schema: EMPTY or FOREIGN exit codes. With
    --json the summary (rows, file, family) goes to stdout, so --output is required.
    Progress goes to stderr on a terminal.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db leases export -4 --type postgresql --host db1 \\
          --user kea --name kea --output /var/lib/kea/kea-leases4.csv
      kea-db leases export -6 --config /etc/kea/kea-dhcp6.conf --backend lease > leases6.csv
    """
    from keadb_cli.cli import render
    from keadb_cli.commands.leases import check_output, export_leases, pick_lease_access

    if v4 == v6:
        raise SettingsError("give one of -4 and -6")
    if as_json and output is None:
        raise SettingsError("--json prints the summary on stdout: give --output for the leases")
    if output is not None:
        check_output(output, force=force)
    access = pick_lease_access(_accesses(opts))
    result = export_leases(access, 4 if v4 else 6, output=output, force=force,
                           stdout=sys.stdout.buffer,
                           progress=None if as_json else render.export_progress())
    render.export_result(result, as_json=as_json)
    return int(ExitCode.OK)


@leases_group.command("import")
@db_options
@click.option("-4", "v4", is_flag=True, help="Import IPv4 lease files (lease4).")
@click.option("-6", "v6", is_flag=True, help="Import IPv6 lease files (lease6).")
@click.argument("files", nargs=-1, required=True, metavar="FILE...",
                type=click.Path(dir_okay=False))
@click.option("--plan", "plan_only", is_flag=True,
              help="Change nothing: print the counts (new, updated, unchanged, dropped).")
@json_option
def leases_import_cmd(v4: bool, v6: bool, files: tuple[str, ...], plan_only: bool,
                      as_json: bool, **opts: Any) -> int:
    """Load Kea memfile CSV lease files into the SQL database, as Kea loads them.

    Files are read in Kea's order (.completed, or .2 then .1, then the current file); the
    newest row per address wins, a row with valid lifetime 0 removes its lease and rows Kea
    drops are dropped. Every file is checked before anything is written: a malformed row is
    one line naming FILE:LINE, exit 4 (SETTINGS), and nothing is written; the parsed rows
    wait in a temporary SQLite file (deleted at the end), so memory stays bounded whatever
    the files' size. Then new addresses are inserted and changed rows updated, in address
    order, 1000 addresses per transaction,
    through the schema's triggers; equal rows are left alone, so a second import changes
    nothing. The database must hold the schema of a known Kea release (EMPTY, FOREIGN).

    \b
    Example:
      kea-db leases import -4 --config /etc/kea/kea-dhcp4.conf --plan \\
          /var/lib/kea/kea-leases4.csv.2 /var/lib/kea/kea-leases4.csv.1 \\
          /var/lib/kea/kea-leases4.csv
    """
    from keadb_cli.cli import render
    from keadb_cli.commands.leases import pick_lease_access
    from keadb_cli.commands.leases_import import import_leases

    if v4 == v6:
        raise SettingsError("give one of -4 and -6")
    access = pick_lease_access(_accesses(opts))
    result = import_leases(access, 4 if v4 else 6, files, plan_only=plan_only)
    render.import_result(result, as_json=as_json)
    return int(ExitCode.OK)


@cli.command("copy")
@click.option("--from-config", "from_config", required=True, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="Kea configuration file of the source database (its password too).")
@click.option("--from-backend", "from_backend", metavar="ROLE|PATH",
              shell_complete=completion.backend,
              help="lease, hosts or a path such as Dhcp4.hosts-databases[1]: the source "
                   "entry when --from-config names several databases.")
@click.option("--to-config", "to_config", required=True, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="Kea configuration file of the target database.")
@click.option("--to-backend", "to_backend", metavar="ROLE|PATH",
              shell_complete=completion.backend,
              help="The target entry when --to-config names several databases.")
@click.option("--merge", is_flag=True,
              help="Copy into a target that already holds leases or hosts: a source lease "
                   "replaces the target's lease of its address, a source host the target's "
                   "host with its identifier and subnet.")
@json_option
def copy_cmd(from_config: str, from_backend: str | None, to_config: str,
             to_backend: str | None, merge: bool, as_json: bool) -> int:
    """Copy leases (v4, v6, with their relay and remote ids) and host reservations (hosts,
    IPv6 reservations, host options) between two SQL databases of one Kea release:
    MySQL/MariaDB to PostgreSQL, PostgreSQL to MySQL/MariaDB, or alike.

    Both schemas must be one Kea release's (EMPTY, FOREIGN; BEHIND: upgrade the target;
    AHEAD). The target must hold no leases and no hosts unless --merge (NOT_EMPTY, 41). The
    source is read in one snapshot, streaming; the target is written in chunks of 1000
    rows, all in one transaction, compared with the source before it commits (row counts
    per subnet, checksum of the normalised rows per table): a difference rolls it all back
    and exits 54 (COPY_MISMATCH). The statistics tables are recounted in the same
    transaction, as `kea-admin stats-recount` counts (PostgreSQL: the lease tables'
    triggers are off inside it). Stop Kea on the target while it runs.

    \b
    Example:
      kea-db copy --from-config /etc/kea/kea-dhcp4.conf \\
          --to-config /etc/kea/kea-dhcp4-pgsql.conf --json
    """
    from keadb_cli.cli import render
    from keadb_cli.cli.render_copy import copy_result
    from keadb_cli.commands.copy import copy_database, pick_copy_access
    from keadb_cli.commands.settings import select_accesses

    picked = []
    for side, config, backend in (("from", from_config, from_backend),
                                  ("to", to_config, to_backend)):
        selection = select_accesses({}, None, config=config, backend=backend, release=None)
        for line in selection.warnings:
            render.warning(line)
        picked.append(pick_copy_access(selection.accesses, side))
    result = copy_database(picked[0], picked[1], merge=merge)
    copy_result(result, as_json=as_json)
    return int(result.exit_code)


@cli.command("demo")
@click.option("--kea-version", default=None, metavar="X.Y[.Z]",
              shell_complete=completion.kea_version,
              help="Kea release whose schema the demo builds (default: the newest stable).")
@json_option
def demo_cmd(kea_version: str | None, as_json: bool) -> int:
    """Run init and check-version on a throw-away local PostgreSQL, then remove it.

    Needs the PostgreSQL server binaries (Debian: apt-get install postgresql); nothing
    outside a temporary directory is touched, and the server is stopped at the end.

    \b
    Example:
      kea-db demo
    """
    from keadb_cli.cli import render
    from keadb_cli.commands.demo import run_demo

    report = run_demo(kea_version, progress=None if as_json else render.progress_printer())
    render.demo_report(report, as_json=as_json)
    failed = report.init is None or int(report.init.exit_code) != 0 or not report.removed
    return int(ExitCode.INIT_FAILED) if failed else int(ExitCode.OK)


@cli.command("test-tls")
@db_options
@click.option("--kea-version", metavar="X.Y[.Z]", envvar=_env("kea_version"),
              shell_complete=completion.kea_version,
              help="Open the connection as this Kea release would. Default: the installed "
                   "Kea, else the newest rules.")
@click.option("--require-tls", is_flag=True,
              help="Fail (TLS_POLICY) when Kea's session could fall back to cleartext.")
@click.option("--require-verify", is_flag=True,
              help="Fail unless the chain verifies against trust-anchor and the host "
                   "name matches.")
@click.option("--require-client-cert", is_flag=True,
              help="Fail unless the server asked for and accepted a client certificate.")
@click.option("--min-tls", metavar="1.2|1.3", help="Fail below this TLS version.")
@click.option("--warn-days", type=int, default=30, show_default=True,
              help="Warn when a certificate expires within this many days.")
@json_option
def test_tls_cmd(
    kea_version: str | None, require_tls: bool, require_verify: bool,
    require_client_cert: bool, min_tls: str | None, warn_days: int, as_json: bool,
    **opts: Any,
) -> int:
    """Say what a Kea database session's TLS really is: verified, unverified or cleartext.

    Checks the certificate files, probes the server's own TLS upgrade (chain, protocol,
    cipher, host name, client certificate), logs in as Kea X.Y would and reads what the
    server says of the session. Verdicts: VERIFIED, ENCRYPTED-UNVERIFIED, CLEARTEXT,
    TLS-REFUSED, HANDSHAKE-FAILED, UNREACHABLE, DENIED, each with its own exit code.

    \b
    Example:
      KEA_DB_PASSWORD=... kea-db test-tls --type mysql --host db1 --user kea \\
          --name kea --trust-anchor /etc/kea/ca.pem --require-verify
      kea-db test-tls --config /etc/kea/kea-dhcp4.conf --kea-version 3.0 --json
    """
    from keadb_cli import api
    from keadb_cli.cli import render

    result = api.test_tls(_settings(opts, kea_version=kea_version), require_tls=require_tls,
                          require_verify=require_verify,
                          require_client_cert=require_client_cert, min_tls=min_tls,
                          warn_days=warn_days)
    render.api_result(result, as_json=as_json,
                      human=lambda: render.tls_results(result.results, result.release))
    return int(result.exit_code)


@cli.command("preflight")
@several_db_options
@target_options
@click.option("--wait", is_flag=True,
              help="Wait for a database that is still starting (refused, timed out, not yet "
                   "in DNS); never for a wrong password, a TLS failure or a schema verdict.")
@click.option("--wait-timeout", type=click.FloatRange(0, 86400), default=None,
              envvar=_env("wait_timeout"), metavar="SECONDS",
              help="How long --wait waits (default 60; giving it implies --wait).")
@click.option("--require-tls", is_flag=True,
              help="Fail when Kea's session could be cleartext.")
@click.option("--require-verify", is_flag=True,
              help="Fail unless the server's chain verifies and its name matches.")
@click.option("--junit", "junit_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write a JUnit XML report (one testcase per entry and check, and "
                   "per fleet finding).")
@click.option("--warn-days", type=click.IntRange(0), default=30, show_default=True,
              help="Warn when the database server's certificate expires within this many "
                   "days.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "prometheus"]),
              default=None, help="stdout: a table (default), JSON (as --json) or Prometheus "
                                 "text exposition.")
@click.option("--textfile", metavar="PATH", type=click.Path(dir_okay=False),
              help="Also write the Prometheus metrics to PATH atomically, for "
                   "node_exporter's textfile collector (PATH ends in .prom).")
@json_option
def preflight_cmd(
    kea_version: str | None, expect: str | None, wait: bool, wait_timeout: float | None,
    require_tls: bool, require_verify: bool, junit_file: str | None, warn_days: int,
    output_format: str | None, textfile: str | None, as_json: bool, **opts: Any,
) -> int:
    """Say whether Kea will start and serve on its databases. Read-only, always.

    For every MySQL and PostgreSQL entry of every --config file, in parallel: the entry as
    the release reads it, login as Kea logs in, the schema verdict and what Kea does about
    it (an EMPTY database Kea 2.5.6+ initialises itself is a warning), the privileges Kea
    needs at run time, and test-tls's verdict. Entries naming the same database are checked
    once. Each check passes, warns or fails; the exit code is that of the worst failure.
    Fleet rules read every --config file together: servers outside one HA relationship on
    one lease database, a shared lease database before Kea 2.6.2 or with the FLQ
    allocator, sharers disagreeing on shared-flq subnets, HA peers on one database with
    lease updates on, and the connections of every file above a server's max_connections.
    Under GitHub Actions (GITHUB_ACTIONS=true) failures and warnings also become
    annotations.

    \b
    Example:
      kea-db preflight --config /etc/kea/kea-dhcp4.conf \\
          --config /etc/kea/kea-dhcp6.conf --kea-version 3.0 --wait --junit preflight.xml
      kea-db preflight --config /etc/kea/kea-dhcp4.conf --kea-version 3.0 \\
          --textfile /var/lib/prometheus/node-exporter/kea-db.prom
    """
    from keadb_cli import api
    from keadb_cli.cli import render
    from keadb_cli.commands.preflight import prometheus
    from keadb_cli.files import write_report

    if as_json and output_format not in (None, "json"):
        raise click.UsageError(f"--json and --format {output_format} disagree: give one")
    as_json = as_json or output_format == "json"
    if textfile:
        prometheus.check_textfile(textfile)
    settings = _settings(opts, kea_version=kea_version, expect=expect)
    result = api.preflight(settings, wait=_wait_seconds(wait, wait_timeout),
                           require_tls=require_tls, require_verify=require_verify,
                           warn_days=warn_days)
    report = result.report
    if junit_file:
        from keadb_cli.commands.preflight.formats import junit

        write_report(junit_file, junit(report))
    metrics = prometheus.exposition(report) if textfile or output_format == "prometheus" else ""
    if textfile:
        write_report(textfile, metrics)
    if output_format == "prometheus":
        render.preflight_metrics(report, metrics)
    else:
        render.api_result(result, as_json=as_json,
                          human=lambda: render.preflight_report(report))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from keadb_cli.commands.preflight.formats import github_annotations

        machine = as_json or output_format == "prometheus"
        (sys.stderr if machine else sys.stdout).write(github_annotations(report))
    return int(result.exit_code)


@cli.command("backends")
@click.option("--config", "config", required=True, envvar=_env("config"), metavar="FILE",
              help="Kea configuration file (kea-dhcp4.conf, kea-dhcp6.conf).")
@click.option("--backend", envvar=_env("backend"), metavar="ROLE|PATH",
                     shell_complete=completion.backend,
              help="lease, hosts, config, Dhcp4, Dhcp6 or a path. Default: every entry.")
@click.option("--kea-version", metavar="X.Y[.Z]", envvar=_env("kea_version"),
              shell_complete=completion.kea_version,
              help="Validate for this Kea release. Default: the installed Kea, else the "
                   "newest rules.")
@json_option
def backends_cmd(config: str, backend: str | None, kea_version: str | None,
                 as_json: bool) -> int:
    """List the database entries of a Kea configuration file, without connecting.

    Each entry keeps its path (Dhcp4.hosts-databases[1]) and role (lease, hosts, config),
    validated as Kea validates it; memfile entries are listed as nothing to check.
    Passwords are shown as ***. An invalid file exits with the CONFIG code; so does a file
    Kea loads but one of whose entries it refuses when it connects (a built-in default
    password since 2.7.6): every entry is listed, with that error.

    \b
    Example:
      kea-db backends --config /etc/kea/kea-dhcp4.conf --json
    """
    from keadb_cli.cli import render
    from keadb_cli.commands.settings import list_entries, release_or_installed

    release = release_or_installed(kea_version)
    chosen, warnings = list_entries(config, backend, release)
    for line in warnings:
        render.warning(line)
    render.backend_list(chosen, release, as_json=as_json)
    refused = any(entry.connect_errors for entry in chosen)
    return int(ExitCode.CONFIG if refused else ExitCode.OK)


@cli.command("versions")
@json_option
def versions_cmd(as_json: bool) -> int:
    """Print the map of Kea releases to the schema versions they expect, and the backends
    whose schema `kea-db init` can build for each.

    \b
    Example:
      kea-db versions --json
    """
    from keadb_cli.cli import render
    from keadb_cli.commands.init import release_map

    render.release_map(release_map(), as_json=as_json)
    return int(ExitCode.OK)


# `kea-db stats check|recount` (keadb_cli/cli/stats.py uses the option decorators above).
from keadb_cli.cli.stats import stats_group  # noqa: E402

cli.add_command(stats_group)


def _error(message: str) -> None:
    from keadb_cli.cli import render  # only on the way out with an error

    render.error(message)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turn every failure into one line and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("KEA_DB_DEBUG")
    )
    from keadb_cli.text import forget_secrets

    forget_secrets()  # the passwords of this run only (main may run again in one process)
    try:
        rv = cli.main(args=argv, prog_name="kea-db", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help() if err.ctx else str(err))
        rv = int(ExitCode.USAGE)
    except click.UsageError as err:
        cmd = err.ctx.command_path if err.ctx else "kea-db"
        _error(f"{err.format_message()} (see `{cmd} --help`)")
        rv = int(ExitCode.USAGE)
    except click.exceptions.Exit as err:
        rv = err.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        _error("interrupted")
        rv = int(ExitCode.INTERRUPTED)
    except KeaDbError as err:
        _error(err.message)
        rv = int(err.exit_code)
    except click.ClickException as err:
        _error(err.format_message())
        rv = int(ExitCode.USAGE)
    except BrokenPipeError:
        rv = int(ExitCode.OK)
    except Exception as err:  # a bug: one line, unless --debug asks for the traceback
        if debug:
            raise
        _error(f"internal error ({type(err).__name__}: {err}); rerun with --debug and report it")
        rv = int(ExitCode.INTERNAL)
    if rv is None:
        rv = 0
    if argv is None:
        # The console script: everything is written and closed, so skip the interpreter's
        # teardown (module and C-library finalisers cost tens of milliseconds).
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass
        os._exit(int(rv))
    return int(rv)
