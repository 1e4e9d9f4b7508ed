#!/bin/bash
# The Debian package (scripts/deb.sh, make deb): built from this build's binaries, checked as
# lintian would check the things that matter here (owners, modes, stripped binaries, gzipped man
# pages that groff reads without a warning, md5sums, units where Debian 12 keeps them, Depends
# that this Debian 12 satisfies), then installed with dpkg into a throwaway root: an overlay of
# this machine's / in a private mount and network namespace (nothing of the machine changes).
# There the maintainer scripts create the system user and enable the server's unit,
# systemd-analyze verifies every installed unit, the server runs as the unit runs it (its user,
# its ExecStart, no capabilities, no new privileges) and answers /api/health and serves the
# console, and `dpkg --purge` removes it all.
#   deb_test.sh SRCDIR BUILDDIR
set -u
src=$1 build=$2
log() { printf '[deb_test] %s\n' "$*"; }
fail() { log "FAIL: $*"; exit 1; }
for t in dpkg-deb dpkg-shlibdeps unshare groff systemd-analyze curl setpriv; do
	command -v $t >/dev/null || { log "SKIP: missing $t"; exit 77; }
done
[ -d "$build/share/secureguard/console" ] || { log "SKIP: no built console (npm missing)"; exit 77; }
tmp=$(mktemp -d /tmp/sg-deb-test.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
deb=$("$src/scripts/deb.sh" "$build" "$tmp") || fail "scripts/deb.sh"
log "built $(basename "$deb"): $(du -k "$deb" | cut -f1) KiB"

# ---- the package as a file ----
dpkg-deb --info "$deb" >"$tmp/info" || fail "dpkg-deb --info"
for f in Package Version Architecture Maintainer Installed-Size Depends Section Priority Description; do
	grep -q "^ $f: " "$tmp/info" || fail "control has no $f"
done
dpkg-deb --contents "$deb" >"$tmp/contents" || fail "dpkg-deb --contents"
awk '$2 != "root/root" {bad=1; print} END {exit bad}' "$tmp/contents" || fail "files not owned by root"
grep -E '^.{4}.{3}.{2}w' "$tmp/contents" && fail "world-writable files"
for p in usr/bin/secureguard usr/bin/secureguardd usr/bin/secureguard-iked \
	lib/systemd/system/secureguard-server.service lib/systemd/system/secureguard@.service \
	lib/systemd/system/secureguard-agent.service lib/systemd/system/secureguard-gateway.service \
	lib/systemd/system/secureguard-iked.service usr/share/man/man8/secureguard.8.gz \
	usr/share/man/man8/secureguardd.8.gz usr/share/man/man8/secureguard-server.8.gz \
	usr/share/man/man8/secureguard-agent.8.gz usr/share/man/man8/secureguard-gateway.8.gz \
	usr/share/man/man8/secureguard-iked.8.gz usr/share/bash-completion/completions/secureguard \
	usr/share/secureguard/console/index.html usr/share/doc/secureguard/copyright \
	usr/share/doc/secureguard/changelog.Debian.gz; do
	grep -q " \./$p\( \|$\)" "$tmp/contents" || fail "$p missing from the package"
done
grep -qE '\./usr/(local|include)/|\./usr/lib/systemd/|libsecureguard' "$tmp/contents" &&
	fail "files outside the package's places"
mkdir "$tmp/x"
dpkg-deb --raw-extract "$deb" "$tmp/x" || fail "dpkg-deb --raw-extract"
(cd "$tmp/x" && md5sum --quiet -c DEBIAN/md5sums) || fail "md5sums"
for b in "$tmp"/x/usr/bin/*; do
	[ "$(stat -c %a "$b")" = 755 ] || fail "$b not mode 0755"
	file "$b" 2>/dev/null | grep -q 'not stripped' && fail "$b not stripped"
done
for m in "$tmp"/x/usr/share/man/man8/*.8.gz; do
	w=$(zcat "$m" | groff -man -ww -z 2>&1) || fail "groff on $m"
	[ -z "$w" ] || fail "groff warns about $(basename "$m"): $w"
done
# Every option a command's --help names is in its man page.
for c in "server secureguard-server" "agent secureguard-agent" "gateway secureguard-gateway" \
	"- secureguardd"; do
	set -- $c
	if [ "$1" = - ]; then help=$("$build/bin/secureguardd" --help 2>&1)
	else help=$("$build/bin/secureguard" "$1" --help 2>&1); fi
	page=$(zcat "$tmp/x/usr/share/man/man8/$2.8.gz" | sed 's/\\-/-/g')
	for o in $(printf '%s\n' "$help" | grep -o -- '--[a-z0-9][a-z0-9-]*' | sort -u); do
		printf '%s\n' "$page" | grep -q -- "$o" || fail "$2(8) does not describe $o"
	done
done
bash -n "$tmp/x/usr/share/bash-completion/completions/secureguard" || fail "completion syntax"
log "package: control fields, owners, modes, stripped binaries, md5sums, man pages and options"

# ---- installed into a throwaway root ----
cp "$deb" "$tmp/pkg.deb"
cat >"$tmp/inside.sh" <<'IN'
set -u
fail() { echo "[deb_test] FAIL (installed): $*"; exit 1; }
ip link set lo up
dpkg -i /tmp/pkg.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i"; }
u=$(getent passwd secureguard) || fail "no user secureguard"
uid=$(echo "$u" | cut -d: -f3)
[ "$uid" -lt 1000 ] || fail "secureguard is not a system user ($uid)"
[ -L /etc/systemd/system/multi-user.target.wants/secureguard-server.service ] ||
	fail "secureguard-server.service not enabled"
out=$(cd /lib/systemd/system && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
	secureguard-server.service secureguard-agent.service secureguard-gateway.service \
	secureguard-iked.service secureguard@wg0.service 2>&1) || fail "systemd-analyze: $out"
[ -z "$out" ] || fail "systemd-analyze: $out"
# As systemd would run it: the unit's user, state directory, ExecStart and environment file.
unit=/lib/systemd/system/secureguard-server.service
grep -qx 'User=secureguard' $unit || fail "the unit does not run as secureguard"
exe=$(sed -n 's/^ExecStart=//p' $unit)
install -d -o secureguard -g secureguard -m 0700 /var/lib/secureguard
echo 'SG_SERVER_OPTS="--port-file /var/lib/secureguard/port"' >/etc/secureguard/server.env
set -a; . /etc/secureguard/server.env; set +a
eval "set -- $exe"
SG_ADMIN_EMAIL=admin@example.com SG_ADMIN_PASSWORD=deb-test-password-1 \
	setpriv --reuid secureguard --regid secureguard --init-groups --no-new-privs \
	--bounding-set -all --inh-caps -all -- "$@" >/tmp/server.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s /var/lib/secureguard/port ] && break; sleep 0.1; done
[ -s /var/lib/secureguard/port ] || { cat /tmp/server.log; fail "the server did not start"; }
h=$(curl -sf http://127.0.0.1:8080/api/health) || fail "/api/health"
case $h in *'"status":"ok"'*) ;; *) fail "/api/health: $h" ;; esac
curl -sf http://127.0.0.1:8080/ | grep -qi '<html' || fail "the console is not served at /"
[ "$(stat -c %U /var/lib/secureguard/server.db)" = secureguard ] || fail "server.db not the user's"
kill -TERM $pid; wait $pid || fail "the server's exit status after SIGTERM"
echo "[deb_test] installed: user secureguard (uid $uid), unit enabled and verified, the server as that user answered $h"
dpkg --purge secureguard >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg --purge"; }
[ ! -e /usr/bin/secureguard ] && [ ! -e /var/lib/secureguard ] &&
	[ ! -e /etc/systemd/system/multi-user.target.wants/secureguard-server.service ] ||
	fail "files left after dpkg --purge"
echo "[deb_test] purged: binaries, units' links and data gone"
IN
# A private mount and network namespace; / seen through an overlay whose upper layer is a tmpfs
# that vanishes with the namespace.
mkdir -p "$tmp/ovl"
unshare --mount --net --propagation private bash -c '
	set -e
	t=$1
	mount -t tmpfs none "$t/ovl"
	mkdir "$t/ovl/u" "$t/ovl/w" "$t/ovl/m"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$t/ovl/u,workdir=$t/ovl/w" "$t/ovl/m"
	m=$t/ovl/m
	mount -t proc proc "$m/proc"
	mount --rbind /dev "$m/dev"
	mount -t tmpfs none "$m/tmp"
	mount -t tmpfs none "$m/run"
	cp "$t/pkg.deb" "$t/inside.sh" "$m/tmp/"
	exec chroot "$m" bash /tmp/inside.sh
' sh "$tmp" || { mkdir -p "$tmp/ovl"; fail "install in the throwaway root"; }
[ -e /usr/bin/secureguard ] && dpkg -s secureguard >/dev/null 2>&1 && fail "the machine changed"
log "PASS"
