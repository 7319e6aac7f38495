"""``kea-db leases import`` loads Kea's memfile CSV lease files as Kea loads them.

A database built by ``kea-db init`` 3.0.4 and seeded as the export tests seed it is exported,
the files are imported into a second fresh database, and the second's export is the first's
(less the IPv4 rows Kea itself drops: no hardware address, no client id, not declined).
Then: a second import changes nothing, ``--plan`` counts what a real import then changes,
the statistics tables stay right (``stats check``), Kea's load order and removal rule hold
across files, and a malformed row is FILE:LINE with nothing written.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import test_leases_export
from kea_admin import (
    SID_KEA_ROOT,
    KeaAdminError,
    kea_admin_init,
    kea_admin_lease_upload,
    kea_admin_with_lfc,
)
from real_kea import (
    EXCHANGES,
    Backend,
    DhcpLink,
    Kea,
    build,
    dhcp6_link,
    dhcp_link,
    kea,
    kea6,
    kea_tools,
    lease6_rows,
    lease_rows,
    make_backend,
    require_program,
    run_perfdhcp,
    run_perfdhcp6,
    unavailable,
)
from real_kea import kea_db as real_kea_db
from servers import FreshDatabase
from test_leases_export import kea_db, seed

from keadb_cli.errors import ExitCode

pytestmark = [pytest.mark.db]

__all__ = ["dhcp6_link", "dhcp_link", "kea", "kea6", "kea_tools"]  # fixtures

# User contexts as Kea writes them (JSON on one line); the export tests' raw newlines and
# backslashes are what kea-admin's client programs print, not a lease file Kea reads.
CONTEXTS = (None, '{"comment": "a, b, c", "n": [1, 2]}', "{}",
            '{"ISC": {"client-classes": ["gold", "silver"]}}')


def _count(db: FreshDatabase, table: str) -> int:
    return int(db.server.sql(f"SELECT COUNT(*) FROM {table}", database=db.name)[0][0])


def _import(db: FreshDatabase, family: int, *args: str) -> tuple[int, dict[str, Any]]:
    proc = kea_db(db, "leases import", f"-{family}", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _export(db: FreshDatabase, family: int, out: Path) -> bytes:
    proc = kea_db(db, "leases export", f"-{family}", "--output", str(out), "--force")
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


def _kept4(data: bytes) -> tuple[bytes, int]:
    """The lines of a lease4 file Kea loads (not: empty hardware address and client id
    on a lease not declined), and how many it drops."""
    lines = data.split(b"\n")
    kept = [lines[0]]
    dropped = 0
    for line in lines[1:]:
        fields = line.split(b",")
        if len(fields) > 9 and fields[1] in (b"", b"NULL") and \
                fields[2] in (b"", b"NULL") and fields[9] != b"1":
            dropped += 1
        else:
            kept.append(line)
    return b"\n".join(kept), dropped


@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_import_round_trip(fresh_db: FreshDatabase, fresh_db_factory: Any, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Export A, import into B, export B: equal byte for byte; stats check passes on B; a
    second import is all unchanged; after rows of B are deleted and changed, --plan counts
    exactly what the import then changes, and B's export is A's again."""
    source, target = fresh_db, fresh_db_factory(fresh_db.server)
    for db in (source, target):
        init = kea_db(db, "init", "--kea-version", "3.0.4")
        assert init.returncode == 0, init.stdout + init.stderr
    monkeypatch.setattr(test_leases_export, "CONTEXTS", CONTEXTS)
    n4, n6 = seed(source)
    for family, rows in ((4, n4), (6, n6)):
        original = _export(source, family, tmp_path / f"a{family}.csv")
        expected, dropped = (_kept4(original) if family == 4 else (original, 0))
        assert 0 < dropped < rows if family == 4 else dropped == 0
        loaded = rows - dropped

        _, first = _import(target, family, str(tmp_path / f"a{family}.csv"))
        assert (first["new"], first["updated"], first["unchanged"]) == (loaded, 0, 0)
        assert sum(first["dropped"].values()) == dropped
        assert _count(target, f"lease{family}") == loaded
        assert _export(target, family, tmp_path / f"b{family}.csv") == expected

        _, again = _import(target, family, "--plan", str(tmp_path / f"a{family}.csv"))
        assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, loaded)
        _, second = _import(target, family, str(tmp_path / f"a{family}.csv"))
        assert (second["new"], second["updated"], second["unchanged"]) == (0, 0, loaded)
        assert _export(target, family, tmp_path / f"b{family}.csv") == expected

        # three rows deleted, four changed (another lifetime, another host name)
        table = f"lease{family}"
        keys = [r[0] for r in target.server.sql(f"SELECT address FROM {table} ORDER BY "
                                                "address", database=target.name)]
        mark = "%s"
        for key in keys[:3]:
            target.server.sql(f"DELETE FROM {table} WHERE address = {mark}",
                              database=target.name, params=[key])
        for key in keys[3:7]:
            target.server.sql(f"UPDATE {table} SET valid_lifetime = valid_lifetime + 1, "
                              f"hostname = 'changed' WHERE address = {mark}",
                              database=target.name, params=[key])
        assert _count(target, table) == loaded - 3
        _, planned = _import(target, family, "--plan", str(tmp_path / f"a{family}.csv"))
        assert (planned["new"], planned["updated"], planned["unchanged"]) == (3, 4, loaded - 7)
        assert _count(target, table) == loaded - 3  # the plan changed nothing
        _, done = _import(target, family, str(tmp_path / f"a{family}.csv"))
        assert (done["new"], done["updated"], done["unchanged"]) == (3, 4, loaded - 7)
        assert _export(target, family, tmp_path / f"b{family}.csv") == expected

    check = kea_db(target, "stats check")
    assert check.returncode == 0, check.stdout + check.stderr


HEADER4_V2 = ("address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,"
              "hostname,state")
HEADER4 = HEADER4_V2 + ",user_context,pool_id"
HEADER6 = ("address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,"
           "prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,"
           "hwaddr_source,pool_id")


def _row4(address: str, *, valid: int = 3600, hostname: str = "h",
          hwaddr: str = "00:1a:2b:3c:4d:5e", client_id: str = "", extra: bool = True) -> str:
    row = f"{address},{hwaddr},{client_id},{valid},{1800000000 + valid},1,0,0,{hostname},0"
    return row + (",,0" if extra else "")


@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_import_order_and_malformed_files(fresh_db: FreshDatabase, tmp_path: Path) -> None:
    """Kea's load order (.1 before the current file, whatever the command line's order):
    the newest row wins, valid lifetime 0 removes, a row Kea drops leaves the earlier one.
    A database without a Kea schema is refused (EMPTY).
    A malformed row anywhere (after more than a chunk of good rows) or a -6 file given to
    -4: one line naming FILE:LINE, exit SETTINGS, nothing written."""
    db = fresh_db
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER4 + "\n")
    refused = kea_db(db, "leases import", "-4", str(empty))  # no Kea schema yet
    assert refused.returncode == ExitCode.EMPTY and len(refused.stderr.splitlines()) == 1
    init = kea_db(db, "init", "--kea-version", "3.0.4")
    assert init.returncode == 0, init.stdout + init.stderr
    older, current = tmp_path / "kea-leases4.csv.1", tmp_path / "kea-leases4.csv"
    older.write_text("\n".join([HEADER4_V2,  # an older CSV schema: fewer columns
                                _row4("192.0.2.10", hostname="old", extra=False),
                                _row4("192.0.2.11", extra=False),
                                _row4("192.0.2.12", hostname="kept", extra=False)]) + "\n")
    current.write_text("\n".join([HEADER4,
                                  _row4("192.0.2.10", hostname="new&#x2ccomma", valid=7200),
                                  _row4("192.0.2.11", valid=0),
                                  _row4("192.0.2.12", hwaddr="", hostname="dropped")]) + "\n")
    _, plan = _import(db, 4, "--plan", str(current), str(older))
    assert (plan["rows"], plan["new"], plan["updated"], plan["unchanged"]) == (6, 2, 0, 0)
    assert sorted(plan["dropped"].values()) == [1, 1]
    assert _count(db, "lease4") == 0
    _, done = _import(db, 4, str(current), str(older))
    assert (done["new"], done["updated"], done["unchanged"]) == (2, 0, 0)
    rows = db.server.sql("SELECT address, hostname, valid_lifetime, state, pool_id FROM "
                         "lease4 ORDER BY address", database=db.name)
    assert [tuple(str(v) for v in r) for r in rows] == [
        (str(0xC000020A), "new,comma", "7200", "0", "0"),
        (str(0xC000020C), "kept", "3600", "0", "0"),
    ]
    before = _count(db, "lease4")

    good = [_row4(f"10.0.{i // 256}.{i % 256}") for i in range(1500)]
    cases = {
        "fields.csv": ([HEADER4, *good, _row4("10.9.9.9") + ",x"], 1502, b"13 fields"),
        "address.csv": ([HEADER4, *good, _row4("10.0.0.300")], 1502, b"not an IPv4"),
        "number.csv": ([HEADER4, *good, _row4("10.9.9.9").replace(",1,0,0,", ",one,0,0,")],
                       1502, b"subnet_id"),
        "family.csv": ([HEADER6, "2001:db8::1,00:01,3600,1800003600,1,1800,0,1,128,0,0,,,0,"
                        ",,,0"], 1, b"IPv6"),
    }
    for name, (lines, line, words) in cases.items():
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        proc = kea_db(db, "leases import", "-4", str(path))
        assert proc.returncode == ExitCode.SETTINGS, (name, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        assert f"{path}:{line}:".encode() in proc.stderr and words in proc.stderr, proc.stderr
        assert _count(db, "lease4") == before
    check = kea_db(db, "stats check")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.kea
def test_real_kea_memfile_leases_imported(request: pytest.FixtureRequest, kea_tools: None,
                                          dhcp_link: DhcpLink, kea: Kea) -> None:
    """The lease file a real kea-dhcp4 2.2 (memfile) wrote while serving perfdhcp, imported
    into a Kea 2.2 MariaDB database over TLS: one row per acknowledged client, its address,
    hardware address, subnet and state; then a kea-dhcp4 on that database gives the same
    clients the same addresses."""
    backend = make_backend(request, "mariadb", "2.2", {"mysql": "14.0", "postgresql": "13.0"})
    lease_file = kea.directory / "kea-leases4.csv"
    memfile = {"type": "memfile", "name": kea.inside(lease_file), "persist": True,
               "lfc-interval": 0}
    config = kea.write_config(backend, dhcp_link, "memfile", lease_database=memfile)
    run = kea.start(config, backend)
    run.wait_started()
    base_mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)) + ":00:00"
    perf = run_perfdhcp(dhcp_link, base_mac)
    context = f"perfdhcp output:\n{perf.output}\nkea-dhcp4:\n{run.tail()}"
    acked = perf.leases.get("REQUEST-ACK", [])
    assert perf.returncode == 0 and len(acked) == EXCHANGES, context
    assert run.stop() == 0, run.tail()
    data = lease_file.read_text()
    assert data.startswith("address,hwaddr,client_id,"), data[:200]

    db = backend.db
    proc = real_kea_db("leases", "import", "-4", "--type", db.type, "--host", db.host,
                       "--port", str(db.port), "--user", db.user, "--name", db.name,
                       *backend.kea_db_tls_options(), "--json", str(lease_file),
                       password=db.password)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["new"], summary["updated"], summary["unchanged"]) == (EXCHANGES, 0, 0)
    expected = {(client_id[2:], address, 1, 0) for client_id, address in acked}
    assert sorted(lease_rows(backend)) == sorted(expected)

    served = kea.write_config(backend, dhcp_link, "sql")
    again = kea.start(served, backend)
    again.wait_started()
    perf2 = run_perfdhcp(dhcp_link, base_mac)  # the same clients
    context = f"perfdhcp output:\n{perf2.output}\nkea-dhcp4:\n{again.tail()}"
    assert sorted(perf2.leases.get("REQUEST-ACK", [])) == sorted(acked), context
    assert again.stop() == 0, again.tail()
    check = real_kea_db("stats", "check", "--type", db.type, "--host", db.host, "--port",
                        str(db.port), "--user", db.user, "--name", db.name,
                        *backend.kea_db_tls_options(), password=db.password)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.kea
@pytest.mark.parametrize("flavor", ["postgresql", "mariadb"])
def test_real_kea6_memfile_leases_imported(request: pytest.FixtureRequest, kea_tools: None,
                                           dhcp6_link: DhcpLink, kea6: Kea,
                                           flavor: str) -> None:
    """The lease6 file a real kea-dhcp6 2.2 (memfile) wrote while serving perfdhcp -6
    clients (an address and a prefix each), imported into a Kea 2.2 database over TLS:
    one row per lease the clients were given; then a kea-dhcp6 on that database gives the
    same clients (the same DUIDs) the same addresses and prefixes."""
    backend = make_backend(request, flavor, "2.2", {"mysql": "14.0", "postgresql": "13.0"})
    lease_file = kea6.directory / "kea-leases6.csv"
    memfile = {"type": "memfile", "name": kea6.inside(lease_file), "persist": True,
               "lfc-interval": 0}
    run = kea6.start(kea6.write_config6(backend, dhcp6_link, "memfile",
                                        lease_database=memfile), backend)
    run.wait_started()
    base_mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)) + ":00:00"
    perf = run_perfdhcp6(dhcp6_link, base_mac)
    context = f"perfdhcp output:\n{perf.output}\nkea-dhcp6:\n{run.tail()}"
    addresses, prefixes = (sorted(found.get("REQUEST-REPLY", []))
                           for found in (perf.leases, perf.prefixes))
    assert perf.returncode == 0 and len(addresses) == len(prefixes) == EXCHANGES, context
    duid_ll = "00:03:00:01:" + base_mac[:-5]  # DUID-LL, Ethernet, the MAC counted up
    assert all(duid.startswith(duid_ll) for duid, _ in addresses + prefixes), context
    assert run.stop() == 0, run.tail()
    data = lease_file.read_text()
    assert data.startswith("address,duid,"), data[:200]

    db = backend.db
    proc = real_kea_db("leases", "import", "-6", "--type", db.type, "--host", db.host,
                       "--port", str(db.port), "--user", db.user, "--name", db.name,
                       *backend.kea_db_tls_options(), "--json", str(lease_file),
                       password=db.password)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["new"], summary["updated"], summary["unchanged"]) == (2 * EXCHANGES, 0, 0)
    expected = {(duid.replace(":", ""), address, 128, 0, 1, 0) for duid, address in addresses}
    expected |= {(duid.replace(":", ""), prefix, 64, 2, 1, 0) for duid, prefix in prefixes}
    assert sorted(lease6_rows(backend)) == sorted(expected)

    again = kea6.start(kea6.write_config6(backend, dhcp6_link, "sql"), backend)
    again.wait_started()
    perf2 = run_perfdhcp6(dhcp6_link, base_mac)  # the same clients
    context = f"perfdhcp output:\n{perf2.output}\nkea-dhcp6:\n{again.tail()}"
    assert sorted(perf2.leases.get("REQUEST-REPLY", [])) == addresses, context
    assert sorted(perf2.prefixes.get("REQUEST-REPLY", [])) == prefixes, context
    assert again.stop() == 0, again.tail()
    assert sorted(lease6_rows(backend)) == sorted(expected)  # renewed, none added
    check = real_kea_db("stats", "check", "--type", db.type, "--host", db.host, "--port",
                        str(db.port), "--user", db.user, "--name", db.name,
                        *backend.kea_db_tls_options(), password=db.password)
    assert check.returncode == 0, check.stdout + check.stderr


KEA_LFC = shutil.which("kea-lfc") or "/usr/sbin/kea-lfc"


def _lfc(lease_file: Path, previous: Path, copy: Path) -> None:
    """One kea-lfc 2.2 cycle as kea-dhcp4 starts it: ``previous`` (.2, if any) and ``copy``
    (.1) are merged (the newest row per address, expired leases gone) into ``previous``;
    ``copy`` is removed."""
    base = str(lease_file)
    done = subprocess.run(
        [KEA_LFC, "-4", "-x", str(previous), "-i", str(copy), "-o", f"{base}.output",
         "-f", f"{base}.completed", "-p", f"{base}.pid", "-c", "ignored"],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
             "KEA_LOCKFILE_DIR": str(lease_file.parent),
             "KEA_PIDFILE_DIR": str(lease_file.parent)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert previous.exists() and not copy.exists(), sorted(os.listdir(lease_file.parent))


@pytest.mark.kea
def test_real_kea_lfc_files_imported(request: pytest.FixtureRequest, kea_tools: None,
                                     dhcp_link: DhcpLink, kea: Kea,
                                     fresh_db_factory: Any) -> None:
    """A real kea-dhcp4 2.2 (memfile) serves clients A; its lease file goes through one
    kea-lfc cycle as Kea runs it (the file moved to .1, kea-lfc 2.2 compacts it into .2);
    kea-dhcp4 restarted on those files serves clients B into a new current file. Importing
    the current file and .2 (named in the wrong order) gives A's and B's leases; the
    current file alone has B's only; and the single file kea-lfc makes of .2 and the
    current file imports to the same rows, the two databases' exports equal byte for
    byte."""
    require_program(KEA_LFC, "kea-dhcp4-server")
    backend = make_backend(request, "mariadb", "2.2", {"mysql": "14.0", "postgresql": "13.0"})
    lease_file = kea.directory / "kea-leases4.csv"
    memfile = {"type": "memfile", "name": kea.inside(lease_file), "persist": True,
               "lfc-interval": 0}
    acked = []
    for label in ("a", "b"):
        if label == "b":  # the cycle kea-dhcp4 starts every lfc-interval
            lease_file.rename(f"{lease_file}.1")
            _lfc(lease_file, Path(f"{lease_file}.2"), Path(f"{lease_file}.1"))
        run = kea.start(kea.write_config(backend, dhcp_link, label, lease_database=memfile),
                        backend)
        run.wait_started()
        base_mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)) + ":00:00"
        perf = run_perfdhcp(dhcp_link, base_mac)
        context = f"perfdhcp output:\n{perf.output}\nkea-dhcp4:\n{run.tail()}"
        assert perf.returncode == 0 and len(perf.leases.get("REQUEST-ACK", [])) == \
            EXCHANGES, context
        acked.append({(client_id[2:], address, 1, 0)
                      for client_id, address in perf.leases["REQUEST-ACK"]})
        assert run.stop() == 0, run.tail()
    older = Path(f"{lease_file}.2")
    assert lease_file.exists() and older.exists(), sorted(os.listdir(kea.directory))

    def into(target: Backend, *files: Path, plan: bool = False) -> dict[str, Any]:
        db = target.db
        proc = real_kea_db("leases", "import", "-4", "--type", db.type, "--host", db.host,
                           "--port", str(db.port), "--user", db.user, "--name", db.name,
                           *target.kea_db_tls_options(), "--json", *(["--plan"] * plan),
                           *map(str, files), password=db.password)
        assert proc.returncode == 0, proc.stderr
        summary: dict[str, Any] = json.loads(proc.stdout)
        return summary

    def export(target: Backend) -> str:
        db = target.db
        proc = real_kea_db("leases", "export", "-4", "--type", db.type, "--host", db.host,
                           "--port", str(db.port), "--user", db.user, "--name", db.name,
                           *target.kea_db_tls_options(), password=db.password)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    done = into(backend, lease_file, older)
    assert done["files"] == [str(older), str(lease_file)], done
    assert (done["new"], done["updated"], done["unchanged"]) == (2 * EXCHANGES, 0, 0), done
    assert sorted(lease_rows(backend)) == sorted(acked[0] | acked[1])

    single = Backend(db=fresh_db_factory(backend.db.server, require_x509=True),
                     tls=backend.tls, release=backend.release, schema=backend.schema)
    build(single)
    alone = into(single, lease_file, plan=True)
    assert (alone["new"], alone["updated"], alone["unchanged"]) == (EXCHANGES, 0, 0), alone
    merged = kea.directory / "merged.csv"
    shutil.copy(older, f"{merged}.2")
    shutil.copy(lease_file, f"{merged}.1")
    _lfc(merged, Path(f"{merged}.2"), Path(f"{merged}.1"))
    shutil.move(f"{merged}.2", merged)
    once = into(single, merged)
    assert (once["new"], once["updated"], once["unchanged"]) == (2 * EXCHANGES, 0, 0), once
    assert export(single) == export(backend)


def _upload_file4(path: Path) -> int:
    """A lease4 file in Kea 3.0's CSV format: every state, escaped commas in host names and
    user contexts, client ids without hardware addresses, a declined lease with neither
    (kept) and a default one with neither (Kea drops it). Returns the rows Kea keeps."""
    contexts = ("", "{}", '{"comment": "a&#x2c b"&#x2c "n": [1&#x2c 2]}',
                '{"ISC": {"client-classes": ["gold"&#x2c "silver"]}}')
    rows = []
    for i in range(36):
        hwaddr = "" if i % 9 == 4 else f"02:00:5e:10:{i // 256:02x}:{i % 256:02x}"
        client_id = f"01:02:00:5e:10:00:{i:02x}" if i % 3 == 0 or not hwaddr else ""
        hostname = "" if i % 5 == 0 else (f"host-{i}&#x2cx.example.org" if i % 7 == 0
                                          else f"host-{i}.example.org")
        rows.append(f"192.0.2.{10 + i},{hwaddr},{client_id},{3600 + i},{1800000000 + i},"
                    f"{1 + i % 3},{i % 2},{(i // 2) % 2},{hostname},{i % 4},"
                    f"{contexts[i % len(contexts)]},{i % 3}")
    rows.append("192.0.2.200,,,3600,1800000000,1,0,0,declined,1,,0")
    rows.append("192.0.2.201,,,3600,1800000000,1,0,0,dropped,0,,0")
    path.write_text(HEADER4 + "\n" + "\n".join(rows) + "\n")
    return len(rows) - 1


@pytest.mark.parametrize("fresh_db", ["postgresql", "mariadb"], indirect=True)
def test_kea_admin_lease_upload_same_rows(fresh_db: FreshDatabase, fresh_db_factory: Any,
                                          tmp_path: Path) -> None:
    """kea-admin 3.0.4 ``lease-upload -4`` (with Kea 3.0.4's kea-lfc) of a small lease
    file into one fresh Kea 3.0.4 database and ``kea-db leases import -4`` of it into
    another leave the same lease4 rows, every column as the server returns it (but for
    NULL against empty, and JSON spacing). ``lease-upload -6`` of a lease6 file with a
    lease without hardware address fails (its SQL gets an empty argument), uploading
    nothing; kea-db imports that file."""
    program = kea_admin_with_lfc(tmp_path, "3.0.4")
    if program is None:
        unavailable(f"no Kea 3.0.4 kea-lfc in {SID_KEA_ROOT} (tests/tools/sid_chroot.sh "
                    "sid-kea)")
    theirs, ours = fresh_db, fresh_db_factory(fresh_db.server)
    for db in (theirs, ours):
        kea_admin_init(db.type, db.host, db.port, db.user, db.password, db.name,
                       release="3.0.4")
    lease_file = tmp_path / f"upload-{secrets.token_hex(4)}.csv"  # kea-admin copies to /tmp
    kept = _upload_file4(lease_file)
    try:
        kea_admin_lease_upload(theirs.type, theirs.host, theirs.port, theirs.user,
                               theirs.password, theirs.name, 4, str(lease_file),
                               release="3.0.4", timeout=120, program=program)
    finally:
        for leftover in Path("/tmp").glob(f"{lease_file.name}.*"):
            leftover.unlink(missing_ok=True)
    _, summary = _import(ours, 4, str(lease_file))
    assert (summary["new"], summary["updated"], summary["unchanged"]) == (kept, 0, 0)

    def rows(db: FreshDatabase) -> list[tuple[Any, ...]]:
        return db.server.sql("SELECT * FROM lease4 ORDER BY address", database=db.name)

    def absent_or_json(value: Any) -> Any:
        """Empty bytes or text as NULL; a JSON object as its value."""
        if value in (b"", ""):
            return None
        if isinstance(value, str) and value.startswith("{"):
            return json.loads(value)
        return value

    expected, got = rows(theirs), rows(ours)
    assert len(expected) == kept
    states = theirs.server.sql("SELECT DISTINCT state FROM lease4", database=theirs.name)
    assert sorted(int(r[0]) for r in states) == [0, 1, 2, 3]
    # kea-admin stores an empty hardware address, client id or user context as empty, not
    # NULL, and kea-lfc rewrites each user context in Kea's own JSON spacing; kea-db keeps
    # NULL and the file's JSON text. Nothing else may differ.
    assert [tuple(map(absent_or_json, r)) for r in got] == \
        [tuple(map(absent_or_json, r)) for r in expected]
    changed = {(type(a).__name__, type(b).__name__) for r1, r2 in zip(got, expected, strict=True)
               for a, b in zip(r1, r2, strict=True) if a != b}
    assert changed == {("NoneType", "bytes"), ("NoneType", "str"), ("str", "str")}, changed

    six = tmp_path / f"upload6-{secrets.token_hex(4)}.csv"
    six.write_text(HEADER6 + "\n" + "\n".join(
        f"2001:db8::{i:x},00:01:00:01:00:00:00:{i:02x},3600,1800000000,1,1800,0,{i},128,0,0,"
        + ("h,02:00:00:00:00:01,0,{},1,4,0" if i % 2 else ",,0,,,,0") for i in range(1, 7))
        + "\n")
    try:
        with pytest.raises(KeaAdminError) as failed:
            kea_admin_lease_upload(theirs.type, theirs.host, theirs.port, theirs.user,
                                   theirs.password, theirs.name, 6, str(six),
                                   release="3.0.4", timeout=120, program=program)
    finally:
        for leftover in Path("/tmp").glob(f"{six.name}.*"):
            leftover.unlink(missing_ok=True)
    assert "syntax" in str(failed.value), failed.value
    assert _count(theirs, "lease6") == 0
    _, summary6 = _import(ours, 6, str(six))
    assert (summary6["new"], summary6["updated"], summary6["unchanged"]) == (6, 0, 0)
