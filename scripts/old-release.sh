#!/bin/sh
# Prints the path of `secureguard` built from an earlier commit of this repository, building it
# once into a cache outside the build tree (like scripts/fips-provider.sh), keyed by the commit:
# tests/integration/test_server_upgrade.sh runs it beside this tree's server for a rolling upgrade
# across a schema migration. Needs the repository's history (a clone, not an archive).
#
#   scripts/old-release.sh COMMIT        SG_OLD_CACHE overrides /var/cache/sg-old
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
commit=${1:?usage: old-release.sh COMMIT}
full=$(git -C "$top" rev-parse --verify -q "$commit^{commit}") || {
	echo "old-release: $commit is not in this repository's history (a shallow clone or an archive?)" >&2
	exit 2
}
C=${SG_OLD_CACHE:-/var/cache/sg-old}
out=$C/$full/secureguard
if [ ! -x "$out" ]; then
	mkdir -p "$C"
	exec 9>"$C/.lock"
	flock 9
	if [ ! -x "$out" ]; then
		tmp=$(mktemp -d "$C/build.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		mkdir "$tmp/src"
		git -C "$top" archive "$full" | tar -x -C "$tmp/src"
		echo "old-release: building secureguard of ${full%"${full#???????????}"} into $C (once)" >&2
		cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release >"$tmp/log" 2>&1 &&
			cmake --build "$tmp/build" --target secureguard -j2 >>"$tmp/log" 2>&1 || {
			tail -30 "$tmp/log" >&2
			echo "old-release: the build of $full failed" >&2
			exit 1
		}
		mkdir -p "$C/$full"
		cp "$tmp/build/bin/secureguard" "$out.tmp"
		mv "$out.tmp" "$out"
	fi
fi
echo "$out"
