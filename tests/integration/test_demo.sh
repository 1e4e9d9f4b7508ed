#!/bin/bash
# `make demo`, the README's main command, run by `make check` too so that it cannot break
# unnoticed: scripts/demo.sh with this build's binaries (it exits non-zero on any failed step).
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, TUN)"; exit 77; }
src=${SG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$src/scripts/demo.sh"
