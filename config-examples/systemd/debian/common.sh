# Shared by the maintainer scripts (copied into each by build-deb.sh, which replaces the line
# that names this file): where the package is installed, and whether to talk to systemd.
root=${DPKG_ROOT:-}
unit=s2s-proxy.service

# True when systemd manages this machine and the package is installed into it (not into another
# root with dpkg --root or --instdir, and not in a chroot or container without systemd).
systemd_running() {
    [ -z "$root" ] && [ -d /run/systemd/system ]
}
