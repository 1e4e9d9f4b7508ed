#!/bin/sh
# libsecureguard's ABI as a user meets it: `cmake --install` into a staging DESTDIR with a
# PREFIX, then the example program (examples/sg_example.c) built with nothing but the installed
# header and secureguard.pc, against the shared and against the static library; both run. The
# shared library exports exactly the functions the public headers declare (all sg_*), under
# the soname libsecureguard.so.<ABI>.
#   test_abi.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
set -eu
build=$1 src=$2 extra=${3:-}
tmp=$(mktemp -d /tmp/sgabi.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/sgabi
DESTDIR=$tmp cmake --install "$build" --prefix "$prefix" >/dev/null
root=$tmp$prefix
lib=$(ls -d "$root"/lib* | head -n1)
export PKG_CONFIG_PATH=$lib/pkgconfig
[ -f "$root/include/secureguard/sg.h" ] || { echo "FAIL: sg.h not installed under $root"; exit 1; }
so=$(ls "$lib"/libsecureguard.so.* | head -n1)
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
abi=$(sed -n 's/^#define SG_ABI_VERSION \([0-9]*\)$/\1/p' "$root/include/secureguard/sg.h")
[ "$soname" = "libsecureguard.so.$abi" ] || { echo "FAIL: soname $soname, ABI $abi"; exit 1; }

# Exported symbols against the declarations.
nm -D --defined-only "$so" | awk '$2 ~ /[TDBRW]/ { sub(/@.*/, "", $3); print $3 }' | sort -u \
	>"$tmp/exported"
sed -n 's/.*[ *]\(sg_[a-z_0-9]*\)(.*/\1/p' "$root/include/secureguard/sg.h" \
	"$root/include/secureguard/sg_errors.h" | sort -u >"$tmp/declared"
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
	echo "FAIL: exported symbols differ from the declared API (< exported, > declared):"
	diff "$tmp/exported" "$tmp/declared" || true
	exit 1
fi
grep -v '^sg_' "$tmp/exported" && { echo "FAIL: a symbol without the sg_ prefix"; exit 1; }
echo "exported: $(wc -l <"$tmp/exported") symbols, all sg_*, equal to the declarations; soname $soname"

# The example against the installed header and pkg-config file.
cfg=$tmp/example.conf
cat >"$cfg" <<CONF
[Interface]
PrivateKey = $(head -c 32 /dev/urandom | base64)
Address = 10.79.0.2/24
[Peer]
PublicKey = $(head -c 32 /dev/urandom | base64)
AllowedIPs = 10.79.0.0/24
Endpoint = 127.0.0.1:9
CONF
# shellcheck disable=SC2046,SC2086
cc -std=c17 -Wall -Werror $extra $(pkg-config --cflags secureguard) "$src/examples/sg_example.c" \
	-o "$tmp/example" $(pkg-config --libs secureguard)
LD_LIBRARY_PATH=$lib "$tmp/example" "$cfg" >"$tmp/out" 2>&1 || { cat "$tmp/out"; echo "FAIL: shared"; exit 1; }
grep -q "^libsecureguard " "$tmp/out" || { cat "$tmp/out"; exit 1; }
echo "shared: $(head -n1 "$tmp/out")"
# shellcheck disable=SC2046,SC2086
cc -std=c17 -Wall -Werror $extra $(pkg-config --cflags secureguard) "$src/examples/sg_example.c" \
	-o "$tmp/example-static" "$lib/libsecureguard.a" $(pkg-config --static --libs-only-l secureguard | sed 's/-lsecureguard//')
ldd "$tmp/example-static" | grep -q libsecureguard && { echo "FAIL: static example needs the .so"; exit 1; }
"$tmp/example-static" "$cfg" >"$tmp/out" 2>&1 || { cat "$tmp/out"; echo "FAIL: static"; exit 1; }
echo "static: $(head -n1 "$tmp/out")"
echo "PASS"
