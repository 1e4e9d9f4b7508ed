#!/bin/sh
# The systemd units of dist/ as `make install` writes them, checked by systemd's own
# `systemd-analyze verify` (it runs without a running systemd): every directive known and well
# formed, every ExecStart executable. verify reports some problems (an unknown or malformed
# setting) as warnings with exit status 0, so any output at all fails the test.
#   verify_units.sh SRCDIR BINDIR
set -u
src=$1 bin=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (scripts/deps.sh installs systemd)"; exit 1; }
tmp=$(mktemp -d /tmp/sg-units.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
for f in "$src"/dist/*.service.in; do
	u=$(basename "$f" .in)
	# A template is verified as one of its instances.
	case $u in *@.service) u=${u%@.service}@wg0.service ;; esac
	sed "s|@BINDIR@|$bin|g" "$f" >"$tmp/$u"
	n=$((n + 1))
done
# --man=no: the units' Documentation= lines are not looked up.
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./*.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "systemd-analyze verify: exit $rc"
	echo "$out"
	exit 1
fi
echo "systemd-analyze verify: $n units clean"
