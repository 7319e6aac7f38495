#!/usr/bin/env bash
# Build, once, a Debian chroot for the test suite, and cache it. Four of them:
#
#   sid       Oracle MySQL (sid's mysql-server) for the suite's OracleMySQLServer, and
#             PostgreSQL 18 (tests/servers.py, the server matrix of tests/matrix.py);
#   sid-kea   kea-dhcp4 3.0.x (sid's kea-dhcp4-server) for tests/test_real_kea_releases.py;
#   trixie    kea-dhcp4 2.6.x (trixie's kea-dhcp4-server), for the same; MariaDB 11.8 and
#             PostgreSQL 17 for the server matrix;
#   bullseye  MariaDB 10.5 and PostgreSQL 13 (Debian 11) for the server matrix.
#
#   tests/tools/sid_chroot.sh              # sid: build unless a complete chroot is cached;
#                                          # print its path
#   tests/tools/sid_chroot.sh trixie       # another one (or KEADB_CHROOT=trixie)
#   KEADB_SID_CHROOT=/some/dir tests/tools/sid_chroot.sh     # elsewhere; also
#                                          # KEADB_SID_KEA_CHROOT, KEADB_TRIXIE_CHROOT,
#                                          # KEADB_BULLSEYE_CHROOT
#
# Oracle MySQL 8.4+ and Kea 2.6+ need a newer libc than Debian 12 has, so they cannot be
# installed on the host; the other Debian releases' MariaDB and PostgreSQL cannot be installed
# beside the host's own. The chroot is built with `debootstrap --variant=minbase SUITE` from
# the mirror of the host's own apt sources (override with KEADB_DEBIAN_MIRROR), then the
# chroot's packages are installed without recommends, with a policy-rc.d that keeps every
# service from starting. The data directories the packages' scripts initialise
# (/var/lib/mysql, /var/lib/postgresql/N/main) are emptied or removed: the tests make their own.
#
# Idempotent: a complete chroot carries a stamp file, written last, and is reused as it is.
# The build happens in DIR.partial and is renamed to DIR only when complete, so an interrupted
# build is thrown away and redone by the next run, never reused. Needs root.
set -euo pipefail

# Which chroot: sid (Oracle MySQL, PostgreSQL 18), sid-kea (Kea 3.0.x: its libmariadb3 needs
# mariadb-common, which sid's mysql-server conflicts with, so the two cannot share a chroot),
# trixie (Kea 2.6.x, MariaDB 11.8, PostgreSQL 17) or bullseye (MariaDB 10.5, PostgreSQL 13).
NAME=${1:-${KEADB_CHROOT:-sid}}
case "$NAME" in
    sid)
        DIR=${KEADB_SID_CHROOT:-/var/cache/kea-db-tests/sid}
        PACKAGES=(mysql-server mysql-client postgresql-18)
        PROGRAMS=(/usr/sbin/mysqld /usr/lib/postgresql/18/bin/postgres)
        STAMP_VERSION=2
        ;;
    sid-kea)
        DIR=${KEADB_SID_KEA_CHROOT:-/var/cache/kea-db-tests/sid-kea}
        PACKAGES=(kea-dhcp4-server)
        PROGRAMS=(/usr/sbin/kea-dhcp4)
        STAMP_VERSION=1
        ;;
    trixie)
        DIR=${KEADB_TRIXIE_CHROOT:-/var/cache/kea-db-tests/trixie}
        PACKAGES=(kea-dhcp4-server mariadb-server postgresql-17)
        PROGRAMS=(/usr/sbin/kea-dhcp4 /usr/sbin/mariadbd /usr/lib/postgresql/17/bin/postgres)
        STAMP_VERSION=2
        ;;
    bullseye)
        DIR=${KEADB_BULLSEYE_CHROOT:-/var/cache/kea-db-tests/bullseye}
        PACKAGES=(mariadb-server postgresql-13)
        PROGRAMS=(/usr/sbin/mariadbd /usr/lib/postgresql/13/bin/postgres)
        STAMP_VERSION=1
        ;;
    *)
        echo "sid_chroot: error: unknown chroot '$NAME' (sid, sid-kea, trixie or bullseye)" >&2
        exit 2
        ;;
esac
SUITE=${NAME%%-*}
STAMP_NAME=.keadb-$NAME-chroot-complete
# STAMP_VERSION (per chroot, above): bump it when that chroot's content requirements change
# beyond its package list (which the stamp names too): older caches are then rebuilt.
STAMP_WANT="keadb-$NAME-chroot v$STAMP_VERSION: ${PACKAGES[*]}"
TIMEOUT=${KEADB_SID_CHROOT_TIMEOUT:-900}   # seconds for debootstrap and for apt-get each

log() { echo "sid_chroot($NAME): $*" >&2; }
die() { log "error: $*"; exit 1; }

# Run "$@" for at most $TIMEOUT seconds. timeout(1) puts it in a process group of its own,
# so a signal to this script would not reach it: the traps below end that group too.
bounded_pid=""
bounded() {
    timeout "$TIMEOUT" "$@" &
    bounded_pid=$!
    local rc=0
    wait "$bounded_pid" || rc=$?
    bounded_pid=""
    return "$rc"
}
stop_bounded() {
    if [ -n "$bounded_pid" ]; then
        kill -TERM -- "-$bounded_pid" 2>/dev/null || true
        wait "$bounded_pid" 2>/dev/null || true
    fi
}

complete() {
    local program
    [ -f "$1/$STAMP_NAME" ] && [ "$(head -n1 "$1/$STAMP_NAME")" = "$STAMP_WANT" ] || return 1
    for program in "${PROGRAMS[@]}"; do
        [ -x "$1$program" ] || return 1
    done
}

if complete "$DIR"; then
    log "cached: $DIR ($(sed -n '2,$p' "$DIR/$STAMP_NAME" | paste -sd ";"))"
    echo "$DIR"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"

# The mirror of the host's own apt sources (tests/tools/debian_mirror.sh).
# shellcheck source=tests/tools/debian_mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian_mirror.sh"
mirror() {
    local url
    url=$(debian_mirror)
    [ -n "$url" ] || die "no mirror in the host's apt sources; set KEADB_DEBIAN_MIRROR"
    echo "$url"
}

mkdir -p "$(dirname "$DIR")"
# One builder at a time; a second caller waits, then finds the chroot complete.
exec 9>"$DIR.lock"
flock -w "$((2 * TIMEOUT + 60))" 9 || die "timed out waiting for $DIR.lock"
if complete "$DIR"; then
    log "cached (built meanwhile): $DIR"
    echo "$DIR"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends debootstrap
fi

URL=$(mirror)
WORK="$DIR.partial"
started=$(date +%s)

# Whatever a killed run left mounted there must go before the directory is removed.
unmount_all() {
    local target
    for target in proc dev/pts; do
        if mountpoint -q "$WORK/$target" 2>/dev/null; then
            umount -l "$WORK/$target" || true
        fi
    done
}
unmount_all
rm -rf --one-file-system "$WORK"
trap 'stop_bounded; unmount_all' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

log "debootstrap --variant=minbase $SUITE from $URL into $WORK"
bounded debootstrap --variant=minbase "$SUITE" "$WORK" "$URL" >"$DIR.debootstrap.log" 2>&1 \
    || { tail -n 30 "$DIR.debootstrap.log" >&2; die "debootstrap failed (log: $DIR.debootstrap.log)"; }

# No service may start from a package script (there is no init in the chroot anyway).
printf '#!/bin/sh\nexit 101\n' >"$WORK/usr/sbin/policy-rc.d"
chmod 755 "$WORK/usr/sbin/policy-rc.d"
cat >"$WORK/etc/apt/apt.conf.d/90keadb" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Use-Pty "false";
// The mirror may serve a frozen snapshot of the suite whose Release file is past its Valid-Until.
Acquire::Check-Valid-Until "false";
CONF
cat >"$WORK/etc/dpkg/dpkg.cfg.d/90keadb-nodoc" <<'CONF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CONF
# Package scripts may look at /proc; mount it for the install only.
mount -t proc proc "$WORK/proc"

log "installing ${PACKAGES[*]} in the chroot"
bounded chroot "$WORK" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
    sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends ${PACKAGES[*]} \
           && apt-get clean" >"$DIR.apt.log" 2>&1 \
    || { tail -n 30 "$DIR.apt.log" >&2; die "installing ${PACKAGES[*]} failed (log: $DIR.apt.log)"; }
unmount_all
trap - EXIT INT TERM HUP
# Package lists, and the data directories the packages' scripts initialised (the tests make
# their own): some 200 MB. PostgreSQL's clusters (pg_createcluster N main) go with their
# configuration, so the chroot lists none.
rm -rf "$WORK/var/lib/apt/lists/"* "$WORK/var/cache/apt/"*.bin
if [ -d "$WORK/var/lib/mysql" ]; then
    find "$WORK/var/lib/mysql" -mindepth 1 -delete
fi
for cluster in "$WORK"/var/lib/postgresql/*/main "$WORK"/etc/postgresql/*/main; do
    [ ! -e "$cluster" ] || rm -rf --one-file-system "$cluster"
done

for program in "${PROGRAMS[@]}"; do
    [ -x "$WORK$program" ] || die "no $program in the chroot after the install"
done
# The version of each program, one line each.
version=""
for program in "${PROGRAMS[@]}"; do
    case "$program" in
        */mysqld|*/mariadbd|*/postgres)
           line=$(chroot "$WORK" "$program" --version 2>/dev/null || true) ;;
        *) line=$(chroot "$WORK" "$program" -v 2>/dev/null || true)
           [ -z "$line" ] || line="$(basename "$program") $line" ;;
    esac
    [ -n "$line" ] || die "the chroot's $program does not run"
    version+="${version:+$'\n'}$line"
done

# Swap in the complete chroot; the stamp is written last.
if [ -e "$DIR" ]; then
    rm -rf --one-file-system "$DIR"
fi
mv "$WORK" "$DIR"
elapsed=$(( $(date +%s) - started ))
printf '%s\n%s\nbuilt %s from %s in %ss\n' "$STAMP_WANT" "$version" "$(date -u +%FT%TZ)" \
    "$URL" "$elapsed" >"$DIR/$STAMP_NAME"
log "built $DIR in ${elapsed}s: ${version//$'\n'/; }"
echo "$DIR"
