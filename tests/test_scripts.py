"""The rendered DDL that init runs, and its cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from keadb_cli.errors import ExitCode, KeaDbError
from keadb_cli.schema import migrate, scripts


def test_known_schemas_from_file_names() -> None:
    mysql = [*((n, 0) for n in range(14, 36)), (22, 1), (22, 2)]
    assert scripts.known_schemas("mysql") == {
        (major, minor): f"mysql_{major}_{minor}" for major, minor in mysql
    }
    pgsql = [(13, 0), *((n, 0) for n in range(14, 23)), (22, 1), (22, 2),
             *((n, 0) for n in range(23, 35))]
    assert scripts.known_schemas("postgresql") == {
        (major, minor): f"pgsql_{major}_{minor}" for major, minor in pgsql
    }


def test_rendering_is_cached_and_checked_against_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEA_DB_CACHE_DIR", str(tmp_path))
    first = scripts.rendered("mysql", "mysql_14_0")
    cached = list(tmp_path.glob("mysql_14_0-*.sql"))
    assert len(cached) == 1
    assert cached[0].read_text() == first
    # A cache file that is not what was recorded is never executed: it is rendered again
    # (and the file replaced).
    cached[0].write_text(first.replace("CREATE TABLE", "CREATE TABLE evil_", 1))
    assert scripts.rendered("mysql", "mysql_14_0") == first
    assert cached[0].read_text() == first
    # The recorded text is what is read from the cache: no rendering at all.
    monkeypatch.setattr(migrate, "offline_sql", lambda *a, **k: pytest.fail("rendered"))
    assert scripts.rendered_step("mysql", "mysql_14_0") == first


def test_a_changed_rendering_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kit or revision changed after release renders other SQL: refused, never run."""
    monkeypatch.setenv("KEA_DB_CACHE_DIR", str(tmp_path))
    real = migrate.offline_sql
    monkeypatch.setattr(migrate, "offline_sql",
                        lambda *a, **k: real(*a, **k).replace("lease4", "lease_4"))
    with pytest.raises(KeaDbError, match="not the one recorded") as info:
        scripts.rendered("postgresql", "pgsql_14_0")
    assert info.value.exit_code == ExitCode.INTERNAL
    assert list(tmp_path.glob("*.sql")) == []


def test_unwritable_cache_still_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("KEA_DB_CACHE_DIR", str(blocker / "cache"))
    assert "CREATE TABLE" in scripts.rendered("postgresql", "pgsql_13_0")


def test_mysql_statements_split_like_the_client() -> None:
    statements = scripts.mysql_statements(scripts.rendered("mysql", "mysql_14_0"))
    kinds: dict[str, int] = {}
    for s in statements:
        words = s.split()
        kinds[f"{words[0]} {words[1]}".upper()] = kinds.get(f"{words[0]} {words[1]}".upper(), 0) + 1
    # Kea 2.2's MySQL schema: 54 tables, 55 triggers, 32 procedures, 4 functions
    # (shared/docs/kea-facts.md §2.1).
    assert kinds["CREATE TABLE"] == 54
    assert kinds["CREATE TRIGGER"] == 55
    assert kinds["CREATE PROCEDURE"] == 32
    assert kinds["CREATE FUNCTION"] == 4
    # The version row comes last: an interrupted init never looks like a finished one.
    assert statements[-1].startswith("INSERT INTO schema_version")
    assert not any(s.upper().startswith("DELIMITER") for s in statements)
    assert all(not s.endswith(("$$", ";")) for s in statements)


def test_mysql_statements_delimiters() -> None:
    text = "-- c\nCREATE TABLE a (x INT);\n\nDELIMITER $$\nCREATE PROCEDURE p()\nBEGIN\n" \
           "  SELECT 1;\n  SELECT 2;\nEND\n$$\nDELIMITER ;\nINSERT INTO a VALUES (1);\n"
    assert scripts.mysql_statements(text) == [
        "CREATE TABLE a (x INT)",
        "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND",
        "INSERT INTO a VALUES (1)",
    ]


def test_known_schemas_agree_with_alembics_revision_chain() -> None:
    """init reads the revisions from file names (no alembic import); alembic's own walk of
    the chain must say the same, so the shortcut can never drift."""
    from keadb_cli.schema import migrate

    for db_type in ("mysql", "postgresql"):
        assert scripts.known_schemas(db_type) == migrate.known_schemas(db_type)


@pytest.mark.parametrize("db_type", ["mysql", "postgresql"])
def test_plan_without_alembic_is_alembics_plan(db_type: str) -> None:
    """upgrade plans its chain from the record and the files (no alembic import): the same
    steps and titles as alembic's walk, or the same refusal, from every schema to both
    heads (the main line's and the 2.6 line's 22.2) and from the first to every schema."""
    known = scripts.known_schemas(db_type)
    revisions = sorted(known.values(), key=migrate.schema_for_revision)
    heads = [migrate.head(db_type), revisions[0].split("_")[0] + "_22_2"]
    pairs = {(c, t) for c in revisions for t in heads} | {(revisions[0], t) for t in revisions}
    compared = 0
    for current, target in sorted(pairs):
        if current != target:
            try:
                expected: object = migrate.plan(db_type, target, current=current)
            except KeaDbError as err:
                expected = err.exit_code
            try:
                found: object = scripts.plan(db_type, target, current)
            except KeaDbError as err:
                found = err.exit_code
            assert found == expected, (current, target)
            compared += isinstance(expected, list)
    # 22.1 and 22.2 upgrade to 23.0 and on; 23.0 and on do not lead to 22.2.
    assert compared >= len(revisions) + 8


def test_quiet_variants_wrap_the_recorded_update_only() -> None:
    """Each quiet variant is its revision's recorded statements with, around the one UPDATE
    the rule names, a DROP TRIGGER IF EXISTS and that trigger's definition as the chain last
    created it; every statement of it is one the journal can resume."""
    import re

    from keadb_cli.commands.upgrade import journal, quiet

    assert quiet.RULES
    for rule in quiet.RULES:
        recorded = scripts.mysql_statements(scripts.rendered_step("mysql", rule.revision))
        variant = quiet.variant(rule.revision, recorded)
        assert variant is not None
        at = recorded.index(rule.update)
        n = len(rule.triggers)
        assert variant[:at] == recorded[:at]
        assert variant[at:at + n] == [f"DROP TRIGGER IF EXISTS {t}" for t in rule.triggers]
        assert variant[at + n] == rule.update
        creates = variant[at + n + 1:at + 2 * n + 1]
        assert variant[at + 2 * n + 1:] == recorded[at + 1:]
        # The definition: the last CREATE TRIGGER of that name in the revisions before.
        previous = migrate.previous("mysql", rule.revision)
        assert previous is not None
        earlier = [s for r in scripts.chain_to("mysql", previous)
                   for s in scripts.mysql_statements(scripts.rendered_step("mysql", r))]
        for name, create in zip(rule.triggers, creates, strict=True):
            made = [s for s in earlier if re.match(rf"CREATE TRIGGER {name}\s", s)]
            assert made and create == made[-1]
            assert "AFTER UPDATE ON" in create  # only UPDATE triggers are skipped
        for statement in variant:
            journal.classify(statement)
        assert quiet.sha256(variant) != quiet.sha256(recorded)
    assert quiet.variant("mysql_18_0", scripts.mysql_statements(
        scripts.rendered_step("mysql", "mysql_18_0"))) is None


def test_merged_ways_run_the_recorded_statements_of_one_table_as_one() -> None:
    """A merged way is its revision's recorded statements with the merged ones replaced by
    one ALTER TABLE at the place of the first; nothing else moves, the statements it passes
    change other objects, and the journal can resume every statement of it."""
    from keadb_cli.commands.upgrade import journal, quiet

    assert quiet.MERGES
    for rule in quiet.MERGES:
        recorded = scripts.mysql_statements(scripts.rendered_step("mysql", rule.revision))
        way = quiet.ways(rule.revision, recorded, "recorded")[0]
        first = recorded.index(rule.statements[0])
        expected = [rule.merged if s == rule.statements[0] else s for s in recorded
                    if s not in rule.statements[1:]]
        assert way.statements == expected
        assert way.statements.index(rule.merged) == first
        assert rule.merged.startswith(f"ALTER TABLE {rule.table} ")
        # Each merged statement's clause is in the merged ALTER.
        for statement in rule.statements:
            clause = statement.split(f" ON {rule.table} ")[0].replace("CREATE INDEX", "ADD INDEX") \
                if statement.startswith("CREATE INDEX") \
                else statement.removeprefix(f"ALTER TABLE {rule.table} ")
            assert clause.split(" (")[0] in rule.merged, clause
        passed = recorded[first + 1:recorded.index(rule.statements[-1])]
        for statement in passed:
            if statement not in rule.statements:
                assert journal.classify(statement).target != ("table", rule.table)
        for statement in way.statements:
            journal.classify(statement)
        assert way.sha256 != "recorded" and way.needs_index is None
        assert quiet.ways(rule.revision, recorded, "recorded")[-1].statements == recorded


def test_a_transient_index_is_not_built_when_the_run_drops_it() -> None:
    """lease6_by_binaddr, created by mysql_18_0 and dropped by mysql_19_0: a run through
    both does not create it; mysql_19_0 drops it first when it is there (a step begun by an
    older kea-db, or kea-admin's 18.0), else runs without the drop clause; the recorded SQL
    and kea-db 26's variant stay resumable."""
    from keadb_cli.commands.upgrade import quiet

    (rule,) = quiet.TRANSIENTS
    r18 = scripts.mysql_statements(scripts.rendered_step("mysql", rule.created_in))
    r19 = scripts.mysql_statements(scripts.rendered_step("mysql", rule.dropped_in))
    through = quiet.ways(rule.created_in, r18, "r18", frozenset({rule.dropped_in}))
    assert rule.create in r18 and rule.create not in through[0].statements
    alone = quiet.ways(rule.created_in, r18, "r18")
    assert rule.create in alone[0].statements  # a run that stops at 18.0 keeps it
    # Resumable either way, but never chosen for a fresh step of a run that stops at 18.0.
    (resumed,) = [w for w in alone if w.statements == through[0].statements]
    assert resumed.fresh is False and through[0].fresh and alone[0].fresh
    ways = quiet.ways(rule.dropped_in, r19, "r19")
    first, lean = ways[0], ways[1]
    assert first.needs_index == (rule.table, rule.index, True)
    assert first.statements[0] == f"DROP INDEX {rule.index} ON {rule.table}"
    assert first.statements[1:] == lean.statements
    assert lean.needs_index == (rule.table, rule.index, False)
    assert not any(rule.clause in s for s in lean.statements)
    assert [s.replace(rule.clause, "", 1) for s in quiet.variant(rule.dropped_in, r19) or []] \
        == lean.statements
    assert ways[-1].statements == r19 and ways[-1].sha256 == "r19"
    assert quiet.variant(rule.dropped_in, r19) in [w.statements for w in ways]
