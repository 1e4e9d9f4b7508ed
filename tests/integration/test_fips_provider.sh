#!/bin/bash
# FIPS mode on OpenSSL's real FIPS provider (issue 19; docs/FIPS.md). scripts/fips-provider.sh
# builds the provider once from Debian's openssl source into a cache and gives the openssl.cnf
# that loads it (fips + base + default). Checks:
#  - `secureguard version` under that config: FIPS provider active, every FIPS-suite algorithm
#    fetched from the "fips" provider, every classic one from "default", the provider's own
#    self-tests passing (OSSL_PROVIDER_self_test);
#  - secureguardd --fips-strict refuses to start without the provider and starts with it;
#  - test_fips.sh again with the provider active: FIPS handshakes and data between two
#    secureguardd beside a wireguard-go classic peer, each daemon logging its suites' providers.
# (The fips suite's known-answer tests run on the provider as unit.crypto_fips.provider.)
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
sg_init fv
[ "$SG_IMPL" = secureguardd ] || skip "FIPS mode exists only in secureguardd"
SRC=${SG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
CLI=$SG_BIN/secureguard
CNF=$("$SRC/scripts/fips-provider.sh") || fail "the FIPS provider could not be built or found"
log "provider configuration: $CNF"

log "=== a provider query: where each suite's algorithms come from ==="
OPENSSL_CONF=$CNF "$CLI" version >"$SG_TMP/version.txt" || fail "secureguard version failed"
cat "$SG_TMP/version.txt"
grep -q '^FIPS provider: active$' "$SG_TMP/version.txt" || fail "FIPS provider not active"
grep -q 'fips_suite=fips classic_suite=default ' "$SG_TMP/version.txt" ||
	fail "the suites do not come from fips and default"
grep -q 'fips_provider="OpenSSL FIPS Provider' "$SG_TMP/version.txt" || fail "provider not named"
grep -q 'fips_self_test=passed' "$SG_TMP/version.txt" || fail "the provider's self-tests did not pass"
# And without the configuration: the default provider for both (the control).
env -u OPENSSL_CONF "$CLI" version | grep -q 'fips_suite=default ' ||
	fail "without OPENSSL_CONF the FIPS suite does not come from the default provider"

log "=== --fips-strict: refused without the provider, started with it ==="
I=${PFX}s
env -u OPENSSL_CONF "$SG_BIN/secureguardd" -f --fips-strict "$I" >"$SG_TMP/strict0.log" 2>&1 &&
	fail "secureguardd --fips-strict started without a FIPS provider"
grep -q 'event=fips_provider_missing' "$SG_TMP/strict0.log" ||
	fail "no reason given: $(cat "$SG_TMP/strict0.log")"
OPENSSL_CONF=$CNF "$SG_BIN/secureguardd" -f --fips-strict "$I" >"$SG_TMP/strict1.log" 2>&1 &
pid=$!
wait_for 10 test -S "$SG_RUN_DIR/$I.sock" || fail "secureguardd --fips-strict did not start: $(cat "$SG_TMP/strict1.log")"
grep -q 'event=crypto_providers .*fips_suite=fips classic_suite=default ' "$SG_TMP/strict1.log" ||
	fail "the daemon does not log its suites' providers: $(cat "$SG_TMP/strict1.log")"
kill -TERM "$pid"
wait "$pid" || true

log "=== FIPS mode between daemons on the provider (test_fips.sh) ==="
OPENSSL_CONF=$CNF SG_EXPECT_FIPS_PROVIDER=1 "$(dirname "$0")/test_fips.sh" || fail "test_fips.sh on the FIPS provider"
finish
