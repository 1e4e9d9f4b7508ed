// The console's budget in Chromium (bench/console.sh runs it): first load on loopback from a
// cold cache (navigation timing), the compressed JavaScript it fetched, login to a rendered
// dashboard, the clients screen and a search with CLIENTS clients, and the main thread's longest
// task meanwhile. Prints one line per figure; medians of RUNS runs.
import { chromium } from 'playwright-core';

const URL0 = process.env.SG_URL;
const who = { email: process.env.SG_EMAIL, password: process.env.SG_PASSWORD };
const RUNS = Number(process.env.RUNS || 5);
const LAST = `c${String(Number(process.env.CLIENTS || 10000) - 1).padStart(5, '0')}`; // the newest client
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// Every list and screen of the page has loaded (no "Loading…" left; there may be several).
const settled = (page) => page.waitForFunction(() => !document.querySelector('[aria-busy=true]'));

const browser = await chromium.launch({
	executablePath: process.env.SG_CHROMIUM || '/usr/bin/chromium',
	args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
});
const m = { load: [], dcl: [], js: [], jsRaw: [], login: [], clients: [], search: [], page2: [], longTask: [] };
for (let i = 0; i < RUNS; i++) {
	const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } }); // cold cache
	const page = await ctx.newPage();
	const cdp = await ctx.newCDPSession(page);
	await cdp.send('Network.enable');
	let jsWire = 0;
	const jsIds = new Set();
	cdp.on('Network.responseReceived', (e) => {
		if (e.type === 'Script') jsIds.add(e.requestId);
	});
	cdp.on('Network.loadingFinished', (e) => {
		if (jsIds.has(e.requestId)) jsWire += e.encodedDataLength;
	});
	await page.addInitScript(() => {
		window.__long = 0;
		new PerformanceObserver((l) => {
			for (const e of l.getEntries()) window.__long = Math.max(window.__long, e.duration);
		}).observe({ type: 'longtask', buffered: true });
	});
	await page.goto(URL0 + '/', { waitUntil: 'load' });
	await page.locator('#email').waitFor();
	const nav = await page.evaluate(() => {
		const n = performance.getEntriesByType('navigation')[0];
		const js = performance.getEntriesByType('resource').filter((r) => r.initiatorType === 'script' || r.name.endsWith('.js'));
		return { load: n.loadEventEnd - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime, raw: js.reduce((s, r) => s + r.decodedBodySize, 0) };
	});
	m.load.push(nav.load);
	m.dcl.push(nav.dcl);
	m.jsRaw.push(nav.raw);
	let t = Date.now();
	await page.locator('#email').fill(who.email);
	await page.locator('#password').fill(who.password);
	await page.locator('#password').press('Enter');
	await page.getByTestId('clients-online').waitFor();
	await settled(page);
	m.login.push(Date.now() - t);
	m.js.push(jsWire);
	t = Date.now();
	await page.getByRole('link', { name: 'Clients', exact: true }).click();
	await page.locator('[data-testid=clients] tbody tr').nth(49).waitFor();
	m.clients.push(Date.now() - t);
	t = Date.now();
	await page.getByRole('button', { name: 'Next' }).click();
	await page.getByText('51–100 of').waitFor();
	m.page2.push(Date.now() - t);
	t = Date.now();
	await page.getByLabel('Search clients').fill(LAST);
	await page.locator(`tr[data-client=${LAST}]`).waitFor();
	await page.waitForFunction(() => document.querySelectorAll('[data-testid=clients] tbody tr').length === 1);
	m.search.push(Date.now() - t - 250); // less the input's 250 ms debounce
	m.longTask.push(await page.evaluate(() => window.__long));
	await ctx.close();
}
await browser.close();
const f = (v) => v.toFixed(0);
console.log(`first load (navigation start to load event, cold cache): ${f(median(m.load))} ms (DOMContentLoaded ${f(median(m.dcl))} ms)`);
console.log(`JavaScript on the wire (gzip): ${(median(m.js) / 1024).toFixed(1)} KiB (${(median(m.jsRaw) / 1024).toFixed(1)} KiB uncompressed)`);
console.log(`login to a rendered dashboard (password hashing included): ${f(median(m.login))} ms`);
console.log(`clients screen, first page rendered: ${f(median(m.clients))} ms`);
console.log(`next page: ${f(median(m.page2))} ms`);
console.log(`search for ${LAST}, the newest client (server side), after the debounce: ${f(median(m.search))} ms`);
console.log(`longest main-thread task over 50 ms (Long Tasks API) during all of it: ${median(m.longTask) ? f(median(m.longTask)) + ' ms' : 'none'}`);
console.log(`RESULT load_ms=${f(median(m.load))} js_gzip_bytes=${median(m.js)} clients_ms=${f(median(m.clients))} search_ms=${f(median(m.search))} longtask_ms=${f(median(m.longTask))}`);
