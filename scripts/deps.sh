#!/bin/sh
# Installs the Debian packages SecureGuard needs to build and test.
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -eu
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev libssl-dev libcmocka-dev
      wireguard-go wireguard-tools iproute2 iputils-ping socat tcpdump procps python3
      libutf8proc-dev libjansson-dev libsqlite3-dev sqlite3 libpq-dev postgresql libqrencode-dev
      libargon2-dev libcbor-dev curl iperf3 nftables openssl xxd dpkg-dev perl libnghttp2-dev python3-websockets libcurl4-openssl-dev
      python3-jwt python3-cryptography python3-h2 chromium
      strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
      libstrongswan-extra-plugins
      liblwip-dev libc-ares-dev dnsmasq-base valgrind postgresql-client openssh-server systemd
      chromium zbar-tools fonts-dejavu-core softhsm2 libengine-pkcs11-openssl opensc
      redis-server libhiredis-dev haproxy groff-base file util-linux
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
      libssl-dev:arm64 libcurl4-openssl-dev:arm64 libcmocka-dev:arm64"
# make check-arm (cmake/aarch64.cmake): the data plane cross-built for aarch64 and run under
# qemu-user links the arm64 OpenSSL, libcurl and cmocka of multiarch (the :arm64 packages above).
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
# The apt-get update below (the :arm64 packages are then missing) fetches the arm64 lists too.
dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
	# --no-remove: an :arm64 library must come at the version of its amd64 twin (multiarch);
	# apt upgrades the twin to match, and fails rather than remove anything.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends --no-remove $missing
fi
# npm packages of the API contract tests (ajv, swagger-parser, openapi-typescript, TypeScript),
# exactly as tests/contract/package-lock.json pins them; again only when the lockfile changed.
top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$top/tests/contract/node_modules/.package-lock.json" ] ||
	[ "$top/tests/contract/package-lock.json" -nt "$top/tests/contract/node_modules/.package-lock.json" ]; then
	echo "deps: npm ci in tests/contract"
	(cd "$top/tests/contract" && npm ci --no-audit --no-fund --loglevel=error)
fi
# OpenSSL's FIPS provider for the FIPS tests (docs/FIPS.md): built once from Debian's openssl
# source into /var/cache/sg-fips (minutes the first time), a lookup afterwards.
"$top/scripts/fips-provider.sh" >/dev/null
# playwright-core drives Debian's Chromium in the browser tests (tests/browser, INTEROP.md).
if [ ! -f "$top/tests/browser/node_modules/.package-lock.json" ] ||
	[ "$top/tests/browser/package-lock.json" -nt "$top/tests/browser/node_modules/.package-lock.json" ]; then
	echo "deps: npm ci in tests/browser"
	(cd "$top/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
