#!/usr/bin/env bash
# Fetch Debian's kea-admin packages of the Kea releases the tests compare kea-db against, and
# unpack each into a cache, ready to run (nothing is installed; the system is not changed).
#
#   tests/tools/kea_admin_pkgs.sh              # every release below; prints one line each:
#                                              #   <release> <dir>/usr/sbin/kea-admin
#   tests/tools/kea_admin_pkgs.sh 2.6.3        # only that release
#   KEADB_KEA_ADMIN_CACHE=/some/dir tests/tools/kea_admin_pkgs.sh
#
# Each release comes from the Debian suite that ships it: kea-admin 2.6.3 from trixie,
# 3.0.4 from sid. apt-get runs with a private sources list, list directory and cache
# (-o Dir::Etc::sourcelist / sourceparts / Dir::State::Lists / Dir::Cache), so the host's own
# apt state is never touched; `apt-get download` fetches kea-admin's .deb and kea-doc's of
# the same version (their dependencies are not needed: the tests run only kea-admin's shell
# scripts and SQL, and read Kea's example configurations under usr/share/doc/kea/examples),
# `dpkg -x` unpacks both into the release's directory.
#
# kea-admin and its upgrade scripts hard-code prefix="/usr" (scripts and admin-utils.sh in
# /usr/share/kea/scripts). The unpacked copy gets every such prefix rewritten to the cache
# directory, so it runs the scripts of its own release, not the host's. tests/kea_admin.py
# runs the result (db-init, db-upgrade).
#
# Idempotent: a complete release directory carries a stamp file, written last, and is reused
# at once (no network). Work happens in <dir>.partial, renamed when complete. Needs no root
# unless the cache directory does (default /var/cache/kea-db-tests/kea-admin).
set -euo pipefail

CACHE=${KEADB_KEA_ADMIN_CACHE:-/var/cache/kea-db-tests/kea-admin}
# release -> the Debian suite that ships it (any Debian revision of that upstream release).
declare -A SUITE=([2.6.3]=trixie [3.0.4]=sid)
ALL=(2.6.3 3.0.4)
STAMP_NAME=.keadb-kea-admin-complete
# 2: the prefix is rewritten in every script, not only kea-admin (db-upgrade's scripts
# source admin-utils.sh through it). 3: kea-doc is unpacked too.
STAMP_VERSION=3
TIMEOUT=${KEADB_KEA_ADMIN_TIMEOUT:-300}

log() { echo "kea_admin_pkgs: $*" >&2; }
die() { log "error: $*"; exit 1; }

stamp_want() { echo "keadb-kea-admin v$STAMP_VERSION: kea-admin $1 (${SUITE[$1]})"; }

complete() {  # complete RELEASE DIR
    [ -f "$2/$STAMP_NAME" ] && [ "$(head -n1 "$2/$STAMP_NAME")" = "$(stamp_want "$1")" ] \
        && [ -x "$2/usr/sbin/kea-admin" ]
}

# The mirror of the host's own apt sources (tests/tools/debian_mirror.sh), else Debian's.
# shellcheck source=tests/tools/debian_mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian_mirror.sh"
mirror() {
    local url
    url=$(debian_mirror)
    echo "${url:-http://deb.debian.org/debian}"
}

# apt-get / apt-cache with a private state for one suite, under $APT_STATE.
private_apt() {
    local tool=apt-get
    if [ "$1" = "--cache" ]; then tool=apt-cache; shift; fi
    timeout "$TIMEOUT" "$tool" -q \
        -o Dir::Etc::sourcelist="$APT_STATE/sources.list" \
        -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$APT_STATE/lists" \
        -o Dir::State::status=/dev/null \
        -o Dir::Cache="$APT_STATE/cache" \
        -o Dir::Cache::archives="$APT_STATE/archives" \
        -o APT::Get::List-Cleanup=false \
        -o Acquire::Check-Valid-Until=false \
        -o Debug::NoLocking=true \
        "$@"
}

fetch_one() {  # fetch_one RELEASE -> prints "RELEASE PATH"
    local release=$1 suite=${SUITE[$1]:-} version
    [ -n "$suite" ] || die "unknown release $release (known: ${ALL[*]})"
    local dir="$CACHE/$release"
    if complete "$release" "$dir"; then
        echo "$release $dir/usr/sbin/kea-admin"
        return
    fi
    mkdir -p "$CACHE"
    exec 9>"$dir.lock"
    flock -w "$((2 * TIMEOUT + 60))" 9 || die "timed out waiting for $dir.lock"
    if complete "$release" "$dir"; then
        exec 9>&-
        echo "$release $dir/usr/sbin/kea-admin"
        return
    fi
    local work="$dir.partial"
    rm -rf --one-file-system "$work"
    mkdir -p "$work"
    APT_STATE="$work.apt"
    rm -rf "$APT_STATE"
    mkdir -p "$APT_STATE/lists/partial" "$APT_STATE/cache" "$APT_STATE/archives/partial" \
             "$APT_STATE/dl"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(mirror) $suite main" \
        >"$APT_STATE/sources.list"
    log "fetching kea-admin $release from Debian $suite"
    private_apt update >"$APT_STATE/update.log" 2>&1 \
        || { tail -n 20 "$APT_STATE/update.log" >&2; die "apt-get update ($suite) failed"; }
    # The Debian revision changes with security updates (2.6.3-1+deb13u1): take whichever
    # revision of the upstream release the suite has.
    version=$(private_apt --cache madison kea-admin \
              | awk -v r="$release" '$3 ~ "^(" r ")-" { print $3; exit }')
    [ -n "$version" ] || die "Debian $suite has no kea-admin $release"
    (cd "$APT_STATE/dl" && private_apt download "kea-admin=$version" "kea-doc=$version") \
        >"$APT_STATE/download.log" 2>&1 \
        || { tail -n 20 "$APT_STATE/download.log" >&2
             die "apt-get download kea-admin=$version kea-doc=$version failed"; }
    for deb in "$APT_STATE"/dl/kea-admin_*.deb "$APT_STATE"/dl/kea-doc_*.deb; do
        dpkg -x "$deb" "$work"
    done
    [ -d "$work/usr/share/doc/kea/examples" ] || die "kea-doc $version has no examples directory"
    # Run the release's own scripts: every hard-coded /usr prefix (kea-admin, and the
    # upgrade scripts, which source admin-utils.sh through it) points into the copy.
    local file
    while IFS= read -r -d '' file; do
        sed -i -e "s|^prefix=\"\\?/usr\"\\?\$|prefix=\"$dir/usr\"|" "$file"
    done < <(find "$work/usr/sbin/kea-admin" "$work/usr/share/kea/scripts" -type f \
                  \( -name kea-admin -o -name '*.sh' \) -print0)
    if grep -rlq '^prefix="\?/usr"\?$' "$work/usr/sbin" "$work/usr/share/kea/scripts"; then
        die "a script in $work still has prefix=/usr"
    fi
    grep -q "^prefix=\"$dir/usr\"" "$work/usr/sbin/kea-admin" \
        || die "could not set kea-admin's prefix in $work/usr/sbin/kea-admin"
    rm -rf "$APT_STATE"
    if [ -e "$dir" ]; then
        rm -rf --one-file-system "$dir"
    fi
    mv "$work" "$dir"
    printf '%s\n%s\n' "$(stamp_want "$release")" \
        "kea-admin $version fetched $(date -u +%FT%TZ) from $(mirror) $suite" \
        >"$dir/$STAMP_NAME"
    exec 9>&-
    log "unpacked kea-admin $version into $dir"
    echo "$release $dir/usr/sbin/kea-admin"
}

wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=("${ALL[@]}")
for release in "${wanted[@]}"; do
    fetch_one "$release"
done
