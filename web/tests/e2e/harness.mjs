// What the browser tests share (web/tests/e2e/*.mjs and tests/browser/*.mjs): the environment,
// the server's API over fetch, Debian's Chromium launched as INTEROP.md says (root, no GPU,
// nothing from the network but what the test asks for), the watch for Content-Security-Policy
// violations and script errors, and numbered steps that stop the run at the first failure.
// Node's built-ins only: each caller passes its own playwright-core's `chromium`, since
// tests/browser has a node_modules of its own.
import { createHmac } from 'node:crypto';

export const env = (k) => {
	const v = process.env[k];
	if (!v) throw new Error(`${k} is not set`);
	return v;
};

export function assert(cond, msg) {
	if (!cond) throw new Error(msg);
}

// api(method, path, body, bearer) against base: { status, text, json() }.
export function apiAt(base) {
	return async function api(method, p, body, token) {
		const res = await fetch(base + p, {
			method,
			headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
			body: body ? JSON.stringify(body) : undefined,
		});
		const text = await res.text();
		return { status: res.status, text, json: () => JSON.parse(text) };
	};
}

export function launch(chromium, extraArgs = []) {
	return chromium.launch({
		executablePath: process.env.SG_CHROMIUM || '/usr/bin/chromium',
		args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', ...extraArgs],
	});
}

// Collects into problems every CSP violation and script error of page (who: whose page).
export function watch(page, problems, who = '') {
	const tag = who ? `${who}: ` : '';
	page.on('console', (m) => {
		if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`${tag}${m.text()}`);
	});
	page.on('pageerror', (e) => problems.push(`${tag}script error: ${e.message}`));
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret at time step `step` (node's
// HMAC-SHA-1, not the server's code).
export function totp(secret, step) {
	const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
	let bits = '';
	for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += A.indexOf(ch).toString(2).padStart(5, '0');
	const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
	const msg = Buffer.alloc(8);
	msg.writeBigUInt64BE(BigInt(step));
	const h = createHmac('sha1', key).update(msg).digest();
	const o = h[h.length - 1] & 15;
	return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// Numbered steps: `ok N - name (ms)`; the first failure prints `not ok`, runs onFail (a
// screenshot, the page's text), lists the problems seen, closes the browser and exits 1.
// finish() checks that no problem was seen, closes the browser and prints the count.
export function stepper(browser, problems, onFail = async () => {}) {
	let passed = 0;
	async function step(name, fn) {
		const t0 = Date.now();
		try {
			await fn();
			passed++;
			console.log(`ok ${passed} - ${name} (${Date.now() - t0} ms)`);
		} catch (e) {
			console.log(`not ok - ${name}: ${e.stack || e}`);
			await onFail(e).catch(() => {});
			for (const p of problems) console.log(`  page problem: ${p}`);
			console.log(`${passed} passed, 1 failed`);
			await browser.close();
			process.exit(1);
		}
	}
	async function finish() {
		await step('no Content-Security-Policy violation or script error', async () => {
			assert(problems.length === 0, problems.join('\n'));
		});
		await browser.close();
		console.log(`${passed} passed, 0 failed`);
	}
	return { step, finish };
}
