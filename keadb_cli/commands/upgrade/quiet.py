"""MySQL: a step's full-table UPDATE without the row triggers whose work it does not need.

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
