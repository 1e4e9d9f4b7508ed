# Thin wrapper over CMake (see README.md).
#   make        build build/bin/secureguard and build/bin/secureguardd
#   make check  install missing Debian packages, build with -Werror, run every test, then the
#               data plane's unit and fuzz-seed tests cross-built for aarch64 under qemu-user
#               (check-arm), then the unit, fuzz-seed and protocol tests again under ASan+UBSan
#               (tests/CMakeLists.txt)
#   make fuzz   build the libFuzzer targets with clang (build-fuzz/bin/fuzz_*)
#   make demo   the main job: secureguardd and wireguard-go talking in two namespaces, then the
#               management server on SQLite configuring a tunnel
#   make bench  every benchmark in bench/ (root; minutes)
#   make install  binaries and the systemd units under PREFIX (default /usr/local)
#   make deb    build-deb/secureguard_VERSION_ARCH.deb (scripts/deb.sh; docs/OPERATIONS.md)
#   make openapi  rewrite docs/openapi.json from the server's API description
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

.PHONY: all deps check check-normal check-arm check-asan fuzz fuzz-run demo bench install deb format clean openapi

all:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS)

deps:
	@./scripts/deps.sh

check: deps check-normal check-arm check-asan

check-normal:
	cmake -S . -B build-check -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSG_WERROR=ON -DSG_LICENSE_TEST_KEY=ON >/dev/null
	cmake --build build-check -j$(JOBS)
	cd build-check && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# The data plane (SG_CORE_ONLY: crypto, WireGuard, IKE/ESP, config, net, engine) built with
# Debian's aarch64 cross compiler against the arm64 packages, its unit tests and fuzz seeds run
# under qemu-aarch64 (cmake/aarch64.cmake; docs/DATAPATH.md, "ARM").
check-arm:
	cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSG_WERROR=ON -DSG_CORE_ONLY=ON >/dev/null
	cmake --build build-arm -j$(JOBS)
	cd build-arm && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

check-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSG_WERROR=ON -DSG_SANITIZE=ON -DSG_LICENSE_TEST_KEY=ON >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS) -L '^(unit|fuzz|protocol)$$' $(CTEST_ARGS)

fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSG_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j$(JOBS)

# Run every fuzz target for FUZZ_SECONDS each, starting from its seed corpus.
FUZZ_SECONDS ?= 60
fuzz-run: fuzz
	./scripts/fuzz-run.sh build-fuzz/bin $(FUZZ_SECONDS)

demo: deps all
	./scripts/demo.sh

# Every benchmark in bench/, each printing its ratio against what a user would run instead,
# measured in the same run (root; minutes). BENCH_SECONDS per throughput run.
BENCH_SECONDS ?= 10
# The server benchmarks create 10,000 clients, more than the free edition's 250: they run on
# build-bench/, the release configuration plus the test license key (bench/license.sh).
bench: deps all
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSG_LICENSE_TEST_KEY=ON >/dev/null
	@cmake --build build-bench -j$(JOBS)
	./bench/throughput.sh $(BENCH_SECONDS)
	./bench/datapath.sh
	./bench/tls.sh $(BENCH_SECONDS)
	./bench/handshake.sh $(BENCH_SECONDS)
	./bench/handshake_flood.sh
	./bench/memory.sh
	./bench/control_plane.sh
	SG_BIN=build-bench/bin ./bench/server_api.sh
	./bench/server_scale.sh
	./bench/ipsec.sh
	./bench/embed.sh $(BENCH_SECONDS)
	./bench/agents.sh
	SG_BIN=build-bench/bin ./bench/console.sh

# Installs the binaries (secureguard, secureguardd, secureguard-iked) and the systemd units
# (secureguard@.service, secureguard-gateway.service, secureguard-iked.service) under PREFIX
# (default /usr/local), and libsecureguard (sg.h, the shared and static library,
# secureguard.pc); DESTDIR stages the whole tree elsewhere.
PREFIX ?= /usr/local
install:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build build -j$(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install build

# The Debian package, with dpkg-deb from a release build configured for /usr (docs/OPERATIONS.md,
# "Debian package"); make check builds and installs one from its own build (tests/dist/deb_test.sh).
deb: deps
	cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DSG_WERROR=ON >/dev/null
	cmake --build build-deb -j$(JOBS)
	./scripts/deb.sh build-deb build-deb

# docs/openapi.json from the server's API description (src/server/api_spec.c); make check
# fails while the two differ.
openapi: all
	./build/bin/secureguard openapi > docs/openapi.json

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-check build-arm build-asan build-fuzz build-deb build-bench
