# shellcheck shell=bash
# A license for the benchmarks that create more clients than the free edition's 250 (docs/SERVER.md,
# "Licenses"): SG_BENCH_LICENSE=FILE (a real one), else one signed here with the test key, which
# only a test build accepts (cmake -DSG_LICENSE_TEST_KEY=ON: `make bench` builds build-bench/ so,
# the release configuration otherwise). bench_license DIR sets BENCH_LICENSE_ARGS.
bench_license() {
	BENCH_LICENSE_ARGS=()
	if [ -n "${SG_BENCH_LICENSE:-}" ]; then
		BENCH_LICENSE_ARGS=(--license "$SG_BENCH_LICENSE")
		return 0
	fi
	if ! "$SG" license --help 2>/dev/null | grep -q 'test build'; then
		echo "bench: $SG is a release build: it allows the free edition's 250 clients; give" \
			"SG_BENCH_LICENSE=FILE, or SG_BIN of a build with -DSG_LICENSE_TEST_KEY=ON" \
			"(make bench builds build-bench/)" >&2
		return 1
	fi
	"$SG" license sign --key "$SRC/tests/license/test-vendor.key" --id bench \
		--customer "SecureGuard benchmarks" --seats 1000000 --not-before -1 --expiry +30 \
		--out "$1/bench.lic" || return 1
	BENCH_LICENSE_ARGS=(--license "$1/bench.lic")
}
