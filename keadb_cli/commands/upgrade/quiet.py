"""MySQL: faster ways to run released steps, each proven to leave the same catalog and rows.

Three kinds of rule, each naming exact recorded statements (a rule that no longer matches
its revision's recorded SQL is an INTERNAL error, caught by tests/test_scripts.py):

- :class:`Quiet`: a full-table UPDATE without the row triggers whose work it does not need
  (below);
- :class:`Merge`: statements of one step that change one table, run as one ALTER TABLE
  (one pass over the table's rows instead of one per statement); the statements between
  them change other objects, so the order does not matter;
- :class:`Transient`: an index one step creates and the next step drops, never read in
  between: a run that runs both steps does not create it, and a run that finds it (a step
  begun by an older kea-db, kea-admin's 18.0) drops it before the UPDATE that would
  maintain it row by row.

The quiet UPDATE:

MySQL triggers cannot be switched off for a session. An ``UPDATE`` of every lease row runs the
table's AFTER UPDATE trigger once per row; on lease6 at schema 18.0 that is three procedure
calls per row (subnet, pool and client-class statistics: a JSON parse of the user context
twice), about two thirds of a 2.2 -> 3.0 upgrade's wall time. When the UPDATE leaves every
column those procedures read as it was, each call compares the old and the new values, finds
them equal and writes nothing: the statistics are the same with or without the trigger.

A :class:`Quiet` rule names such an UPDATE of a released revision, by its exact recorded
text, and the triggers it may run without. The step then runs, in place of that statement::

    DROP TRIGGER IF EXISTS <trigger>   -- each of them
    <the UPDATE>
    CREATE TRIGGER <trigger> ...       -- the definition the chain last created, unchanged

The recorded SQL of the revision (``migrations/mysql/rendered.json``) is not changed; the
variant has its own SHA-256 in the journal. Crash safety is the journal's: DROP and CREATE
are DDL statements with a fingerprint, the UPDATE runs in one transaction with the journal's
"next statement". From the first change to the last step's commit ``schema_version`` carries
the mark no Kea and no kea-admin accepts, and a cut run (Ctrl-C, SIGKILL, a lost connection)
is completed by the next ``kea-db upgrade``, which recreates the trigger before anything else
can use the table (tests/test_upgrade.py cuts runs inside that window). Non-JSON user
contexts, which stop the UPDATE when the class trigger parses them, are refused (or fixed)
by the upgrade's checks before any change, as for the recorded step.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from keadb_cli.commands.upgrade.journal import Statement, classify
from keadb_cli.errors import ExitCode, KeaDbError


@dataclass(frozen=True)
class Quiet:
    """``update``, a statement of ``revision``, runs with ``triggers`` dropped."""

    revision: str
    update: str  # the exact recorded statement
    triggers: tuple[str, ...]
    why: str


RULES: tuple[Quiet, ...] = (
    Quiet("mysql_19_0", "UPDATE lease6 SET binaddr = INET6_ATON(address), expire = expire",
          ("lease6_AUPD",),
          "binaddr and an expiry set to itself: lease6_AUPD's procedures read state, "
          "subnet_id, pool_id, lease_type and user_context, all unchanged"),
)

_CREATE = r"CREATE\s+(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\s+`?{name}`?\s"


@dataclass(frozen=True)
class Merge:
    """``statements`` of ``revision`` (exact recorded texts, in order) run as ``merged``, at
    the place of the first."""

    revision: str
    table: str
    statements: tuple[str, ...]
    merged: str
    why: str


MERGES: tuple[Merge, ...] = (
    Merge("mysql_16_0", "lease4",
          ("CREATE INDEX lease4_by_relay_id ON lease4 (relay_id)",
           "CREATE INDEX lease4_by_remote_id ON lease4 (remote_id)"),
          "ALTER TABLE lease4 ADD INDEX lease4_by_relay_id (relay_id), "
          "ADD INDEX lease4_by_remote_id (remote_id)",
          "CREATE INDEX is an ALTER TABLE ... ADD INDEX: both indexes from one scan"),
    Merge("mysql_18_0", "lease4",
          ("ALTER TABLE lease4 MODIFY client_id VARBINARY(255) NULL",
           "ALTER TABLE lease4 MODIFY relay_id VARBINARY(255) NULL",
           "ALTER TABLE lease4 MODIFY remote_id VARBINARY(255) NULL"),
          "ALTER TABLE lease4 MODIFY client_id VARBINARY(255) NULL, "
          "MODIFY relay_id VARBINARY(255) NULL, MODIFY remote_id VARBINARY(255) NULL",
          "three column changes of lease4 in one pass (the statement between them changes "
          "hosts)"),
)


@dataclass(frozen=True)
class Transient:
    """``create`` (a statement of ``created_in``) makes ``index`` on ``table``;
    ``dropped_in``'s statement ``alter`` drops it with its clause ``clause``."""

    table: str
    index: str
    created_in: str
    create: str
    dropped_in: str
    alter_prefix: str  # how the recorded ALTER TABLE that drops it begins
    clause: str  # its clause that drops the index, with the comma after it


TRANSIENTS: tuple[Transient, ...] = (
    Transient("lease6", "lease6_by_binaddr", "mysql_18_0",
              "CREATE INDEX lease6_by_binaddr ON lease6 (binaddr)", "mysql_19_0",
              "ALTER TABLE lease6 CHANGE expire expire TIMESTAMP NULL, ",
              "DROP INDEX lease6_by_binaddr, "),
)


@dataclass(frozen=True)
class Way:
    """One way to run a step: its statements, the SHA-256 the journal keeps, and for a way
    that depends on the catalog, (table, index, whether the index must exist) at the start
    of the step."""

    statements: list[str]
    sha256: str
    needs_index: tuple[str, str, bool] | None = None
    fresh: bool = True  # False: only a step this way began is run with it (a resume)


def ways(revision: str, recorded: list[str], text_sha256: str,
         following: frozenset[str] = frozenset()) -> list[Way]:
    """Every way to run ``revision``, the preferred first (the first ``fresh`` one whose
    ``needs_index`` holds runs a fresh step); the recorded SQL last, and the variants of
    earlier kea-db releases between, so that a step any of them began is resumed with its
    own statements. ``following``: the later revisions of the same run.

    Raises:
        KeaDbError (INTERNAL): a rule no longer matches the recorded SQL.
    """
    out: list[Way] = []
    fast = _merged(revision, recorded)
    for rule in TRANSIENTS:
        if rule.created_in == revision:
            lean = _without(fast, rule.create, revision)
            if rule.dropped_in in following:
                fast = lean
            else:  # a step begun so by a run cut in it, resumed with a lower target
                out.append(Way(lean, sha256(lean), fresh=False))
    quiet_fast = variant(revision, fast)
    if quiet_fast is not None:
        fast = quiet_fast
    dropping = [rule for rule in TRANSIENTS if rule.dropped_in == revision]
    for rule in dropping:
        at = _one(fast, _drops(rule), revision)
        lean = [*fast[:at], fast[at].replace(rule.clause, "", 1), *fast[at + 1:]]
        drop = [f"DROP INDEX {rule.index} ON {rule.table}", *lean]
        out.append(Way(drop, sha256(drop), (rule.table, rule.index, True)))
        out.append(Way(lean, sha256(lean), (rule.table, rule.index, False)))
    if not dropping and fast != recorded:
        out.insert(0, Way(fast, sha256(fast)))
    earlier = variant(revision, recorded)  # what kea-db 26's variant ran
    if earlier is not None and earlier not in [w.statements for w in out]:
        out.append(Way(earlier, sha256(earlier)))
    out.append(Way(recorded, text_sha256))
    return out


def _one(statements: list[str], match: Callable[[str], bool], revision: str) -> int:
    places = [i for i, s in enumerate(statements) if match(s.strip())]
    if len(places) != 1:
        raise KeaDbError(f"a rule of {revision} does not match its recorded SQL once",
                         exit_code=ExitCode.INTERNAL)
    return places[0]


def _equal(text: str) -> Callable[[str], bool]:
    return lambda s: s == text


def _drops(rule: Transient) -> Callable[[str], bool]:
    """Matches the ALTER TABLE of ``rule.dropped_in`` that drops the index."""
    return lambda s: s.startswith(rule.alter_prefix) and rule.clause in s


def _without(statements: list[str], statement: str, revision: str) -> list[str]:
    at = _one(statements, _equal(statement), revision)
    return [*statements[:at], *statements[at + 1:]]


def _merged(revision: str, recorded: list[str]) -> list[str]:
    """``recorded`` with each :class:`Merge` of ``revision`` applied."""
    out = list(recorded)
    for rule in MERGES:
        if rule.revision != revision:
            continue
        places = [_one(out, _equal(x), revision) for x in rule.statements]
        if places != sorted(places):
            raise KeaDbError(f"a merge of {revision} is out of order",
                             exit_code=ExitCode.INTERNAL)
        between = [classify(s) for i, s in enumerate(out)
                   if places[0] < i < places[-1] and i not in places]
        if any(st.kind not in ("table", "trigger", "procedure", "function")
               or st.target == ("table", rule.table) for st in between):
            raise KeaDbError(f"a merge of {revision} would move a statement over another "
                             f"that uses {rule.table}", exit_code=ExitCode.INTERNAL)
        out = [rule.merged if i == places[0] else s for i, s in enumerate(out)
               if i == places[0] or i not in places]
    return out


def rule_for(revision: str) -> Quiet | None:
    return next((rule for rule in RULES if rule.revision == revision), None)


def trigger_definition(name: str, before: str) -> str:
    """The ``CREATE TRIGGER`` statement the chain last ran for ``name`` up to revision
    ``before`` (included): what the database holds at that schema.

    Raises:
        KeaDbError (INTERNAL): no revision up to ``before`` creates it.
    """
    from keadb_cli.schema import scripts

    pattern = re.compile(_CREATE.format(name=re.escape(name)), re.I)
    for revision in reversed(scripts.chain_to("mysql", before)):
        for statement in reversed(scripts.mysql_statements(
                scripts.rendered_step("mysql", revision))):
            if pattern.match(statement.lstrip()):
                return statement
    raise KeaDbError(f"no revision up to {before} creates trigger {name}",
                     exit_code=ExitCode.INTERNAL)


def variant(revision: str, recorded: list[str]) -> list[str] | None:
    """The statements of ``revision`` with its quiet UPDATE wrapped, or None when it has no
    rule.

    Raises:
        KeaDbError (INTERNAL): the rule's UPDATE is not (exactly once) in the recorded SQL.
    """
    from keadb_cli.schema import scripts

    rule = rule_for(revision)
    if rule is None:
        return None
    places = [i for i, s in enumerate(recorded) if s.strip() == rule.update]
    previous = scripts.recorded("mysql").get(revision, {}).get("previous")
    if len(places) != 1 or previous is None:
        raise KeaDbError(f"the quiet UPDATE of {revision} is not in its recorded SQL once",
                         exit_code=ExitCode.INTERNAL)
    at = places[0]
    drops = [f"DROP TRIGGER IF EXISTS {name}" for name in rule.triggers]
    creates = [trigger_definition(name, previous) for name in rule.triggers]
    return [*recorded[:at], *drops, recorded[at], *creates, *recorded[at + 1:]]


def sha256(statements: list[str]) -> str:
    """The journal's fingerprint of a variant (never equal to a recorded step's, which is
    the hash of the rendered text)."""
    return hashlib.sha256(("quiet\x00" + "\x00".join(statements)).encode()).hexdigest()


def classified(statements: list[str]) -> list[Statement]:
    return [classify(s) for s in statements]
