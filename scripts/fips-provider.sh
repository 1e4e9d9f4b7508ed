#!/bin/sh
# OpenSSL's FIPS provider for the tests (docs/FIPS.md). Debian 12 ships no fips.so: this builds
# it once from Debian's own openssl source package (the recipe of INTEROP.md), into a cache
# outside the build tree keyed by the source version, and writes beside it an openssl.cnf that
# loads it with the base and default providers. Prints that file's path. About 7 minutes the
# first time on two cores; a lookup afterwards. Several callers at once wait for one build.
#
#   scripts/fips-provider.sh [--print]      SG_FIPS_CACHE overrides /var/cache/sg-fips
#
# A provider built from source is not a validated module: the tests use it to prove that every
# FIPS-suite operation really comes from a FIPS provider; sites use their vendor's validated one.
set -eu
C=${SG_FIPS_CACHE:-/var/cache/sg-fips}
mkdir -p "$C"
exec 9>"$C/.lock"
flock 9

newest() {
	ls -1d "$C"/*/openssl-fips.cnf 2>/dev/null | sort -V | tail -n 1
}
have=$(newest)
if [ -n "$have" ]; then
	echo "$have"
	exit 0
fi

mkdir -p "$C/apt" "$C/lists"
U=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$U" ] || U=http://deb.debian.org/debian
printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	"$U" >"$C/apt/src.sources"
A="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$C/apt -o Dir::State::Lists=$C/lists"
# shellcheck disable=SC2086 # $A is a list of options
apt-get $A update -qq >&2
# shellcheck disable=SC2086
ver=$(apt-cache $A showsrc openssl | awk '/^Version:/{print $2; exit}')
[ -n "$ver" ] || { echo "fips-provider: no openssl source package found" >&2; exit 1; }
D=$C/$ver
B=$C/build-$ver
rm -rf "$B"
mkdir -p "$B" "$D"
echo "fips-provider: building OpenSSL's FIPS provider from openssl $ver (once; minutes)" >&2
# shellcheck disable=SC2086
(cd "$B" && apt-get $A source --download-only -qq openssl >&2 &&
	dpkg-source -x openssl_*.dsc src >/dev/null &&
	cd src && ./Configure enable-fips no-shared >/dev/null &&
	make -j"$(nproc)" build_modules >/dev/null 2>&1) || {
	echo "fips-provider: the build failed (in $B)" >&2
	exit 1
}
cp "$B/src/providers/fips.so" "$D/fips.so"
openssl fipsinstall -module "$D/fips.so" -out "$D/fipsmodule.cnf" >/dev/null 2>&1 || {
	echo "fips-provider: openssl fipsinstall refused the module" >&2
	exit 1
}
# Without it the provider is silently not loaded: fips.so is not in the system MODULESDIR.
sed -i "/^\[fips_sect\]/a module = $D/fips.so" "$D/fipsmodule.cnf"
cat >"$D/openssl-fips.cnf.tmp" <<CNF
# Loads the FIPS provider built by scripts/fips-provider.sh (openssl $ver) with the base and
# default providers: SecureGuard's FIPS suite fetches with "fips=yes", the classic suite
# (outside the boundary) from the default provider.
openssl_conf = openssl_init
.include $D/fipsmodule.cnf

[openssl_init]
providers = provider_sect

[provider_sect]
fips = fips_sect
base = base_sect
default = default_sect

[base_sect]
activate = 1

[default_sect]
activate = 1
CNF
mv "$D/openssl-fips.cnf.tmp" "$D/openssl-fips.cnf"
rm -rf "$B"
echo "$D/openssl-fips.cnf"
