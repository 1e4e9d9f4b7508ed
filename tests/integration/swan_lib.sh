# shellcheck shell=bash
# strongSwan's charon in the test namespaces (docs: ../shared/docs/INTEROP.md). Sourced after
# lib.sh by the tests that run real strongSwan. Each charon gets a private mount namespace whose
# /run is its own directory (charon's pid file /var/run/charon.pid is compiled in), its own
# strongswan.conf and VICI socket under $SG_TMP/swan-NAME.

SWAN_CHARON=/usr/lib/ipsec/charon

swan_require() {
	[ -x "$SWAN_CHARON" ] || skip "missing $SWAN_CHARON (scripts/deps.sh installs strongswan-charon)"
	command -v swanctl >/dev/null || skip "missing swanctl (scripts/deps.sh installs strongswan-swanctl)"
	command -v unshare >/dev/null || skip "missing unshare"
}

# swan_start NS NAME: starts charon in namespace NS; sets SWAN_URI_<NAME> and SWAN_DIR_<NAME>.
# SWAN_LOG sets the file log level of the ike subsystem (default 2; the benchmark uses 0).
# SWAN_EXTRA, if set, is added to the charon section (e.g. "block_threshold = 100000").
swan_start() {
	local ns=$1 name=$2 dir=$SG_TMP/swan-$2
	mkdir -p "$dir/run"
	chmod 700 "$dir"
	cat >"$dir/strongswan.conf" <<-CONF
		charon {
		  load = random nonce kdf openssl aes gcm chapoly sha1 sha2 hmac curve25519 pem pkcs1 pkcs8 x509 constraints kernel-libipsec kernel-netlink socket-default vici
		  plugins { vici { socket = unix://$dir/charon.vici } }
		  ${SWAN_EXTRA:-}
		  filelog { main { path = $dir/charon.log
		    default = 1
		    ike = ${SWAN_LOG:-2}
		    time_format = %H:%M:%S
		    flush_line = yes } }
		}
	CONF
	printf -v "SWAN_URI_$name" '%s' "unix://$dir/charon.vici"
	printf -v "SWAN_DIR_$name" '%s' "$dir"
	ip netns exec "$ns" unshare -m --propagation private sh -c \
		"mount --bind '$dir/run' /run && exec env STRONGSWAN_CONF='$dir/strongswan.conf' $SWAN_CHARON" \
		>"$dir/stdout.log" 2>&1 &
	wait_for 10 test -S "$dir/charon.vici" || {
		cat "$dir/stdout.log"
		fail "charon $name did not create its VICI socket"
	}
	log "charon $name started in $ns"
}
