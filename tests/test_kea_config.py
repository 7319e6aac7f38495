"""keadb_cli.kea.config: Kea's configuration syntax, includes, positions, broken files."""

from __future__ import annotations

import gzip
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keadb_cli.errors import ConfigError, ExitCode
from keadb_cli.kea.config import MAX_INCLUDE_DEPTH, MAX_NESTING, KeaConfig, load, loads

DATA = Path(__file__).parent / "data" / "configs"
EXAMPLES = Path("/usr/share/doc/kea/examples")
LOCATION = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): \S")


def error_of(call: Any, *args: Any, **kwargs: Any) -> ConfigError:
    """The ConfigError ``call`` raises, checked for the project's error rules."""
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    exc = info.value
    assert exc.exit_code == ExitCode.CONFIG
    assert "\n" not in exc.message
    assert "Traceback" not in exc.message
    return exc


def where(exc: ConfigError) -> tuple[str, int, int]:
    m = LOCATION.match(exc.message)
    assert m, f"no file:line:column in {exc.message!r}"
    return m.group("file"), int(m.group("line")), int(m.group("col"))


# -- syntax -------------------------------------------------------------------------------


def test_features_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(DATA / "valid" / "features.json", cwd=DATA)
    dhcp4 = config["Dhcp4"]
    assert dhcp4["interfaces-config"] == {"interfaces": ["eth0"]}
    assert dhcp4["lease-database"] == {
        "type": "mysql", "name": "kea", "user": "kea", "password": "not-a-default",
        "port": 3306,
    }
    assert dhcp4["valid-lifetime"] == 4000
    assert dhcp4["renew-timer"] == 10
    assert dhcp4["ratio"] == 0.5
    assert dhcp4["strings"] == [
        "a // not a comment", "b # not a comment", "c /* not a comment */",
        'escapes " \\ / \b \f \n \r \t \u00e9',
    ]
    assert dhcp4["empty"] == {"map": {}, "list": []}
    assert dhcp4["literals"] == [True, False, None, 0, 5.0, -1500.0]
    assert isinstance(dhcp4["literals"][3], int)
    assert config.files == [str(DATA / "valid" / "features.json"), "valid/features-db.json"]
    assert [w.split(": ", 1)[1] for w in config.warnings] == [
        "extra comma: a piece of configuration may have been left out",
        "extra comma: a piece of configuration may have been left out",
        "leading zeros in integers will be deprecated",
    ]
    assert config.warnings[0].endswith(":7:54: extra comma: a piece of configuration may "
                                       "have been left out")
    assert config.warnings[1].endswith(":7:57: extra comma: a piece of configuration may "
                                       "have been left out")
    # The include's own trailing comma is a regular separator: no warning for it.


def test_mapping_interface() -> None:
    config = loads('{"Dhcp4": {}, "Dhcp6": {"a": 1}}')
    assert isinstance(config, KeaConfig)
    assert list(config) == ["Dhcp4", "Dhcp6"]
    assert len(config) == 2
    assert config.get("Dhcp6") == {"a": 1}
    assert config.root == {"Dhcp4": {}, "Dhcp6": {"a": 1}}


def test_repr_hides_the_tree() -> None:
    config = loads('{"Dhcp4": {"lease-database": {"type": "mysql", "password": "s3cret"}}}')
    assert "s3cret" not in repr(config)
    assert "<string>" in repr(config)


@pytest.mark.parametrize(
    ("text", "expected", "warnings"),
    [
        ('{"a": 1,}', {"a": 1}, 1),
        ('{"a": [1,,2,]}', {"a": [1, 2]}, 2),
        ('{"a": 1,,, "b": 2}', {"a": 1, "b": 2}, 2),
        ('{"a": [[],[],]}', {"a": [[], []]}, 1),
        ('{"a": {"b": {},},}', {"a": {"b": {}}}, 2),
        ('{"a": .5, "b": -.25, "c": 5., "d": 1E3, "e": -0, "f": 0.0}',
         {"a": 0.5, "b": -0.25, "c": 5.0, "d": 1000.0, "e": 0, "f": 0.0}, 0),
        ('{"a": 007, "b": -01.5}', {"a": 7, "b": -1.5}, 2),
        ('{"a": 9223372036854775807, "b": -9223372036854775808}',
         {"a": 2**63 - 1, "b": -(2**63)}, 0),
        ('{"a":"x#y//z/*w*/"}#c\n', {"a": "x#y//z/*w*/"}, 0),
        ('{"a" /*1*/ : /*2*/ "b" /*3*/ , /*4*/ "c" // 5\n : # 6\n [ /*7*/ ] }',
         {"a": "b", "c": []}, 0),
        ('{"\\u0041\\u00ff": "\\u0000"}', {"A\u00ff": "\u0000"}, 0),
        ('{"a":\t1,\r\n"b":2}', {"a": 1, "b": 2}, 0),
        ('{"k": "caf\u00e9 \u2603"}', {"k": "caf\u00e9 \u2603"}, 0),
    ],
)
def test_syntax(text: str, expected: dict[str, Any], warnings: int) -> None:
    config = loads(text)
    assert config.root == expected
    assert len(config.warnings) == warnings


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ('{"a": 1 /* x\n\n', 1, 9, "comment not closed: '/*' on line 1 has no '*/'"),
        ('{"a": "x\n"}', 1, 7, "string not closed before the end of the line"),
        ('{"a": "x', 1, 7, "string not closed before the end of the file"),
        ('{"a": "x\\q"}', 1, 9, "bad escape \\q in a string"),
        ('{"a": "\\u12"}', 1, 8, "bad unicode escape"),
        ('{"a": "\\u0100"}', 1, 8, "unsupported unicode escape \\u0100"),
        ('{"a": "tab\there"}', 1, 11, "control character U+0009 in a string"),
        ('{"a": 1, "a": 2}', 1, 10, 'duplicate key "a" in one map (first at line 1, column 2)'),
        ('{"a": True}', 1, 7, "'True' must be written in lower case: true"),
        ('{"a": NULL}', 1, 7, "'NULL' must be written in lower case: null"),
        ("{'a': 1}", 1, 2, "invalid character '''"),
        ('{a: 1}', 1, 2, "invalid character 'a'"),
        ('{"a": 0x10}', 1, 8, "invalid character 'x'"),
        ('{"a": +1}', 1, 7, "number +1 has a plus sign"),
        ('{"a": -}', 1, 7, "'-' is not a number"),
        ('{"a": .}', 1, 7, "'.' is not a number"),
        ('{"a": 1e999}', 1, 7, "number 1e999 is too large"),
        ('{"a": 9223372036854775808}', 1, 7, "does not fit in 64 bits"),
        ('{"a": 1 "b": 2}', 1, 9, "unexpected string: expected ',' or '}'"),
        ('{"a" 1}', 1, 6, "unexpected value: expected ':' after the key"),
        ('{"a": "b": 1}', 1, 10, "unexpected ':'"),
        ('{,}', 1, 2, "unexpected ','"),
        ('{"a": [,]}', 1, 8, "unexpected ','"),
        ('{"a": 1]', 1, 8, "unexpected ']'"),
        ('{"a": [1}', 1, 9, "unexpected '}'"),
        ("{} {}", 1, 4, "unexpected '{': expected the end of the file"),
        ("{},", 1, 3, "unexpected ','"),
        ("[]", 1, 1, "unexpected '[': expected '{' to start the configuration"),
        ('"Dhcp4"', 1, 1, "unexpected string: expected '{'"),
        ("", 1, 1, "empty configuration: expected '{'"),
        ("// just a comment\n", 2, 1, "empty configuration"),
        ('{"a": {', 1, 8, "unexpected end of file: expected a quoted key or '}'"),
        ("\ufeff{}", 1, 1, "byte order mark"),
        ("{\f}", 1, 2, "invalid character U+000C"),
        ("{\u00a0}", 1, 2, "invalid character U+00A0"),
        ('{<?foo "x"?>}', 1, 2, "unknown directive"),
        ('{<?include x?>}', 1, 2, "file name in double quotes"),
        ('{<?include ""?>}', 1, 2, "empty file name"),
        ('{<?include "x\n"?>}', 1, 2, "not closed before the end of the line"),
        ("{<?include", 1, 2, "include directive not closed"),
        ("{<?", 1, 2, "directive not closed"),
    ],
)
def test_syntax_errors(text: str, line: int, col: int, message: str) -> None:
    exc = error_of(loads, text, name="x.conf")
    assert where(exc) == ("x.conf", line, col)
    assert message in exc.message


def test_errors_never_quote_string_values() -> None:
    for text in ('{"password" "s3cret-value"}', '{"password": "s3cret-value\n"}',
                 '{"password": "s3cret-value\\x"}', '{"a": 1 "s3cret-value": 2}'):
        exc = error_of(loads, text)
        assert "s3cret" not in exc.message


# -- positions ----------------------------------------------------------------------------


def test_positions() -> None:
    text = ('{\n  "Dhcp4": {\n    "lease-database": {\n      "type": "mysql",\n'
            '      "port" /* c */ : 3306\n    },\n    "list": [ 1, {"x": 2}, [3] ]\n  }\n}\n')
    config = loads(text, name="p.conf")
    dhcp4 = config["Dhcp4"]
    db = dhcp4["lease-database"]
    assert str(config.position(config.root)) == "p.conf:1:1"
    assert str(config.position(dhcp4)) == "p.conf:2:12"
    assert str(config.position(dhcp4, "lease-database")) == "p.conf:3:5"
    assert str(config.position(dhcp4, "lease-database", value=True)) == "p.conf:3:23"
    assert str(config.position(db, "type")) == "p.conf:4:7"
    assert str(config.position(db, "type", value=True)) == "p.conf:4:15"
    assert str(config.position(db, "port", value=True)) == "p.conf:5:24"
    assert config.location(db, "port") == "p.conf:5:7"
    items = dhcp4["list"]
    assert [str(config.position(items, i)) for i in range(3)] == [
        "p.conf:7:15", "p.conf:7:18", "p.conf:7:28"]
    assert str(config.position(items, -1)) == "p.conf:7:28"
    assert config.position(items, 3) is None
    assert config.position(db, "missing") is None
    assert config.location(db, "missing") == "p.conf:3:23"  # falls back to the map
    assert config.position({"not": "from the file"}) is None
    assert config.location({}) == "p.conf"
    pos = config.position(db)
    assert pos is not None and pos.file_line == "p.conf:3"


def test_positions_across_includes(tmp_path: Path) -> None:
    (tmp_path / "db.json").write_text('// db\n"lease-database": {\n  "type": "mysql"\n},\n')
    (tmp_path / "main.json").write_text(
        '{"Dhcp4": {\n  "a": 1,\n  <?include "db.json"?>\n  "b": 2\n}}\n')
    config = load(tmp_path / "main.json", cwd=tmp_path)
    dhcp4 = config["Dhcp4"]
    assert dhcp4 == {"a": 1, "lease-database": {"type": "mysql"}, "b": 2}
    assert str(config.position(dhcp4, "lease-database")) == "db.json:2:1"
    assert str(config.position(dhcp4["lease-database"], "type", value=True)) == "db.json:3:11"
    assert config.position(dhcp4, "b") is not None
    assert str(config.position(dhcp4, "b")).endswith("main.json:4:3")


def test_map_opened_in_an_include_and_closed_after_it(tmp_path: Path) -> None:
    # Kea splices tokens, not values: a map may start in one file and end in another.
    (tmp_path / "head.json").write_text('{\n  "a": 1,\n  "list": [ 1,')
    (tmp_path / "main.json").write_text('{"x": <?include "head.json"?> 2 ],\n "b": 2},\n'
                                        ' "y": 3}')
    config = load(tmp_path / "main.json", cwd=tmp_path)
    assert config.root == {"x": {"a": 1, "list": [1, 2], "b": 2}, "y": 3}
    inner = config["x"]
    assert str(config.position(inner)) == "head.json:1:1"
    assert str(config.position(inner, "a")) == "head.json:2:3"
    assert str(config.position(inner, "b")).endswith("main.json:2:2")
    assert str(config.position(inner["list"], 1)).endswith("main.json:1:31")
    assert str(config.position(config.root, "y")).endswith("main.json:3:2")
    (tmp_path / "main.json").write_text('{"x": <?include "head.json"?> 2 ],\n "a": 2}}')
    exc = error_of(load, tmp_path / "main.json", cwd=tmp_path)
    assert exc.message.endswith('main.json:2:2: duplicate key "a" in one map '
                                '(first at head.json:2:3)')


def test_duplicate_key_across_include(tmp_path: Path) -> None:
    (tmp_path / "inc.json").write_text('"a": 2,\n')
    (tmp_path / "main.json").write_text('{"a": 1,\n <?include "inc.json"?> }')
    exc = error_of(load, tmp_path / "main.json", cwd=tmp_path)
    assert where(exc) == ("inc.json", 1, 1)
    assert "first at " in exc.message and "main.json:1:2" in exc.message


# -- includes -----------------------------------------------------------------------------


def test_include_is_relative_to_cwd_not_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "sub.json").write_text('"from": "etc"')
    (tmp_path / "sub.json").write_text('"from": "cwd"')
    main = tmp_path / "etc" / "main.json"
    main.write_text('{<?include "sub.json"?>}')
    assert load(main, cwd=tmp_path).root == {"from": "cwd"}
    assert load(main, cwd=tmp_path / "etc").root == {"from": "etc"}
    # An absolute path is used as it is.
    main.write_text(f'{{<?include "{tmp_path / "etc" / "sub.json"}"?>}}')
    assert load(main, cwd=Path("/")).root == {"from": "etc"}


def test_include_default_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub.json").write_text('"x": 1')
    (tmp_path / "main.json").write_text('{<?include "sub.json"?>}')
    monkeypatch.chdir(tmp_path)
    config = load("main.json")
    assert config.root == {"x": 1}
    assert config.cwd == tmp_path
    assert config.path == "main.json"


def test_include_spliced_between_tokens(tmp_path: Path) -> None:
    (tmp_path / "value.json").write_text("[ 1, 2 ]")
    (tmp_path / "key.json").write_text('"k"')
    (tmp_path / "main.json").write_text(
        '{ <?include "key.json"?> : <?include "value.json"?>, '
        '"whole": <? include\n "value.json" \n?> }')
    config = load(tmp_path / "main.json", cwd=tmp_path)
    assert config.root == {"k": [1, 2], "whole": [1, 2]}


def test_include_nesting_limit(tmp_path: Path) -> None:
    # Kea refuses a new include while 11 are open: 11 nested levels work, 12 do not.
    def chain(levels: int) -> Path:
        for i in range(levels):
            nxt = f'<?include "f{i + 1}.json"?>' if i + 1 < levels else '"deep": true'
            (tmp_path / f"f{i}.json").write_text(nxt)
        (tmp_path / "main.json").write_text('{<?include "f0.json"?>}')
        return tmp_path / "main.json"

    assert load(chain(MAX_INCLUDE_DEPTH), cwd=tmp_path).root == {"deep": True}
    exc = error_of(load, chain(MAX_INCLUDE_DEPTH + 1), cwd=tmp_path)
    assert "too many nested includes: Kea allows 11" in exc.message
    assert where(exc) == (f"f{MAX_INCLUDE_DEPTH - 1}.json", 1, 1)


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text("1")
    (tmp_path / "main.json").write_text('{"a": <?include "one.json"?>, '
                                        '"b": <?include "one.json"?>}')
    assert load(tmp_path / "main.json", cwd=tmp_path).root == {"a": 1, "b": 1}


def test_self_include(tmp_path: Path) -> None:
    (tmp_path / "main.json").write_text('{\n<?include "main.json"?>}')
    exc = error_of(load, tmp_path / "main.json", cwd=tmp_path)
    assert "include cycle:" in exc.message
    assert where(exc)[1:] == (2, 1)


def test_include_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "main.json").write_text('{<?include "dir"?>}')
    exc = error_of(load, tmp_path / "main.json", cwd=tmp_path)
    assert "main.json:1:2: include file dir is a directory, not a file" in exc.message


def test_include_in_string_is_text() -> None:
    assert loads('{"a": "<?include \\"x\\"?>"}').root == {"a": '<?include "x"?>'}


def test_unreadable_main_file(tmp_path: Path) -> None:
    exc = error_of(load, tmp_path / "nope.json")
    assert exc.message == f"Kea configuration file {tmp_path / 'nope.json'} does not exist"
    exc = error_of(load, tmp_path)
    assert exc.message == f"Kea configuration file {tmp_path} is a directory, not a file"


# -- the broken-file corpus ---------------------------------------------------------------

BROKEN = [
    ("unclosed-comment.json", 3, "comment not closed"),
    ("unclosed-string.json", 3, "string not closed before the end of the line"),
    ("unclosed-include.json", 4, "expected '?>' to close the include directive"),
    ("missing-include.json", 4, "include file broken/does-not-exist.json does not exist"),
    ("cycle-a.json", 2, "include cycle: "),
    ("duplicate-key.json", 6, 'duplicate key "type" in one map (first at line 4, column 13)'),
    ("upper-case-true.json", 3, "'True' must be written in lower case"),
    ("plus-sign.json", 3, "plus sign"),
    ("missing-comma.json", 4, "unexpected string: expected ',' or '}'"),
    ("trailing-text.json", 4, "unexpected '}': expected the end of the file"),
    ("unclosed-map.json", 4, "unexpected end of file"),
    ("empty.json", 1, "empty configuration"),
    ("only-comments.json", 3, "empty configuration"),
]


@pytest.mark.parametrize(("name", "line", "message"), BROKEN)
def test_broken_corpus(name: str, line: int, message: str) -> None:
    exc = error_of(load, DATA / "broken" / name, cwd=DATA)
    file, got_line, _ = where(exc)
    assert message in exc.message
    assert got_line == line
    assert file.endswith(".json")


def test_cycle_message_names_the_chain() -> None:
    exc = error_of(load, DATA / "broken" / "cycle-a.json", cwd=DATA)
    assert exc.message.endswith(
        f"include cycle: {DATA / 'broken' / 'cycle-a.json'} -> broken/cycle-b.json -> "
        "broken/cycle-a.json")
    assert where(exc)[0] == "broken/cycle-b.json"


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{\n  "a": "caf\u00e9"\n}\n'.encode("latin-1"))
    exc = error_of(load, path)
    assert exc.message == f"{path}:2:12: not UTF-8 text (byte 0xe9)"


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "kea.bin"
    path.write_bytes(bytes(range(256)) * 64)
    exc = error_of(load, path)
    assert exc.message == f"{path}:1:1: binary data (a NUL byte): not a Kea configuration file"


def test_binary_include(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00")
    (tmp_path / "main.json").write_text('{\n<?include "blob"?>}')
    exc = error_of(load, tmp_path / "main.json", cwd=tmp_path)
    assert exc.message == "blob:1:8: binary data (a NUL byte): not a Kea configuration file"


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_ten_megabytes_of_nesting(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text("{" + '"a":' + opener * (10 * 1024 * 1024 // len(opener)))
    start = time.perf_counter()
    exc = error_of(load, path)
    assert time.perf_counter() - start < 5
    assert f"maps and lists nested more than {MAX_NESTING} deep" in exc.message
    assert where(exc)[1] == 1


def test_ten_megabytes_of_brackets_at_top(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * (10 * 1024 * 1024))
    exc = error_of(load, path)
    assert where(exc) == (str(path), 1, 1)


def test_nesting_limit_is_exact() -> None:
    depth = MAX_NESTING  # the top-level map is one of them
    ok = '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    node, levels = loads(ok).root, 1
    while node:
        node = node["a"] if isinstance(node, dict) else node[0]
        levels += 1
    assert levels == depth
    exc = error_of(loads, '{"a":' + "[" * depth + "]" * depth + "}")
    assert "nested more than" in exc.message


# -- Debian's kea-doc examples -------------------------------------------------------------


def example_files() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    # Only the Kea configurations: https/ also holds Apache and nginx files.
    return sorted(p for p in EXAMPLES.rglob("*")
                  if p.is_file() and p.name.endswith((".json", ".json.gz")))


def read_example(path: Path, tmp_path: Path) -> Path:
    """The example as a plain file (kea-doc may compress some)."""
    if path.suffix != ".gz":
        return path
    plain = tmp_path / path.stem
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    return plain


@pytest.mark.skipif(not example_files(), reason="Debian's kea-doc examples are not installed")
def test_every_kea_doc_example_reads(tmp_path: Path) -> None:
    files = example_files()
    kea_dirs = {p.relative_to(EXAMPLES).parts[0] for p in files}
    assert {"kea4", "kea6"} <= kea_dirs
    assert len([p for p in files if p.relative_to(EXAMPLES).parts[0] in ("kea4", "kea6")]) > 40
    for path in files:
        config = load(read_example(path, tmp_path), cwd=tmp_path)
        assert isinstance(config.root, dict) and config.root, path
        assert config.warnings == [], path


# -- property-based -----------------------------------------------------------------------

_SEPARATORS = st.sampled_from(
    ["", " ", "\n", "\t", "\r\n", " // comment\n", " # comment\n", "/* c */", "/* a\n b */",
     "\n  # \"quoted\" // nested /* not a block\n"])
_KEYS = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | _KEYS)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def render(value: Any, draw: Any) -> tuple[str, int]:
    """Kea text for ``value`` with random comments and extra commas; and the comma count."""
    sep = draw(_SEPARATORS)
    if isinstance(value, dict):
        parts = [render_pair(k, v, draw) for k, v in value.items()]
        body, extra = ",".join(p[0] for p in parts), sum(p[1] for p in parts)
        if value and draw(st.booleans()):
            body += "," + draw(_SEPARATORS)
            extra += 1
        return f"{sep}{{{body}}}{sep}", extra
    if isinstance(value, list):
        parts = [render(v, draw) for v in value]
        body, extra = ",".join(p[0] for p in parts), sum(p[1] for p in parts)
        if value and draw(st.booleans()):
            body += ","
            extra += 1
        return f"{sep}[{body}]{sep}", extra
    return f"{sep}{json.dumps(value, ensure_ascii=False)}{sep}", 0


def render_pair(key: str, value: Any, draw: Any) -> tuple[str, int]:
    text, extra = render(value, draw)
    sep = draw(_SEPARATORS)
    return f"{sep}{json.dumps(key, ensure_ascii=False)}{sep}:{text}", extra


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.data())
def test_round_trip(value: dict[str, Any], data: st.DataObject) -> None:
    text, extra = render(value, data.draw)
    config = loads(text)
    assert config.root == value
    assert len(config.warnings) == extra
    # Every map and list of the result knows where it starts.
    stack: list[Any] = [config.root]
    while stack:
        node = stack.pop()
        assert config.position(node) is not None
        children = node.values() if isinstance(node, dict) else node
        stack.extend(c for c in children if isinstance(c, (dict, list)))
        for key in (node if isinstance(node, dict) else range(len(node))):
            assert config.position(node, key) is not None
            assert config.position(node, key, value=True) is not None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60) | st.text(alphabet='{}[],:"\\/*#<?>.-+0123456789aeflnrstu \n',
                                         max_size=60))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        loads(text)
    except ConfigError as exc:
        assert exc.exit_code == ExitCode.CONFIG
        assert "\n" not in exc.message
        assert LOCATION.match(exc.message), exc.message


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=4), st.data())
def test_damaged_text_gives_a_config_or_a_config_error(value: dict[str, Any],
                                                       data: st.DataObject) -> None:
    text = json.dumps(value, ensure_ascii=False)
    cut = data.draw(st.integers(0, len(text) - 1))
    insert = data.draw(st.sampled_from(["", "{", "}", "[", "]", ",", ":", '"', "/*", "<?",
                                        "\\", "#", "\x00", "\ufeff"]))
    damaged = text[:cut] + insert + text[cut + 1:]
    try:
        loads(damaged)
    except ConfigError as exc:
        assert LOCATION.match(exc.message), exc.message
