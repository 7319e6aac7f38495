# Sourced by the scripts that fetch Debian packages for the tests (sid_chroot.sh,
# kea_admin_pkgs.sh): the mirror of the host's own apt sources.
#
# debian_mirror prints KEADB_DEBIAN_MIRROR when set (KEADB_SID_MIRROR, its older name, too),
# else the first non-security URIs: line of the deb822 sources file, else the first "deb"
# line of sources.list; nothing when none is found.
debian_mirror() {
    local url="${KEADB_DEBIAN_MIRROR:-${KEADB_SID_MIRROR:-}}"
    if [ -z "$url" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
        url=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' \
              /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$url" ] && [ -f /etc/apt/sources.list ]; then
        url=$(awk '$1 == "deb" && $0 !~ /security/ {
                     for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' \
              /etc/apt/sources.list)
    fi
    echo "$url"
}
