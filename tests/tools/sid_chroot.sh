#!/usr/bin/env bash
# Build, once, a Debian sid chroot holding Oracle MySQL (Debian's mysql-server) for the test
# suite's OracleMySQLServer (tests/servers.py), and cache it.
#
#   tests/tools/sid_chroot.sh            # build unless a complete chroot is cached; print its path
#   KEADB_SID_CHROOT=/some/dir tests/tools/sid_chroot.sh
#
# Oracle MySQL 8.4+ needs a newer libc than Debian 12 has, so it cannot be installed on the
# host. The chroot is built with `debootstrap --variant=minbase sid` from the mirror of the
# host's own apt sources (override with KEADB_SID_MIRROR), then mysql-server and mysql-client
# are installed without recommends, with a policy-rc.d that keeps every service from starting.
#
# Idempotent: a complete chroot carries a stamp file, written last, and is reused as it is.
# The build happens in DIR.partial and is renamed to DIR only when complete, so an interrupted
# build is thrown away and redone by the next run, never reused. Needs root.
set -euo pipefail

DIR=${KEADB_SID_CHROOT:-/var/cache/kea-db-tests/sid}
PACKAGES=(mysql-server mysql-client)
STAMP_NAME=.keadb-sid-chroot-complete
# Bump when the chroot's content requirements change: older caches are then rebuilt.
STAMP_VERSION=1
STAMP_WANT="keadb-sid-chroot v$STAMP_VERSION: ${PACKAGES[*]}"
TIMEOUT=${KEADB_SID_CHROOT_TIMEOUT:-900}   # seconds for debootstrap and for apt-get each

log() { echo "sid_chroot: $*" >&2; }
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
    [ -f "$1/$STAMP_NAME" ] && [ "$(head -n1 "$1/$STAMP_NAME")" = "$STAMP_WANT" ] \
        && [ -x "$1/usr/sbin/mysqld" ]
}

if complete "$DIR"; then
    log "cached: $DIR ($(sed -n 2p "$DIR/$STAMP_NAME"))"
    echo "$DIR"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"

# The mirror of the host's own apt sources: the first non-security URIs: line of the deb822
# file, else the first "deb" line of sources.list.
mirror() {
    local url=""
    if [ -n "${KEADB_SID_MIRROR:-}" ]; then
        echo "$KEADB_SID_MIRROR"; return
    fi
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        url=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' \
              /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$url" ] && [ -f /etc/apt/sources.list ]; then
        url=$(awk '$1 == "deb" && $0 !~ /security/ {
                     for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' \
              /etc/apt/sources.list)
    fi
    [ -n "$url" ] || die "no mirror in the host's apt sources; set KEADB_SID_MIRROR"
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

log "debootstrap --variant=minbase sid from $URL into $WORK"
bounded debootstrap --variant=minbase sid "$WORK" "$URL" >"$DIR.debootstrap.log" 2>&1 \
    || { tail -n 30 "$DIR.debootstrap.log" >&2; die "debootstrap failed (log: $DIR.debootstrap.log)"; }

# No service may start from a package script (there is no init in the chroot anyway).
printf '#!/bin/sh\nexit 101\n' >"$WORK/usr/sbin/policy-rc.d"
chmod 755 "$WORK/usr/sbin/policy-rc.d"
cat >"$WORK/etc/apt/apt.conf.d/90keadb" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Use-Pty "false";
// The mirror may serve a frozen snapshot of sid whose Release file is past its Valid-Until.
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
# Package lists, and the data directory the package's script initialised (the tests make
# their own): some 200 MB.
rm -rf "$WORK/var/lib/apt/lists/"* "$WORK/var/cache/apt/"*.bin
find "$WORK/var/lib/mysql" -mindepth 1 -delete

[ -x "$WORK/usr/sbin/mysqld" ] || die "no /usr/sbin/mysqld in the chroot after the install"
version=$(chroot "$WORK" /usr/sbin/mysqld --version 2>/dev/null || true)
[ -n "$version" ] || die "the chroot's mysqld does not run"

# Swap in the complete chroot; the stamp is written last.
if [ -e "$DIR" ]; then
    rm -rf --one-file-system "$DIR"
fi
mv "$WORK" "$DIR"
elapsed=$(( $(date +%s) - started ))
printf '%s\n%s\nbuilt %s from %s in %ss\n' "$STAMP_WANT" "$version" "$(date -u +%FT%TZ)" \
    "$URL" "$elapsed" >"$DIR/$STAMP_NAME"
log "built $DIR in ${elapsed}s: $version"
echo "$DIR"
