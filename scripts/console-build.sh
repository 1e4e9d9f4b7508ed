#!/bin/sh
# Builds the admin console (web/) into OUT_DIR: npm ci when the lockfile changed (node_modules is
# kept between builds, as tests/contract's is), the TypeScript types of docs/openapi.json
# (openapi-typescript), a type check (svelte-check), the Vite bundle, then a .gz beside each
# text file for clients that take gzip. Called by CMake (target console); see docs/CONSOLE.md.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: console-build.sh OUT_DIR}
web=$top/web
cd "$web"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "console: npm ci in web/"
	npm ci --no-audit --no-fund --loglevel=error
fi
node node_modules/openapi-typescript/bin/cli.js "$top/docs/openapi.json" -o src/lib/openapi.d.ts >/dev/null
node node_modules/svelte-check/bin/svelte-check --tsconfig ./tsconfig.json --fail-on-warnings --output machine >/tmp/sg-console-check.$$ 2>&1 ||
	{ grep -E 'ERROR|WARNING' /tmp/sg-console-check.$$ >&2; rm -f /tmp/sg-console-check.$$; echo "console: type check failed" >&2; exit 1; }
rm -f /tmp/sg-console-check.$$
SG_CONSOLE_OUT=$out node node_modules/vite/bin/vite.js build --logLevel warn
# Precompressed copies: the server sends FILE.gz to clients that accept gzip (RFC 9110 12.5.3).
node -e '
const fs = require("fs"), path = require("path"), zlib = require("zlib");
const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);
for (const f of walk(process.argv[1])) {
	if (!/\.(html|js|css|svg|json|txt|webmanifest)$/.test(f)) continue;
	fs.writeFileSync(f + ".gz", zlib.gzipSync(fs.readFileSync(f), { level: 9 }));
}' "$out"
touch "$out/.stamp"
