"""MySQL: an upgrade that survives an error, SIGKILL or Ctrl-C, and says exactly where it was.

MySQL commits every DDL statement by itself, so a step cut short leaves a database that is
neither the old schema nor the new one. kea-db therefore keeps a journal, its own table
``keadb_upgrade_journal`` (one row), while it upgrades, and marks ``schema_version`` so
that no Kea release and no kea-admin takes the database for a clean version meanwhile:
its ``minor`` is :data:`UPGRADING_MINOR` from the first change to the last step's commit.

Each statement of a step is run so that a later run knows whether it took effect:

- row changes (``UPDATE``, ``INSERT``, ``DELETE``) run in one transaction with the
  journal's "next statement" update: both or neither;
- DDL is atomic on the servers kea-db supports (MariaDB 10.6+, MySQL 8.0+), and before it
  runs the journal records a fingerprint of the one object it changes (``SHOW CREATE``
  of the table, trigger, procedure or function, or its absence). A later run that finds the
  journal at a DDL statement compares the object with that fingerprint: unchanged means
  the statement did not happen (run it), changed means it did (go on after it);
- session settings (``SET @x = ...``) change nothing on disk: a resumed step replays those
  before the statement it resumes at;
- ``CALL kea_db_...()``, kea-db's own temporary procedures, guard each of their parts and
  are simply run again.

A statement of any other shape is refused when the journal is built (a test runs every
MySQL revision through :func:`classify`), so a new revision cannot slip past this.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass

from keadb_cli.db.session import Session
from keadb_cli.errors import KeaDbError, QueryError
from keadb_cli.schema.state import UPGRADING_MINOR

JOURNAL = "keadb_upgrade_journal"
__all__ = ["JOURNAL", "UPGRADING_MINOR", "Entry", "Statement", "classify"]

_NAME = r"`?([A-Za-z0-9_$]+)`?"
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("set", re.compile(r"SET\s+@", re.I)),
    # kea-db's own helper procedures, which check the state themselves piece by piece and
    # can run again after an interruption (tests/test_upgrade.py proves a second run
    # changes nothing).
    ("rerun", re.compile(r"CALL\s+`?kea_db_\w+`?\s*\(\s*\)", re.I)),
    ("dml", re.compile(r"(UPDATE|INSERT|DELETE|REPLACE)\b", re.I)),
    ("table", re.compile(rf"(?:ALTER|CREATE|DROP)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
                         rf"{_NAME}", re.I)),
    ("index", re.compile(rf"(?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+{_NAME}\s+ON\s+{_NAME}",
                         re.I)),
    ("trigger", re.compile(rf"(?:CREATE|DROP)\s+(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\s+"
                           rf"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?{_NAME}", re.I)),
    ("procedure", re.compile(rf"(?:CREATE|DROP)\s+(?:DEFINER\s*=\s*\S+\s+)?PROCEDURE\s+"
                             rf"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?{_NAME}", re.I)),
    ("function", re.compile(rf"(?:CREATE|DROP)\s+(?:DEFINER\s*=\s*\S+\s+)?FUNCTION\s+"
                            rf"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?{_NAME}", re.I)),
)


@dataclass(frozen=True)
class Statement:
    """One statement of a step: its text, its kind, and the object a DDL statement changes
    (``("table", "lease6")``)."""

    sql: str
    kind: str  # set, dml, rerun, table, trigger, procedure, function
    target: tuple[str, str] | None = None


def classify(sql: str) -> Statement:
    """The kind of one statement of a kea-db MySQL revision.

    Raises:
        KeaDbError: a shape the journal cannot make resumable (a bug in a revision).
    """
    text = sql.lstrip()
    for kind, pattern in _KINDS:
        match = pattern.match(text)
        if not match:
            continue
        if kind in ("set", "dml", "rerun"):
            return Statement(sql, kind)
        if kind == "index":  # an index belongs to its table
            return Statement(sql, "table", ("table", match.group(2)))
        return Statement(sql, kind, (kind, match.group(1)))
    raise KeaDbError(f"kea-db cannot make this MySQL statement resumable: {text[:80]!r}")


def fingerprint(session: Session, target: tuple[str, str]) -> str:
    """A hash of an object's definition as the server shows it ("" when it is absent)."""
    kind, name = target
    show = {"table": "TABLE", "trigger": "TRIGGER", "procedure": "PROCEDURE",
            "function": "FUNCTION"}[kind]
    try:
        rows = session.query(f"SHOW CREATE {show} `{name}`")
    except QueryError:
        return ""  # absent (1146 table, 1360 trigger, 1305 routine)
    text = "\x00".join(str(v) for row in rows for v in row if v is not None)
    # AUTO_INCREMENT=n moves with the rows, not with the statement.
    text = re.sub(r" AUTO_INCREMENT=\d+", "", text)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """The journal's one row."""

    from_schema: str  # "18.0": what schema_version said before the upgrade began
    target: str  # the revision the run was asked for ("mysql_30_0")
    step: str  # the revision being applied
    step_sha256: str  # of the step's SQL, so a resume runs the very same statements
    next_statement: int  # index of the first statement not known to be done
    running_fingerprint: str | None  # set while a DDL statement runs


CREATE_JOURNAL = (
    f"CREATE TABLE IF NOT EXISTS {JOURNAL} ("
    "id TINYINT UNSIGNED NOT NULL PRIMARY KEY, from_schema VARCHAR(16) NOT NULL, "
    "target VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL, step_sha256 CHAR(64) NOT NULL, "
    "next_statement INT UNSIGNED NOT NULL, running_fingerprint CHAR(64) NULL, "
    "updated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
    ") ENGINE=InnoDB"
)


def read(session: Session) -> Entry | None:
    """The journal of an interrupted upgrade, or None when there is none."""
    try:
        rows = session.query(
            f"SELECT from_schema, target, step, step_sha256, next_statement, "
            f"running_fingerprint FROM {JOURNAL} WHERE id = 1")
    except QueryError as err:
        if err.code == "1146":
            return None
        raise
    if not rows:
        return None
    f, t, s, h, n, r = rows[0]
    return Entry(f or "", t or "", s or "", h or "", int(n or 0), r)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def begin(session: Session, from_schema: str, target: str) -> None:
    """Create the journal and mark ``schema_version`` as being upgraded (one transaction
    for the row and the mark)."""
    session.query(CREATE_JOURNAL)
    session.query("BEGIN")
    session.query(f"DELETE FROM {JOURNAL}")
    session.query(f"INSERT INTO {JOURNAL} (id, from_schema, target, step, step_sha256, "
                  f"next_statement) VALUES (1, {_quote(from_schema)}, {_quote(target)}, '', "
                  f"'', 0)")
    session.query(f"UPDATE schema_version SET minor = {UPGRADING_MINOR}")
    session.query("COMMIT")


def start_step(session: Session, step: str, sha256: str) -> None:
    session.query(f"UPDATE {JOURNAL} SET step = {_quote(step)}, step_sha256 = "
                  f"{_quote(sha256)}, next_statement = 0, running_fingerprint = NULL "
                  "WHERE id = 1")


def run_statement(session: Session, statement: Statement, index: int, *,
                  last_of_run: bool) -> None:
    """Run statement ``index`` of the current step so that the journal stays exact."""
    done = f"UPDATE {JOURNAL} SET next_statement = {index + 1}, running_fingerprint = NULL " \
           "WHERE id = 1"
    if statement.kind in ("set", "rerun"):
        session.query(statement.sql)
        session.query(done)
        return
    if statement.kind == "dml":
        session.query("BEGIN")
        try:
            session.query(statement.sql)
            if not last_of_run and _sets_version(statement.sql):
                # A step's own version row: keep the mark until the last step commits.
                session.query(f"UPDATE schema_version SET minor = {UPGRADING_MINOR}")
            session.query(done)
            session.query("COMMIT")
        except BaseException:
            _rollback(session)
            raise
        return
    assert statement.target is not None
    before = fingerprint(session, statement.target)
    session.query(f"UPDATE {JOURNAL} SET running_fingerprint = {_quote(before)} WHERE id = 1")
    try:
        session.query(statement.sql)
    except QueryError:
        # The server answered with an error: the statement did not take effect (a failed
        # DDL statement changes nothing), so a later run runs it again whatever the object
        # looks like by then (the operator may have removed what stopped it). Only a
        # statement whose outcome is unknown (a cut session) is judged by its fingerprint.
        if not session.closed:
            with contextlib.suppress(KeaDbError):
                session.query(f"UPDATE {JOURNAL} SET running_fingerprint = NULL WHERE id = 1")
        raise
    session.query(done)


def resolve_running(session: Session, statement: Statement, entry: Entry) -> bool:
    """For a journal found at a DDL statement that was running: did it take effect?"""
    if entry.running_fingerprint is None or statement.target is None:
        return False  # a DML statement's transaction rolled back, or SET: run it (again)
    return fingerprint(session, statement.target) != entry.running_fingerprint


def finish(session: Session) -> None:
    session.query(f"DROP TABLE IF EXISTS {JOURNAL}")


def _sets_version(sql: str) -> bool:
    return re.match(r"\s*UPDATE\s+`?schema_version`?\s+SET", sql, re.I) is not None


def _rollback(session: Session) -> None:
    if not session.closed:
        with contextlib.suppress(KeaDbError):
            session.query("ROLLBACK")


def atomic_ddl(server: str) -> bool:
    """Whether a MySQL server's DDL statements are atomic (crash-safe): MariaDB 10.6+ and
    Oracle MySQL 8.0+. ``server`` is the greeting's version ("10.11.19-MariaDB-1",
    "5.5.5-10.5.29-MariaDB", "9.1.0"). The journal relies on it only for a server that
    crashes in the middle of a statement; a cut client leaves a statement to the server,
    which completes or undoes it either way."""
    import re

    maria = re.search(r"(\d+)\.(\d+)\.\d+-MariaDB", server, re.IGNORECASE)
    if maria:
        return (int(maria.group(1)), int(maria.group(2))) >= (10, 6)
    oracle = re.match(r"(\d+)\.(\d+)", server)
    return oracle is not None and int(oracle.group(1)) >= 8
