#!/usr/bin/env bash
# secureguard-iked against strongSwan 5.9 (charon with kernel-libipsec, driven by strongSwan's own
# swanctl), the proof list of issue 13 that this build covers:
#  - swanctl loads a configuration into our daemon over VICI and initiates it (ours initiator,
#    PSK, AES-GCM-256, Curve25519, remote_addrs a host name), printing our control-log lines;
#    a name that does not resolve fails the initiate with the resolver's reason; ping and a
#    sha256-checked TCP transfer through the tunnel; a second child over the same IKE SA
#    (CREATE_CHILD_SA);
#  - IKE and Child SA rekeys started by each side while iperf3 runs: no one-second interval
#    without traffic, one IKE SA and two Child SAs on each side afterwards; ike-rekey and
#    child-rekey events in charon's layout, log events that swanctl --log prints;
#  - swanctl --terminate of one child, then of the IKE SA on our side: DELETEs, both sides clean up;
#  - start_action = trap: swanctl --list-pols shows it, a ping brings the SA up, --uninstall;
#  - charon initiates (ours responder) with ChaCha20-Poly1305, configured by our --conf file
#    where another connection comes first (and an encrypted private key with its secret: a
#    wrong secret stops the start, naming the key), then adds its second child; from here on our ESP
#    runs on two crypto lanes;
#  - hostile datagrams on 500/4500 and a flood of IKE_SA_INIT requests do not stop the tunnel;
#  - X.509 certificates (RFC 7427 signatures: ours ECDSA P-384, charon's RSA) from one CA, loaded
#    by swanctl from its x509 and private directories (charon's CA from x509ca, ours from an
#    authorities section), identities written as text DNs on both sides, in both roles, the
#    IKE_AUTH messages fragmented both ways (RFC 7383, 600-byte fragments), and not at all
#    with fragmentation = no on ours; RSASSA-PSS both ways (charon's rsa_pss, ours as mars with
#    auth = rsa/pss); an authorities section in our --conf file;
#  - DPD notices a killed peer (dpd_delay 2s, dpd_timeout 8s) and clears the SAs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/swan_lib.sh"
sg_init ik
swan_require
command -v iperf3 >/dev/null || skip "missing iperf3 (scripts/deps.sh installs it)"
IKED=$SG_BIN/secureguard-iked
[ -x "$IKED" ] || skip "$IKED not built"

sg_hosts 2
A=${HOST[1]} B=${HOST[2]}
ip -n "$A" addr add 10.1.0.1/32 dev lo
ip -n "$B" addr add 10.2.0.1/32 dev lo
ip -n "$B" addr add 10.3.0.1/32 dev lo
# Small IKE fragments on both sides (RFC 7383), so that IKE_AUTH with certificates (phase 6)
# travels in fragments both ways; smaller messages are not fragmented.
# charon signs with RSASSA-PSS (rsa_pss), so certificate phases check our PSS verification.
SWAN_EXTRA="fragment_size = 600
  rsa_pss = yes" swan_start "$B" b
export SG_IKE_FRAGMENT_SIZE=600
SW() { swanctl "$@" --uri "$SWAN_URI_b"; }
mkdir -m 700 "$SG_TMP/iked"
OURS=unix://$SG_TMP/iked/iked.vici
OW() { swanctl "$@" --uri "$OURS"; }

# conf SIDE ESP_PROPOSAL IKE_PROPOSAL [EXTRA_CONN_LINES [EXTRA_CONNECTIONS]]: a swanctl.conf
# for side a (ours) or b, with two children: net (10.1/16 - 10.2/16) and net2 (10.1/16 -
# 10.3/16), listed in the other order on charon's side.
conf() {
	local side=$1 me=192.0.2.1 peer=192.0.2.2 lid=a.example rid=b.example lts=10.1.0.0/16 rts=10.2.0.0/16
	local c1=net c2=net2 t2l=10.1.0.0/16 t2r=10.3.0.0/16
	if [ "$side" = b ]; then
		me=192.0.2.2 peer=192.0.2.1 lid=b.example rid=a.example lts=10.2.0.0/16 rts=10.1.0.0/16
		c1=net2 c2=net t2l=10.2.0.0/16 t2r=10.1.0.0/16 lts=10.3.0.0/16 rts=10.1.0.0/16
	fi
	cat <<-CONF
		connections {
		  ${5:-}
		  gw {
		    version = 2
		    local_addrs = $me
		    remote_addrs = $peer
		    proposals = $3
		    ${4:-}
		    local {
		      auth = psk
		      id = $lid
		    }
		    remote {
		      auth = psk
		      id = $rid
		    }
		    children {
		      $c1 {
		        local_ts = $lts
		        remote_ts = $rts
		        esp_proposals = $2
		        start_action = none
		      }
		      $c2 {
		        local_ts = $t2l
		        remote_ts = $t2r
		        esp_proposals = $2
		      }
		    }
		  }
		}
		secrets {
		  ike-1 {
		    id-a = a.example
		    id-b = b.example
		    secret = "correct horse battery staple"
		  }
		}
	CONF
}

start_iked() {
	ip netns exec "$A" "$IKED" -f "$@" --vici "$OURS" >>"$SG_TMP/iked.log" 2>&1 &
	IPID=$!
	wait_for 10 test -S "$SG_TMP/iked/iked.vici" || fail "secureguard-iked did not start: $(tail -5 "$SG_TMP/iked.log")"
}
# The same with its own /etc/hosts (a private mount namespace, as charon gets its own /run),
# where charon.test names charon's address: remote_addrs takes host names.
printf '192.0.2.2 charon.test\n' >"$SG_TMP/hosts"
start_iked_named() {
	ip netns exec "$A" unshare -m --propagation private sh -c \
		"mount --bind '$SG_TMP/hosts' /etc/hosts && exec '$IKED' -f --vici '$OURS'" >>"$SG_TMP/iked.log" 2>&1 &
	IPID=$!
	wait_for 10 test -S "$SG_TMP/iked/iked.vici" || fail "secureguard-iked did not start: $(tail -5 "$SG_TMP/iked.log")"
}
sas() { "$@" --list-sas 2>/dev/null | grep -c 'ESTABLISHED' || true; }
children() { "$@" --list-sas 2>/dev/null | grep -c 'INSTALLED' || true; }
no_sas() { [ "$(sas "$@")" = 0 ]; }
ping_ok() { ip netns exec "$A" ping -c 1 -W 1 -I 10.1.0.1 "${1:-10.2.0.1}" >/dev/null; }
iked_diag() {
	echo "--- secureguard-iked log (last 40 lines)"
	tail -40 "$SG_TMP/iked.log"
	echo "--- charon log (last 40 lines)"
	tail -40 "$SWAN_DIR_b/charon.log"
}
trap 'iked_diag' ERR

log "1. swanctl loads our daemon over VICI and initiates: AES-GCM-256, Curve25519, PSK"
conf b aes256gcm16 aes256gcm16-prfsha256-x25519 "encap = yes" >"$SG_TMP/b.conf"
# Ours names charon (charon.test, from its own /etc/hosts); a second connection names a host
# that does not resolve.
NX="nx {
    remote_addrs = nowhere.invalid
    local {
      auth = psk
      id = a.example
    }
    remote {
      auth = psk
      id = b.example
    }
    children {
      nxnet {
        local_ts = 10.1.0.0/16
        remote_ts = 10.9.0.0/16
      }
    }
  }"
conf a aes256gcm16 aes256gcm16-prfsha256-x25519 "" "$NX" | sed 's/remote_addrs = 192.0.2.2/remote_addrs = charon.test/' >"$SG_TMP/a.conf"
SW --load-all --file "$SG_TMP/b.conf" >/dev/null 2>&1 || fail "charon: swanctl --load-all"
start_iked_named
OW --load-all --file "$SG_TMP/a.conf" >"$SG_TMP/load.out" 2>&1 || fail "swanctl --load-all into ours: $(cat "$SG_TMP/load.out")"
grep -q "loaded connection 'gw'" "$SG_TMP/load.out" || fail "swanctl did not load the connection into ours"
OW --list-conns >"$SG_TMP/conns.out"
grep -q 'remote: *charon.test' "$SG_TMP/conns.out" || fail "list-conns: $(cat "$SG_TMP/conns.out")"
# A name that does not resolve: the initiate fails, saying which name and why.
timeout 30 swanctl --initiate --child nxnet --uri "$OURS" >"$SG_TMP/init-nx.out" 2>&1 &&
	fail "initiating an unresolvable host succeeded: $(cat "$SG_TMP/init-nx.out")"
grep -q "resolving 'nowhere.invalid' failed" "$SG_TMP/init-nx.out" || fail "unresolvable host: $(cat "$SG_TMP/init-nx.out")"
OW --initiate --child net >"$SG_TMP/init.out" 2>&1 || fail "swanctl --initiate: $(cat "$SG_TMP/init.out")"
grep -q 'initiate completed successfully' "$SG_TMP/init.out" || fail "initiate: $(cat "$SG_TMP/init.out")"
# swanctl prints the control-log events of the initiation, as with charon.
grep -q '^\[IKE\] initiating IKE_SA gw\[[0-9]*\] to 192.0.2.2' "$SG_TMP/init.out" &&
	grep -q '^\[IKE\] IKE_SA gw\[[0-9]*\] established between' "$SG_TMP/init.out" &&
	grep -q '^\[IKE\] CHILD_SA net{[0-9]*} established with SPIs' "$SG_TMP/init.out" ||
	fail "no control-log lines from --initiate: $(cat "$SG_TMP/init.out")"
# A second child over the same IKE SA (CREATE_CHILD_SA from us); charon lists its children in
# the other order, so it picks the config by the selectors.
OW --initiate --child net2 >"$SG_TMP/init-net2.out" 2>&1 || fail "initiate net2: $(cat "$SG_TMP/init-net2.out")"
grep -q '^\[IKE\] establishing CHILD_SA net2' "$SG_TMP/init-net2.out" || fail "net2: $(cat "$SG_TMP/init-net2.out")"
wait_for 5 ping_ok 10.3.0.1 || fail "no ping through the second child"
assert_eq "$(children SW)" 2 "charon's Child SAs"
OW --list-sas | tee "$SG_TMP/sas.out"
grep -q 'AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519' "$SG_TMP/sas.out" || fail "unexpected IKE proposal"
grep -q 'ESP:AES_GCM_16-256' "$SG_TMP/sas.out" || fail "unexpected ESP proposal"
assert_eq "$(sas SW)" 1 "charon's IKE SAs"
wait_for 5 ping_ok || fail "no ping through the tunnel"
tcp_transfer "$A" "$B" 10.2.0.1 4
tcp_transfer "$B" "$A" 10.1.0.1 4

log "2. rekeys by each side while iperf3 runs; the log, ike-rekey and child-rekey events"
PROBE=$SG_BIN/vici_probe
"$PROBE" events "$OURS" 12 ike-rekey child-rekey >"$SG_TMP/ev-ours.out" 2>&1 &
EPID1=$!
"$PROBE" events "$SWAN_URI_b" 12 ike-rekey child-rekey >"$SG_TMP/ev-swan.out" 2>&1 &
EPID2=$!
swanctl --log --uri "$OURS" >"$SG_TMP/swanlog.out" 2>&1 &
LPID=$!
wait_for 5 grep -q registered "$SG_TMP/ev-ours.out" || fail "vici_probe events: $(cat "$SG_TMP/ev-ours.out")"
wait_for 5 grep -q registered "$SG_TMP/ev-swan.out" || fail "vici_probe events on charon: $(cat "$SG_TMP/ev-swan.out")"
ip netns exec "$B" iperf3 -s -1 -B 10.2.0.1 -p 5299 >"$SG_TMP/iperf-s.log" 2>&1 &
SPID=$!
wait_for 5 sg_listening "$B" 5299 || fail "iperf3 server did not start"
ip netns exec "$A" iperf3 -c 10.2.0.1 -B 10.1.0.1 -p 5299 -t 8 -i 1 -J >"$SG_TMP/iperf.json" 2>&1 &
CPID=$!
sleep 1.5
OW --rekey --child net >/dev/null || fail "our child rekey"
sleep 1.5
SW --rekey --child net >/dev/null || fail "charon's child rekey"
sleep 1.5
OW --rekey --ike gw >/dev/null || fail "our IKE rekey"
sleep 1.5
SW --rekey --ike gw >/dev/null || fail "charon's IKE rekey"
wait "$CPID" || fail "iperf3 client failed: $(tail -5 "$SG_TMP/iperf.json")"
wait "$SPID" || true
python3 - "$SG_TMP/iperf.json" <<-'PY' || fail "iperf3 stalled during the rekeys"
	import json, sys
	r = json.load(open(sys.argv[1]))
	iv = [i["sum"]["bytes"] for i in r["intervals"]]
	print("iperf3 bytes per second:", iv)
	sys.exit(0 if len(iv) >= 7 and min(iv) > 0 else 1)
	PY
wait_for 10 eval '[ "$(sas OW)" = 1 ] && [ "$(children OW)" = 2 ] && [ "$(sas SW)" = 1 ] && [ "$(children SW)" = 2 ]' ||
	fail "after the rekeys: ours $(sas OW) IKE/$(children OW) child, charon $(sas SW)/$(children SW)"
kill "$LPID" 2>/dev/null || true
wait "$EPID1" "$EPID2" || fail "vici_probe events failed"
# ike-rekey and child-rekey from ours for the rekeys of both sides, in charon's layout: every
# key we send is one charon sends in the same event (in any of its events of that kind, or one
# charon adds only in some states: initiator, and the nat-* flags; ours fakes a NAT always).
keys() { grep "^$1 " "$2" | tr ' ' '\n' | sed -n 's/=.*//p' | sed 's/-[0-9]\+$//' |
	grep -v '\.\(initiator\|nat-local\|nat-remote\|nat-fake\|nat-any\)$' | sort -u; }
for ev in ike-rekey child-rekey; do
	n=$(grep -c "^$ev " "$SG_TMP/ev-ours.out" || true)
	[ "$n" -ge 2 ] || fail "$n $ev events from ours: $(cat "$SG_TMP/ev-ours.out")"
	keys "$ev" "$SG_TMP/ev-swan.out" >"$SG_TMP/keys-swan"
	keys "$ev" "$SG_TMP/ev-ours.out" >"$SG_TMP/keys-ours"
	[ -s "$SG_TMP/keys-swan" ] || fail "no $ev events from charon: $(cat "$SG_TMP/ev-swan.out")"
	extra=$(comm -23 "$SG_TMP/keys-ours" "$SG_TMP/keys-swan")
	[ -z "$extra" ] || fail "$ev keys charon does not send: $extra"
done
grep -q ' gw.new.state=ESTABLISHED' "$SG_TMP/ev-ours.out" || fail "ike-rekey without the new SA: $(cat "$SG_TMP/ev-ours.out")"
grep -q ' gw.child-sas.net.new.spi-in=' "$SG_TMP/ev-ours.out" || fail "child-rekey without the new Child SA"
# swanctl --log printed our log events.
grep -q '\[IKE\] IKE_SA gw\[[0-9]*\] rekeyed between' "$SG_TMP/swanlog.out" &&
	grep -q '\[IKE\] CHILD_SA net{[0-9]*} rekeyed as net{' "$SG_TMP/swanlog.out" ||
	fail "swanctl --log: $(cat "$SG_TMP/swanlog.out")"
grep -q 'event=ike_rekeyed' "$SG_TMP/iked.log" || fail "no IKE rekey in our log"
[ "$(grep -c 'event=child_up' "$SG_TMP/iked.log")" -ge 3 ] || fail "fewer than three Child SAs in our log"
wait_for 5 ping_ok || fail "no ping after the rekeys"

log "3. swanctl --terminate on our side: one child, then the IKE SA; both sides clean up"
OW --terminate --child net2 >"$SG_TMP/term2.out" 2>&1 || fail "swanctl --terminate --child: $(cat "$SG_TMP/term2.out")"
wait_for 5 eval '[ "$(children SW)" = 1 ]' || fail "charon still has $(children SW) Child SAs"
ping_ok 10.3.0.1 && fail "ping through net2 after it was terminated"
ping_ok || fail "net went down with net2"
OW --terminate --ike gw >"$SG_TMP/term.out" 2>&1 || fail "swanctl --terminate: $(cat "$SG_TMP/term.out")"
wait_for 10 no_sas SW || fail "charon still has the IKE SA after our DELETE"
wait_for 5 no_sas OW || fail "we still have the IKE SA after terminating it"
ping_ok && fail "ping still works after the tunnel was terminated"
grep -q 'deleting IKE_SA gw\|received DELETE for IKE_SA gw' "$SWAN_DIR_b/charon.log" || fail "charon did not log our DELETE"

log "3b. start_action = trap: the first packet to the remote selectors brings the SA up"
sed 's/start_action = none/start_action = trap/' "$SG_TMP/a.conf" >"$SG_TMP/a-trap.conf"
OW --load-all --file "$SG_TMP/a-trap.conf" >/dev/null 2>&1 || fail "ours: loading the trap"
OW --list-pols >"$SG_TMP/pols.out"
grep -q '^gw/net, TUNNEL' "$SG_TMP/pols.out" && grep -q 'remote: 10.2.0.0/16' "$SG_TMP/pols.out" ||
	fail "list-pols: $(cat "$SG_TMP/pols.out")"
wait_for 8 ping_ok || fail "no ping through the trapped SA"
grep -q 'event=acquire conn=gw child=net' "$SG_TMP/iked.log" || fail "no acquire in our log"
assert_eq "$(sas SW)" 1 "charon's IKE SAs after the acquire"
OW --uninstall --child net >/dev/null || fail "swanctl --uninstall"
OW --list-pols >"$SG_TMP/pols.out"
grep -q 'gw/net' "$SG_TMP/pols.out" && fail "the trap is still listed after --uninstall"
OW --terminate --ike gw >/dev/null 2>&1 || fail "terminate the trapped SA"
wait_for 10 no_sas SW || fail "charon kept the trapped SA"

log "4. charon initiates, ours responds: ChaCha20-Poly1305, our --conf file, a connection loaded before ours"
kill -TERM "$IPID"
wait "$IPID" || fail "secureguard-iked did not exit cleanly"
# "decoy" comes first and would answer IKE_SA_INIT with its own proposals if the first loaded
# connection decided; the responder takes gw by its proposals, then by charon's identity.
DECOY='decoy {
    remote_addrs = 192.0.2.2
    proposals = aes128gcm16-prfsha256-ecp256
    local {
      auth = psk
      id = a.example
    }
    remote {
      auth = psk
      id = other.example
    }
    children {
      d {
        local_ts = 10.1.0.0/16
        remote_ts = 10.8.0.0/16
      }
    }
  }'
conf a chacha20poly1305 chacha20poly1305-prfsha256-x25519 "dpd_delay = 2s
    dpd_timeout = 8s" "$DECOY" >"$SG_TMP/a2.conf"
conf b chacha20poly1305 chacha20poly1305-prfsha256-x25519 "encap = yes" >"$SG_TMP/b2.conf"
# An authorities section in --conf: cacert is read from the x509ca directory next to the file.
mkdir -p "$SG_TMP/x509ca"
cp "$SG_SRC/tests/vectors/pki/ca.pem" "$SG_TMP/x509ca/"
printf 'authorities {\n  conf-ca {\n    cacert = ca.pem\n  }\n}\n' >>"$SG_TMP/a2.conf"
# An encrypted private key in --conf (PKCS#8, PBES2), decrypted with its secret as swanctl does.
mkdir -p "$SG_TMP/private"
cp "$SG_SRC/tests/vectors/pki/moon.enc.key" "$SG_TMP/private/"
printf 'secrets {\n  private-moon {\n    file = moon.enc.key\n    secret = "%s"\n  }\n}\n' "moon passphrase" >"$SG_TMP/keys.conf"
# With a wrong secret the daemon does not start, and says which key and why.
sed 's/moon passphrase/not the passphrase/' "$SG_TMP/keys.conf" | cat "$SG_TMP/a2.conf" - >"$SG_TMP/a2-bad.conf"
nsx "$A" "$IKED" -f --vici "$OURS" --conf "$SG_TMP/a2-bad.conf" >"$SG_TMP/iked-badkey.log" 2>&1 &&
	fail "started with a key its secret does not decrypt"
grep -q 'private key private/moon.enc.key: its secret does not decrypt it' "$SG_TMP/iked-badkey.log" ||
	fail "wrong key secret: $(cat "$SG_TMP/iked-badkey.log")"
grep -q 'not the passphrase' "$SG_TMP/iked-badkey.log" && fail "the secret was logged"
[ ! -e "$SG_TMP/iked/iked.vici" ] || fail "the daemon that did not start left its VICI socket"
cat "$SG_TMP/keys.conf" >>"$SG_TMP/a2.conf"
SW --load-all --file "$SG_TMP/b2.conf" >/dev/null 2>&1 || fail "charon: reload"
# Two crypto lanes from here on: ESP batches sealed and opened on two threads.
SG_CRYPTO_THREADS=2 start_iked --conf "$SG_TMP/a2.conf"
# The VICI socket can appear before the lanes are logged (seen under ASan): wait for the line.
wait_for 5 grep -q 'event=crypto_lanes lanes=2' "$SG_TMP/iked.log" || fail "not two crypto lanes: $(grep crypto_lanes "$SG_TMP/iked.log")"
OW --list-authorities >"$SG_TMP/auth-conf.out"
grep -q '^conf-ca:' "$SG_TMP/auth-conf.out" || fail "the --conf authority is not listed: $(cat "$SG_TMP/auth-conf.out")"
grep -q 'event=conf_failed' "$SG_TMP/iked.log" && fail "--conf: $(grep conf_failed "$SG_TMP/iked.log")"
SW --initiate --child net >"$SG_TMP/init2.out" 2>&1 || fail "charon --initiate: $(cat "$SG_TMP/init2.out")"
OW --list-sas | tee "$SG_TMP/sas2.out"
grep -q 'CHACHA20_POLY1305' "$SG_TMP/sas2.out" || fail "not ChaCha20-Poly1305"
wait_for 5 ping_ok || fail "no ping through the ChaCha20-Poly1305 tunnel"
tcp_transfer "$A" "$B" 10.2.0.1 2
grep -q "remote 'b.example'" "$SG_TMP/sas2.out" && grep -q '^gw: #' "$SG_TMP/sas2.out" || fail "not bound to gw"
# charon's second child over the same IKE SA: ours picks net2 (listed second) by the selectors.
SW --initiate --child net2 >"$SG_TMP/init2b.out" 2>&1 || fail "charon --initiate net2: $(cat "$SG_TMP/init2b.out")"
wait_for 5 ping_ok 10.3.0.1 || fail "no ping through the child charon added"
OW --list-sas >"$SG_TMP/sas2b.out"
grep -q 'net2: #' "$SG_TMP/sas2b.out" || fail "our net2 is not installed: $(cat "$SG_TMP/sas2b.out")"

log "5. hostile datagrams and an IKE_SA_INIT flood do not stop the tunnel"
ip netns exec "$B" python3 - <<-'PY' &
	import os, random, socket, struct, time
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("192.0.2.2", 0))
	def pl(nxt, body): return bytes([nxt, 0]) + struct.pack(">H", len(body) + 4) + body
	def init():
	    tr = lambda last, t, i, kl=None: bytes([0 if last else 3, 0]) + struct.pack(">H", 12 if kl else 8) + bytes([t, 0]) + struct.pack(">H", i) + (struct.pack(">HH", 0x800e, kl) if kl else b"")
	    prop = bytes([1, 1, 0, 3]) + tr(0, 1, 28) + tr(0, 2, 5) + tr(1, 4, 31)
	    sa = bytes([0, 0]) + struct.pack(">H", len(prop) + 4) + prop
	    chain = pl(34, sa) + pl(40, struct.pack(">HH", 31, 0) + os.urandom(32)) + pl(0, os.urandom(32))
	    return os.urandom(8) + bytes(8) + bytes([33, 0x20, 34, 0x08]) + struct.pack(">II", 0, 28 + len(chain)) + chain
	end = time.time() + 4
	n = 0
	while time.time() < end:
	    s.sendto(init(), ("192.0.2.1", 500))
	    s.sendto(os.urandom(random.randint(1, 300)), ("192.0.2.1", 500))
	    s.sendto(os.urandom(random.randint(1, 300)), ("192.0.2.1", 4500))
	    s.sendto(b"\0\0\0\0" + os.urandom(random.randint(28, 300)), ("192.0.2.1", 4500))
	    n += 4
	    if n % 400 == 0:
	        time.sleep(0.01)
	print("hostile datagrams sent:", n)
	PY
FPID=$!
for i in 1 2 3 4 5 6; do
	ping_ok || fail "ping lost during the flood (probe $i)"
	sleep 0.5
done
wait "$FPID"
kill -0 "$IPID" || fail "secureguard-iked died under the flood"
assert_eq "$(sas OW)" 1 "our IKE SAs after the flood"
tcp_transfer "$A" "$B" 10.2.0.1 1

log "6. certificates: RFC 7427 signatures, ours ECDSA P-384 (moon), charon RSA (sun), both roles"
PKI=$SG_SRC/tests/vectors/pki
for side in a b; do
	mkdir -p "$SG_TMP/pki-$side/x509" "$SG_TMP/pki-$side/x509ca" "$SG_TMP/pki-$side/private"
done
cp "$PKI/ca.pem" "$SG_TMP/pki-b/x509ca/"
cp "$PKI/moon.pem" "$SG_TMP/pki-a/x509/"
cp "$PKI/moon.key" "$SG_TMP/pki-a/private/"
cp "$PKI/sun.pem" "$SG_TMP/pki-b/x509/"
cp "$PKI/sun.key" "$SG_TMP/pki-b/private/"
# Identities are the certificates' subjects written as text DNs (charon encodes them as
# PrintableString, the certificates hold UTF8String); our trust anchor comes from an
# authorities section whose file the daemon reads itself (nothing in our x509ca).
MOON_DN="C=CH, O=SecureGuard Test, CN=moon.example"
SUN_DN="C=CH, O=SecureGuard Test, CN=sun.example"
certconf() { # certconf SIDE
	local me=192.0.2.1 peer=192.0.2.2 lid=$MOON_DN cert=moon.pem rid=$SUN_DN lts=10.1.0.0/16 rts=10.2.0.0/16
	local extra="dpd_delay = 2s
    dpd_timeout = 8s" auth="authorities {
  test-ca {
    file = $PKI/ca.pem
  }
}"
	if [ "$1" = b ]; then
		me=192.0.2.2 peer=192.0.2.1 lid=$SUN_DN cert=sun.pem rid=$MOON_DN lts=10.2.0.0/16 rts=10.1.0.0/16 extra="encap = yes" auth=""
	fi
	cat <<-CONF
		connections {
		  gw {
		    version = 2
		    local_addrs = $me
		    remote_addrs = $peer
		    proposals = aes256gcm16-prfsha384-ecp384
		    $extra
		    local {
		      auth = pubkey
		      certs = $cert
		      id = "$lid"
		    }
		    remote {
		      auth = pubkey
		      id = "$rid"
		    }
		    children {
		      net {
		        local_ts = $lts
		        remote_ts = $rts
		        esp_proposals = aes256gcm16
		        start_action = none
		      }
		    }
		  }
		}
		$auth
	CONF
}
certconf a >"$SG_TMP/pki-a/swanctl.conf"
certconf b >"$SG_TMP/pki-b/swanctl.conf"
OW --terminate --ike gw >/dev/null 2>&1 || true
wait_for 10 no_sas SW || fail "the PSK SA did not go away"
SW --load-all --file "$SG_TMP/pki-b/swanctl.conf" >"$SG_TMP/certload-b.out" 2>&1 || fail "charon: loading certificates: $(cat "$SG_TMP/certload-b.out")"
OW --load-all --file "$SG_TMP/pki-a/swanctl.conf" >"$SG_TMP/certload-a.out" 2>&1 || fail "ours: loading certificates: $(cat "$SG_TMP/certload-a.out")"
grep -q "loaded connection 'gw'" "$SG_TMP/certload-a.out" || fail "ours: $(cat "$SG_TMP/certload-a.out")"
grep -q "loaded authority 'test-ca'" "$SG_TMP/certload-a.out" || fail "ours: no authority loaded: $(cat "$SG_TMP/certload-a.out")"
OW --list-authorities >"$SG_TMP/auth-a.out"
grep -q 'cacert: C=CH, O=SecureGuard Test, CN=Test CA' "$SG_TMP/auth-a.out" || fail "list-authorities: $(cat "$SG_TMP/auth-a.out")"
OW --initiate --child net >"$SG_TMP/certinit.out" 2>&1 || fail "initiate with certificates: $(cat "$SG_TMP/certinit.out")"
wait_for 5 ping_ok || fail "no ping through the certificate-authenticated tunnel"
SW --list-sas | tee "$SG_TMP/certsas.out"
grep -q "remote 'C=CH, O=SecureGuard Test, CN=moon.example'" "$SG_TMP/certsas.out" || fail "charon did not authenticate our DN"
grep -q "authentication of 'C=CH, O=SecureGuard Test, CN=moon.example' with .*successful" "$SWAN_DIR_b/charon.log" ||
	fail "charon did not log a successful signature check of our certificate"
OW --list-sas >"$SG_TMP/certsas-a.out"
grep -q "remote 'C=CH, O=SecureGuard Test, CN=sun.example'" "$SG_TMP/certsas-a.out" || fail "our list-sas: $(cat "$SG_TMP/certsas-a.out")"
OW --terminate --ike gw >/dev/null || fail "terminate the certificate SA"
wait_for 10 no_sas SW || fail "charon kept the certificate SA"
grep -q 'splitting IKE message' "$SWAN_DIR_b/charon.log" || fail "charon sent no IKE fragments"
grep -q 'reassembled fragmented IKE message' "$SWAN_DIR_b/charon.log" || fail "charon reassembled none of our fragments"
grep -q "authentication of 'C=CH, O=SecureGuard Test, CN=sun.example' (myself) with RSA_EMSA_PSS" "$SWAN_DIR_b/charon.log" ||
	fail "charon did not sign with RSASSA-PSS"
# fragmentation = no on our side: not announced, so charon's IKE_AUTH comes whole. And our side
# as mars (RSA) with auth = rsa/pss: ours signs with RSASSA-PSS and insists on it from charon.
cp "$PKI/mars.pem" "$SG_TMP/pki-a/x509/"
cp "$PKI/mars.key" "$SG_TMP/pki-a/private/"
sed -i -e 's/^    version = 2$/    version = 2\n    fragmentation = no/' -e 's/moon/mars/g' \
	-e 's|auth = pubkey|auth = rsa/pss|' "$SG_TMP/pki-a/swanctl.conf"
grep -q '^    fragmentation = no$' "$SG_TMP/pki-a/swanctl.conf" || fail "fragmentation = no not set"
OW --load-all --file "$SG_TMP/pki-a/swanctl.conf" >"$SG_TMP/certload-a2.out" 2>&1 || fail "ours: reload as mars: $(cat "$SG_TMP/certload-a2.out")"
sed -i 's/moon/mars/g' "$SG_TMP/pki-b/swanctl.conf"
SW --load-all --file "$SG_TMP/pki-b/swanctl.conf" >/dev/null 2>&1 || fail "charon: reload for mars"
splits=$(grep -c 'splitting IKE message' "$SWAN_DIR_b/charon.log")
SW --initiate --child net >"$SG_TMP/certinit2.out" 2>&1 || fail "charon initiates with certificates: $(cat "$SG_TMP/certinit2.out")"
wait_for 5 ping_ok || fail "no ping when charon initiated with certificates"
grep -q 'event=ike_up' "$SG_TMP/iked.log" || fail "no ike_up in our log"
assert_eq "$(grep -c 'splitting IKE message' "$SWAN_DIR_b/charon.log")" "$splits" "charon's fragmented messages with fragmentation = no on ours"
grep -q "authentication of 'C=CH, O=SecureGuard Test, CN=mars.example' with RSA_EMSA_PSS_SHA2_256[_A-Z0-9]* successful" "$SWAN_DIR_b/charon.log" ||
	fail "charon did not verify our RSASSA-PSS signature: $(grep 'authentication of' "$SWAN_DIR_b/charon.log" | tail -3)"

log "7. DPD notices a killed charon"
for p in $(ip netns pids "$B"); do
	case $(cat "/proc/$p/comm" 2>/dev/null) in charon) kill -KILL "$p" ;; esac
done
wait_for 30 no_sas OW || fail "DPD did not clear the SA of the killed peer"
grep -q 'event=dpd_dead' "$SG_TMP/iked.log" || fail "no dpd_dead event in our log"
kill -TERM "$IPID"
wait "$IPID" || fail "secureguard-iked did not exit cleanly"
grep -q 'Sanitizer\|runtime error' "$SG_TMP/iked.log" && fail "sanitizer report in our log"
trap - ERR
log "PASS"
