#!/bin/sh
# make deb: build/s2s-proxy_<version>_<arch>.deb with Debian's own tools, from a staged
# `make install DESTDIR=... PREFIX=/usr` (binary in /usr/bin, unit in /lib/systemd/system,
# sysusers.d file in /usr/lib/sysusers.d, examples and README under /usr/share; the binary
# stripped of its debugging information), plus:
#   /etc/s2s-proxy/s2s-proxy.toml  the config to edit (config-examples/minimal.toml), a conffile
#   DEBIAN/control    Depends: the packages of the shared libraries the binary loads, as
#                     dpkg-shlibdeps finds them, and ca-certificates (the default CA store)
#   DEBIAN/postinst, prerm, postrm   with common.sh put in place of the line that reads it
#   DEBIAN/md5sums
# Environment: BUILD (default build), DEB_MAINTAINER (the Maintainer field).
set -eu
cd "$(dirname "$0")/../../.."
BUILD=${BUILD:-build}
here=config-examples/systemd/debian
maintainer=${DEB_MAINTAINER:-s2s-proxy <s2s-proxy@localhost>}

version=$("$BUILD/s2s-proxy" --version | sed -n 's/^s2s-proxy //p')
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "make deb: $BUILD/s2s-proxy --version gave no version" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/s2s-proxy-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/debian/s2s-proxy
make --no-print-directory install BUILD="$BUILD" DESTDIR="$stage" PREFIX=/usr >/dev/null
strip --strip-unneeded --remove-section=.comment "$stage/usr/bin/s2s-proxy"  # as dh_strip does
install -d -m 0750 "$stage/etc/s2s-proxy"
install -m 0640 config-examples/minimal.toml "$stage/etc/s2s-proxy/s2s-proxy.toml"

# dpkg-shlibdeps runs from the directory above debian/, reads debian/control for the package's
# name, and takes the directory holding DEBIAN/ for the package's root.
install -d -m 0755 "$stage/DEBIAN"
printf 'Source: s2s-proxy\n\nPackage: s2s-proxy\nArchitecture: any\n' > "$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O debian/s2s-proxy/usr/bin/s2s-proxy | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "make deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$shlibs, ca-certificates|" "$here/control.in" > "$stage/DEBIAN/control"
echo /etc/s2s-proxy/s2s-proxy.toml > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    sed -e "/^\. \.\/common\.sh\$/{r $here/common.sh" -e 'd}' "$here/$script" > "$stage/DEBIAN/$script"
    chmod 0755 "$stage/DEBIAN/$script"
done
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\n' | LC_ALL=C sort \
    | xargs md5sum > DEBIAN/md5sums)
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

out="$BUILD/s2s-proxy_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "make deb: $out"
