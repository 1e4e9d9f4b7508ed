#!/bin/sh
# Builds the Debian package from a CMake build directory with dpkg-deb (everything from Debian:
# dpkg-dev's dpkg-shlibdeps computes Depends from the binaries' libraries).
#   scripts/deb.sh BUILD_DIR OUT_DIR      (make deb: BUILD_DIR=OUT_DIR=build-deb)
# The package: the binaries (stripped), the systemd units with ExecStart in /usr/bin (in
# /lib/systemd/system, where Debian 12 keeps them), the man pages, bash completion, the admin
# console's built files, docs, and maintainer scripts that create the server's system user and
# enable and start secureguard-server.service. libsecureguard (headers, libraries, .pc) is left
# out: it belongs in a library package of its own.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
for t in dpkg-deb dpkg-shlibdeps strip gzip; do
	command -v $t >/dev/null || { echo "deb.sh: $t missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
ver=$(sed -n 's/^project(secureguard VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
arch=$(dpkg --print-architecture)
[ -d "$build/share/secureguard/console" ] ||
	{ echo "deb.sh: $build has no built console (npm missing when it was configured?)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/sg-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
st=$tmp/root
DESTDIR=$st cmake --install "$build" --prefix /usr >/dev/null
# Not this package's: the library's developer files, and units as configured for the build's
# prefix (written again below for /usr/bin).
rm -rf "$st/usr/include" "$st/usr/lib/systemd"
find "$st/usr/lib" \( -name 'libsecureguard*' -o -name '*.pc' \) -exec rm -f {} +
find "$st/usr/lib" -depth -type d -empty -delete 2>/dev/null || true
mkdir -p "$st/lib/systemd/system"
for f in "$src"/dist/*.service.in; do
	sed 's|@BINDIR@|/usr/bin|g' "$f" >"$st/lib/systemd/system/$(basename "$f" .in)"
done
for b in "$st"/usr/bin/*; do
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$b"
done
gzip -9n "$st"/usr/share/man/man8/*.8
ln -s secureguard "$st/usr/share/bash-completion/completions/secureguardd"
ln -s secureguard "$st/usr/share/bash-completion/completions/secureguard-iked"
doc=$st/usr/share/doc/secureguard
mkdir -p "$doc"
cp "$src/README.md" "$src"/docs/*.md "$doc/"
cat >"$doc/copyright" <<EOT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: secureguard
Comment: built from the SecureGuard source repository; it names no license yet.

Files: *
Copyright: the SecureGuard authors
License: unstated
 The source repository carries no license file.
EOT
printf 'secureguard (%s) unstable; urgency=medium\n\n  * Built by make deb.\n\n -- SecureGuard <packages@secureguard.invalid>  %s\n' \
	"$ver" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}")" |
	gzip -9n >"$doc/changelog.Debian.gz"
find "$st" -type d -exec chmod 0755 {} +
find "$st" -type f -exec chmod 0644 {} +
chmod 0755 "$st"/usr/bin/*
# Depends: the libraries the binaries link, as their Debian packages and versions say.
mkdir -p "$tmp/src/debian"
printf 'Source: secureguard\n\nPackage: secureguard\nArchitecture: any\n' >"$tmp/src/debian/control"
# (its warning that the binaries are not under debian/PACKAGE/ does not apply to this layout)
deps=$(cd "$tmp/src" && dpkg-shlibdeps -O $(for b in "$st"/usr/bin/*; do printf -- '-e%s ' "$b"; done) \
	2>"$tmp/shlibdeps.err" | sed -n 's/^shlibs:Depends=//p')
[ -n "$deps" ] || { cat "$tmp/shlibdeps.err" >&2; echo "deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
mkdir -p "$st/DEBIAN"
cat >"$st/DEBIAN/control" <<EOT
Package: secureguard
Version: $ver
Architecture: $arch
Maintainer: SecureGuard <packages@secureguard.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$st" | cut -f1)
Depends: $deps, adduser
Recommends: wireguard-tools
Suggests: postgresql-client, strongswan-swanctl
Section: net
Priority: optional
Homepage: https://secureguard.invalid/
Description: self-hosted VPN platform: tunnels, management server, agent, gateway
 SecureGuard runs WireGuard-compatible tunnels with a FIPS mode (secureguardd), IKEv2/IPsec
 (secureguard-iked), a management server with an admin console, REST API and hash-chained
 audit log (secureguard server, on SQLite or PostgreSQL), node agents and a zero-trust
 gateway. The server starts on installation as the system user secureguard, listening on
 127.0.0.1:8080; options go in /etc/secureguard/server.env.
EOT
cp "$src/dist/debian/postinst" "$src/dist/debian/prerm" "$src/dist/debian/postrm" "$st/DEBIAN/"
chmod 0755 "$st"/DEBIAN/postinst "$st"/DEBIAN/prerm "$st"/DEBIAN/postrm
(cd "$st" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
	xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$st/DEBIAN/md5sums" "$st/DEBIAN/control"
deb=$out/secureguard_${ver}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$st" "$deb" >/dev/null
echo "$deb"
