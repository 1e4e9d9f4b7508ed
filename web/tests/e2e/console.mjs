// The admin console in a real browser (Debian's Chromium driven by playwright-core) against a
// real server: tests/integration/test_console.sh starts the server, an agent on a hub and the
// tunnel, and runs this script in the server's namespace. Each step stops the run at its first
// failure with a screenshot; the last line says how many steps passed.
//
// Environment: SG_URL, SG_EMAIL/SG_PASSWORD (super_admin), SG_VIEWER_EMAIL/SG_VIEWER_PASSWORD,
// SG_NET (the network with the hub), SG_OUT (screenshots and downloads), SG_SIGNAL (written with
// the laptop's config path once downloaded: the shell brings that tunnel up), SG_CHROMIUM.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { apiAt, assert, env, launch, stepper, totp, watch } from './harness.mjs';

const URL0 = env('SG_URL');
const OUT = env('SG_OUT');
const ADMIN = { email: env('SG_EMAIL'), password: env('SG_PASSWORD') };
const VIEWER = { email: env('SG_VIEWER_EMAIL'), password: env('SG_VIEWER_PASSWORD') };
const NET = env('SG_NET');
const SIGNAL = env('SG_SIGNAL');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
fs.mkdirSync(path.join(OUT, 'screenshots'), { recursive: true });

const problems = []; // CSP violations and script errors seen on any page
const api = apiAt(URL0);
async function tokenOf(who) {
	const r = await api('POST', '/api/auth/login', who);
	assert(r.status === 200, `API login of ${who.email}: ${r.status} ${r.text}`);
	return r.json().access_token;
}

function zbar(file) {
	// --raw: the data only; zbarimg ends it with a newline of its own.
	return execFileSync('zbarimg', ['--raw', '-q', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/\n$/, '');
}

// Every list and screen of the page has loaded (no "Loading…" left; there may be several).
const settled = (page) => page.waitForFunction(() => !document.querySelector('[aria-busy=true]'));

const browser = await launch(chromium);

async function newPage(viewport = DESKTOP, who = 'admin') {
	const ctx = await browser.newContext({ viewport, acceptDownloads: true });
	const page = await ctx.newPage();
	page.setDefaultTimeout(15000);
	watch(page, problems, who);
	return { ctx, page };
}
let current = null; // the page to photograph when a step fails
const { step, finish } = stepper(browser, problems, async () => {
	if (current) await current.screenshot({ path: path.join(OUT, 'screenshots', 'FAILED.png'), fullPage: true });
});
async function shot(page, name) {
	await page.waitForTimeout(150); // the last render (fonts, notices)
	await page.screenshot({ path: path.join(OUT, 'screenshots', `${name}.png`), fullPage: true });
}
async function nav(page, label) {
	const menu = page.getByRole('button', { name: 'Menu' });
	if (await menu.isVisible()) await menu.click();
	await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
}
async function login(page, who) {
	await page.goto(URL0 + '/');
	await page.locator('#email').fill(who.email);
	await page.locator('#password').fill(who.password);
	await page.locator('#password').press('Enter'); // the keyboard, not the mouse
	await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
}

const adminToken = await tokenOf(ADMIN);
const { page: admin } = await newPage();
current = admin;

await step('the login page is served with a strict CSP and no third-party origin', async () => {
	const res = await admin.goto(URL0 + '/');
	const csp = res.headers()['content-security-policy'] || '';
	assert(/script-src 'self'/.test(csp) && /default-src 'none'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp), `CSP: ${csp}`);
	await admin.locator('#email').waitFor();
	const foreign = await admin.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => !n.startsWith(location.origin)));
	assert(foreign.length === 0, `resources from elsewhere: ${foreign}`);
	await shot(admin, 'desktop-login');
});

await step('log in with the keyboard; no token where a script can read it', async () => {
	await login(admin, ADMIN);
	const store = await admin.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
	assert(!/sgr_|eyJ/.test(store), `a token is readable by scripts: ${store}`);
	const cookies = await admin.context().cookies();
	const rc = cookies.find((c) => c.name === 'sg_refresh');
	assert(rc && rc.httpOnly && rc.sameSite === 'Strict' && rc.path === '/api/auth', `refresh cookie: ${JSON.stringify(rc)}`);
	// A reload keeps the session (a new access token from the cookie).
	await admin.reload();
	await admin.getByRole('heading', { name: 'Dashboard' }).waitFor();
	await admin.getByTestId('live-state').filter({ hasText: 'live' }).waitFor();
});

let labId = '';
await step('create a network, its errors shown on the field', async () => {
	await nav(admin, 'Networks');
	await admin.getByRole('button', { name: 'New network' }).click();
	await admin.locator('#f-name').fill('lab');
	await admin.locator('#f-subnet4').fill('10.77.0.1/24'); // host bits set: refused
	await admin.getByRole('button', { name: 'Create', exact: true }).click();
	await admin.locator('[data-field=subnet4] .fielderr').waitFor();
	await admin.locator('#f-subnet4').fill('10.77.0.0/24');
	await admin.locator('#f-dns_servers').fill('10.77.0.1');
	await admin.getByRole('button', { name: 'Create', exact: true }).click();
	await admin.locator('tr[data-network=lab]').waitFor();
	const list = (await api('GET', '/api/networks?limit=500', null, adminToken)).json();
	labId = list.items.find((n) => n.name === 'lab').id;
	assert(labId, 'the network is not in the API');
});

let laptopId = '';
const laptopConf = path.join(OUT, 'laptop.conf');
await step('create a client in the hub network and download its config', async () => {
	await nav(admin, 'Clients');
	await admin.getByRole('button', { name: 'New client' }).click();
	await admin.locator('#f-network_id').selectOption(NET);
	await admin.locator('#f-name').fill('laptop');
	await admin.locator('#f-persistent_keepalive').fill('1');
	await admin.getByRole('button', { name: 'Create', exact: true }).click();
	await admin.locator('[data-notice=ok]').filter({ hasText: 'Client laptop created' }).waitFor();
	await admin.locator('tr[data-client=laptop]').getByRole('button', { name: 'laptop' }).click();
	const [dl] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('button', { name: 'Download config' }).click()]);
	await dl.saveAs(laptopConf);
	const page = (await api('GET', `/api/clients?name=laptop&network_id=${NET}`, null, adminToken)).json();
	laptopId = page.items[0].id;
	const fromApi = (await api('GET', `/api/clients/${laptopId}/config`, null, adminToken)).text;
	assert(fs.readFileSync(laptopConf, 'utf8') === fromApi, 'the downloaded config differs from the API');
	fs.chmodSync(laptopConf, 0o600);
});

await step("its QR code, read back with zbar, is the API's config", async () => {
	await admin.getByRole('button', { name: 'Show QR code' }).click();
	const img = admin.getByTestId('client-qr');
	await img.waitFor();
	await admin.waitForFunction(() => {
		const i = document.querySelector('[data-testid=client-qr]');
		return i && i.complete && i.naturalWidth > 0;
	});
	const f = path.join(OUT, 'laptop-qr.png');
	await img.screenshot({ path: f });
	const fromApi = (await api('GET', `/api/clients/${laptopId}/config`, null, adminToken)).text;
	assert(zbar(f) === fromApi, 'the QR code does not hold the config');
	await shot(admin, 'desktop-client-qr');
	await admin.getByRole('button', { name: 'Close' }).click();
});

await step('a tunnel goes online on the dashboard when a real secureguardd connects', async () => {
	await nav(admin, 'Dashboard');
	await admin.getByTestId('live-state').filter({ hasText: 'live' }).waitFor();
	const before = Number(await admin.getByTestId('clients-online').textContent());
	fs.writeFileSync(SIGNAL, laptopConf + '\n'); // the shell brings the tunnel up now
	await admin.waitForFunction((b) => Number(document.querySelector('[data-testid=clients-online]')?.textContent) > b, before, { timeout: 60000 });
	await admin.locator('[data-testid=dash-tunnels] .badge-ok').first().waitFor({ timeout: 30000 });
	await shot(admin, 'desktop-dashboard');
	await nav(admin, 'Clients');
	await admin.locator('tr[data-client=laptop] .badge-ok').filter({ hasText: 'online' }).waitFor();
	await shot(admin, 'desktop-clients');
});

await step('search and filter the clients (server side)', async () => {
	await admin.getByLabel('Search clients').fill('LAP');
	await admin.waitForURL(/q=LAP/);
	await admin.locator('tr[data-client=laptop]').waitFor();
	assert((await admin.locator('tbody tr').count()) === 1, 'the search shows other clients');
	await admin.getByLabel('Status').selectOption('offline');
	await admin.getByText('No clients match these filters.').waitFor();
	await admin.getByLabel('Search clients').fill('');
	await admin.getByLabel('Status').selectOption('');
	await admin.locator('tr[data-client=hub]').waitFor();
});

let auditReloadMarker = 0;
await step('an audit event appears live, without a reload; the chain is verified', async () => {
	await nav(admin, 'Audit log');
	await admin.getByTestId('live-state').filter({ hasText: 'live' }).waitFor();
	await admin.getByTestId('chain-state').filter({ hasText: 'verified' }).waitFor();
	auditReloadMarker = await admin.evaluate(() => (window.__mark = Math.random()));
	const r = await api('POST', '/api/networks', { name: 'live-probe', subnet4: '10.78.0.0/24' }, adminToken);
	assert(r.status === 201, `create: ${r.status} ${r.text}`);
	await admin.locator('tr[data-event="network.created"]').filter({ hasText: 'live-probe' }).waitFor({ timeout: 15000 });
	assert((await admin.evaluate(() => window.__mark)) === auditReloadMarker, 'the page reloaded');
});

const exports = {};
await step('filter the audit log and export it (CSV and JSON)', async () => {
	await admin.locator('#a-type').fill('network.created');
	await admin.getByRole('button', { name: 'Apply' }).click();
	await admin.waitForFunction(() => {
		const rows = [...document.querySelectorAll('tr[data-event]')];
		return rows.length >= 2 && rows.every((r) => r.getAttribute('data-event') === 'network.created');
	});
	await shot(admin, 'desktop-audit');
	for (const fmt of ['CSV', 'JSON']) {
		const [dl] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('button', { name: `Export ${fmt}` }).click()]);
		const f = path.join(OUT, `audit.${fmt.toLowerCase()}`);
		await dl.saveAs(f);
		exports[fmt] = f;
		assert(fs.statSync(f).size > 100, `the ${fmt} export is empty`);
	}
	assert(fs.readFileSync(exports.CSV, 'utf8').split('\n')[0].includes('event_type'), 'the CSV has no header');
	assert(Array.isArray(JSON.parse(fs.readFileSync(exports.JSON, 'utf8'))), 'the JSON export is not an array');
});

let guestLink = '';
let guestLink2 = '';
async function createGrant(name) {
	await admin.getByRole('button', { name: 'New temporary access' }).click();
	await admin.locator('#f-network_id').selectOption(NET);
	await admin.locator('#f-name').fill(name);
	await admin.locator('#f-max_uses').fill('1');
	await admin.getByRole('button', { name: 'Create', exact: true }).click();
	const link = await admin.getByTestId('guest-link').inputValue();
	return link;
}
await step('create temporary access: its link and QR code', async () => {
	await nav(admin, 'Temporary access');
	guestLink = await createGrant('visitor');
	assert(/\/guest#sgt_/.test(guestLink), `link: ${guestLink}`);
	const f = path.join(OUT, 'guest-link-qr.png');
	await admin.getByTestId('guest-qr').screenshot({ path: f });
	assert(zbar(f) === guestLink, 'the QR code does not hold the link');
	await shot(admin, 'desktop-temp-access-created');
	await admin.getByRole('button', { name: 'Close' }).click();
	guestLink2 = await createGrant('revoked-visitor');
	await admin.getByRole('button', { name: 'Close' }).click();
});

await step('revoke temporary access', async () => {
	await admin.locator('tr[data-grant=revoked-visitor]').getByRole('button', { name: 'Revoke' }).click();
	await admin.locator('[data-confirm]').click();
	await admin.locator('tr[data-grant=revoked-visitor] [data-testid=grant-state]').filter({ hasText: 'revoked' }).waitFor();
});

await step('the guest page redeems the link without an admin login: config and QR', async () => {
	for (const [vp, tag] of [[PHONE, 'phone'], [DESKTOP, 'desktop']]) {
		if (tag === 'desktop') {
			// The link is used up by the phone: a revoked one shows the guest why not.
			const { ctx, page } = await newPage(vp, 'guest');
			current = page;
			await page.goto(guestLink2);
			await page.getByTestId('guest-error').filter({ hasText: 'expired, was revoked or has been used up' }).waitFor();
			await shot(page, `${tag}-guest-refused`);
			await ctx.close();
			continue;
		}
		const { ctx, page } = await newPage(vp, 'guest');
		current = page;
		await page.goto(guestLink);
		assert(!page.url().includes('sgt_'), 'the token stays in the address bar');
		await page.getByRole('button', { name: 'Get my configuration' }).click();
		const pre = page.getByTestId('guest-config');
		await pre.waitFor({ state: 'attached' });
		const conf = await pre.textContent();
		assert(/\[Interface\]/.test(conf) && /\[Peer\]/.test(conf), 'no config on the guest page');
		const f = path.join(OUT, 'guest-config-qr.png');
		await page.getByTestId('guest-config-qr').screenshot({ path: f });
		assert(zbar(f) === conf, "the guest QR code does not hold the guest's config");
		const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download configuration' }).click()]);
		const saved = path.join(OUT, 'guest.conf');
		await dl.saveAs(saved);
		assert(fs.readFileSync(saved, 'utf8') === conf, 'the downloaded guest config differs');
		await shot(page, `${tag}-guest`);
		await ctx.close();
	}
	current = admin;
	await admin.reload();
	await admin.locator('tr[data-grant=visitor] [data-testid=grant-uses]').filter({ hasText: '1 / 1' }).waitFor();
	await admin.locator('tr[data-grant=visitor] [data-testid=grant-state]').filter({ hasText: 'used up' }).waitFor();
});

await step("the policy editor shows the server's validation errors on the fields they concern", async () => {
	await nav(admin, 'Policies');
	await admin.getByRole('button', { name: 'New site-to-site' }).click();
	const form = admin.getByTestId('policy-form');
	const esp = form.locator('[data-field="tunnels[0].esp_proposals"]');
	await esp.locator('input').fill('bogus-cipher');
	await form.locator('[data-field="name"] input').fill('form-policy');
	// A field the template lacks, added in the form: a lifetime out of range.
	await form.locator('[data-add="tunnels[0]"] select').selectOption('rekey_time');
	await form.locator('[data-add="tunnels[0]"]').getByRole('button', { name: 'Add' }).click();
	await form.locator('[data-field="tunnels[0].rekey_time"] input').fill('10');
	await admin.getByRole('button', { name: 'Save' }).click();
	await form.locator('[data-field="tunnels[0].rekey_time"] .fielderr').waitFor();
	// The problem shows under the field it names, the field marked invalid, and in the list.
	await esp.locator('.fielderr').filter({ hasText: 'unknown algorithm' }).waitFor();
	assert((await esp.locator('input').getAttribute('aria-invalid')) === 'true', 'the field is not marked invalid');
	await admin.getByTestId('policy-problems').filter({ hasText: 'tunnels[0].esp_proposals' }).waitFor();
	await shot(admin, 'desktop-policy-errors');
	// The JSON view keeps the edits; fixed there, the policy saves.
	await admin.getByRole('button', { name: 'JSON' }).click();
	const ta = admin.locator('#policy-json');
	const text = await ta.inputValue();
	assert(text.includes('"form-policy"') && text.includes('bogus-cipher') && /"rekey_time": 10\b/.test(text), 'the JSON view lost the form\'s edits');
	await ta.fill(text.replace('bogus-cipher', 'aes256gcm16-ecp384').replace(/"rekey_time": 10\b/, '"rekey_time": 3600'));
	await admin.getByRole('button', { name: 'Form' }).click();
	await admin.getByRole('button', { name: 'Save' }).click();
	await admin.getByText('Policy form-policy saved').waitFor();
	await admin.locator('tr[data-policy=form-policy]').waitFor();
});

await step('gateways: a resource with auth, rate limit and a rule; targets with health checks; exposed services', async () => {
	await nav(admin, 'Gateways');
	await admin.locator('tr[data-gateway=edge]').waitFor();
	// The service seeded through the API, with its public URL and DNS record.
	await admin.locator('tr[data-service] td').filter({ hasText: 'wiki.apps.example.test' }).first().waitFor();
	await admin.getByRole('button', { name: 'New resource' }).click();
	const form = admin.getByTestId('resource-form');
	await form.locator('#f-name').fill('intranet');
	await form.locator('#f-domain').fill('intranet.example.test');
	await form.locator('#f-auth').selectOption('login');
	await form.locator('#f-src_rate').fill('10');
	await form.locator('#f-src_burst').fill('20');
	await form.getByRole('button', { name: 'Add a rule' }).click();
	await form.locator('#f-rule-path-0').fill('/admin/*');
	await form.locator('#f-rule-sources-0').fill('10.96.0.0/24');
	await form.locator('#f-rule-action-0').selectOption('deny');
	await form.getByRole('button', { name: 'Create resource' }).click();
	// Login through this server needs its --public-url, which this one has not: the server's
	// answer shows on the field. A bearer key instead.
	await form.locator('[data-field=auth] .fielderr').filter({ hasText: 'public-url' }).waitFor();
	await form.locator('#f-auth').selectOption('api_key');
	await form.locator('#f-api_keys').fill(createHash('sha384').update('console-key').digest('hex'));
	await form.getByRole('button', { name: 'Create resource' }).click();
	await admin.getByText('Resource intranet created').waitFor();
	// Targets: a wrong address is refused on its field, then one with an http health check.
	await admin.getByRole('button', { name: 'Add a target' }).click();
	const tf = admin.getByTestId('target-form');
	await tf.locator('#f-address').fill('intranet:80');
	await tf.getByRole('button', { name: 'Add target' }).click();
	await tf.locator('[data-field=address] .fielderr').waitFor();
	await tf.locator('#f-address').fill('10.96.0.9:8080');
	await tf.locator('#f-weight').fill('5');
	await tf.locator('#f-region').fill('eu');
	await tf.locator('#f-health_check').selectOption('http');
	await tf.locator('#f-hc_path').fill('/healthz');
	await tf.locator('#f-hc_interval_ms').fill('2000');
	await tf.getByRole('button', { name: 'Add target' }).click();
	const row = admin.locator('tr[data-target="10.96.0.9:8080"]');
	await row.filter({ hasText: 'GET /healthz, every 2 s' }).waitFor();
	await row.getByRole('button', { name: 'Edit' }).click();
	await tf.locator('#f-weight').fill('7');
	await tf.getByRole('button', { name: 'Save target' }).click();
	await admin.getByText('Target 10.96.0.9:8080 saved').waitFor();
	await admin.getByRole('button', { name: 'Add a target' }).click();
	await tf.locator('#f-address').fill('10.96.0.10:8080');
	await tf.locator('#f-health_check').selectOption('none');
	await tf.getByRole('button', { name: 'Add target' }).click();
	await admin.locator('tr[data-target="10.96.0.10:8080"]').waitFor();
	await shot(admin, 'desktop-resource-editor');
	// What the server stored is what the form said.
	const list = (await api('GET', '/api/v1/resources?limit=100', null, adminToken)).json();
	const res = list.items.find((r) => r.name === 'intranet');
	assert(res, 'no resource intranet in the API');
	const d = (await api('GET', `/api/v1/resources/${res.id}`, null, adminToken)).json();
	assert(d.domain === 'intranet.example.test' && d.auth === 'api_key' && d.api_keys[0] === createHash('sha384').update('console-key').digest('hex'), `domain/auth: ${JSON.stringify(d)}`);
	assert(d.rate_limit?.per_source?.rate === 10 && d.rate_limit.per_source.burst === 20, `rate limit: ${JSON.stringify(d.rate_limit)}`);
	assert(d.rules?.length === 1 && d.rules[0].path === '/admin/*' && d.rules[0].action === 'deny' && d.rules[0].sources[0] === '10.96.0.0/24', `rules: ${JSON.stringify(d.rules)}`);
	const t = d.targets.find((x) => x.address === '10.96.0.9:8080');
	assert(t && t.weight === 7 && t.region === 'eu' && t.health_check?.type === 'http' && t.health_check.path === '/healthz' && t.health_check.interval_ms === 2000, `target: ${JSON.stringify(d.targets)}`);
	// Delete a target (asked first), change the resource, see the list follow.
	await admin.locator('tr[data-target="10.96.0.10:8080"]').getByRole('button', { name: 'Delete' }).click();
	await admin.getByRole('button', { name: 'Delete target' }).click();
	await admin.getByText('Target 10.96.0.10:8080 deleted').waitFor();
	await admin.locator('tr[data-target="10.96.0.10:8080"]').waitFor({ state: 'detached' });
	await form.locator('#f-src_rate').fill('');
	await form.locator('#f-src_burst').fill('');
	await form.getByRole('button', { name: 'Save resource' }).click();
	await admin.getByText('Resource intranet saved').waitFor();
	await admin.locator('tr[data-resource=intranet]').filter({ hasText: '1 rule' }).waitFor();
	const d2 = (await api('GET', `/api/v1/resources/${res.id}`, null, adminToken)).json();
	assert(d2.rate_limit === null && d2.targets.length === 1, `after the change: ${JSON.stringify(d2)}`);
	// Sites: a prefix with host bits is refused on its field; made, changed, deleted.
	await admin.getByRole('button', { name: 'New site' }).click();
	const sf = admin.getByTestId('site-form');
	await sf.locator('#f-name').fill('lab-site');
	await sf.locator('#f-networks').fill('10.96.0.65/26');
	await sf.getByRole('button', { name: 'Create site' }).click();
	await sf.locator('[data-field=networks] .fielderr').waitFor();
	await sf.locator('#f-networks').fill('10.96.0.64/26');
	await sf.getByRole('button', { name: 'Create site' }).click();
	await admin.getByText('Site lab-site created').waitFor();
	await admin.locator('tr[data-site=lab-site]').getByRole('button', { name: 'Edit' }).click();
	await sf.locator('#f-description').fill('the lab rack');
	await sf.getByRole('button', { name: 'Save site' }).click();
	await admin.locator('tr[data-site=lab-site]').filter({ hasText: 'the lab rack' }).waitFor();
	await shot(admin, 'desktop-gateways');
	await admin.locator('tr[data-site=lab-site]').getByRole('button', { name: 'Delete' }).click();
	await admin.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
	await admin.getByText('Site lab-site deleted').waitFor();
	await admin.locator('tr[data-site=lab-site]').waitFor({ state: 'detached' });
});

await step('a viewer sees no write action, and the server refuses one anyway', async () => {
	const { ctx, page } = await newPage(DESKTOP, 'viewer');
	current = page;
	await login(page, VIEWER);
	await page.getByTestId('role').filter({ hasText: 'read-only' }).waitFor();
	const checks = [
		['Clients', 'New client'],
		['Networks', 'New network'],
		['Temporary access', 'New temporary access'],
		['Peers', 'Enrol a node'],
		['Gateways', 'New gateway'],
		['Gateways', 'New resource'],
		['Gateways', 'New site'],
		['Policies', 'New site-to-site'],
	];
	for (const [screen, button] of checks) {
		await nav(page, screen);
		await page.getByRole('heading', { name: screen === 'Temporary access' ? 'Temporary access' : screen }).waitFor();
		await settled(page);
		assert((await page.getByRole('button', { name: button }).count()) === 0, `${screen}: the viewer sees "${button}"`);
	}
	await nav(page, 'Clients');
	await page.locator('tr[data-client=laptop]').waitFor();
	assert((await page.getByRole('button', { name: 'Config' }).count()) === 0, 'the viewer sees config downloads');
	assert((await page.getByRole('button', { name: 'Edit' }).count()) === 0, 'the viewer sees edit buttons');
	await shot(page, 'desktop-viewer-clients');
	const vt = await tokenOf(VIEWER);
	const r = await api('POST', '/api/networks', { name: 'viewer-net', subnet4: '10.79.0.0/24' }, vt);
	assert(r.status === 403, `the server let a viewer create a network: ${r.status}`);
	await ctx.close();
	current = admin;
});

await step('two-factor login: set up in Settings, then a login asks for the code', async () => {
	const { ctx, page } = await newPage(DESKTOP, 'viewer');
	current = page;
	await login(page, VIEWER);
	await nav(page, 'Settings');
	await page.getByRole('button', { name: 'Set up or change' }).click();
	const secret = (await page.getByTestId('two-factor').locator('.mono').textContent()).trim();
	const s0 = Math.floor(Date.now() / 30000);
	await page.getByLabel('Code').fill(totp(secret, s0));
	await page.getByRole('button', { name: 'Turn on' }).click();
	await page.getByText('Recovery codes, each good once').waitFor();
	assert((await page.getByTestId('two-factor').locator('li').count()) === 10, 'not ten recovery codes');
	await shot(page, 'desktop-two-factor');
	await page.getByRole('button', { name: 'Log out' }).click();
	await page.locator('#email').fill(VIEWER.email);
	await page.locator('#password').fill(VIEWER.password);
	await page.locator('#password').press('Enter');
	await page.locator('#code').fill(totp(secret, s0 + 1)); // the next step's code: the last one is spent
	await page.locator('#code').press('Enter');
	await page.getByTestId('whoami').filter({ hasText: VIEWER.email }).waitFor(); // back where it was: Settings
	const rc = (await ctx.cookies()).find((c) => c.name === 'sg_refresh');
	assert(rc && rc.httpOnly, 'no refresh cookie after the second step');
	await ctx.close();
	current = admin;
});

// MFA-gated VPN sessions (docs/SERVER.md): the owner is a viewer made through the API with TOTP
// turned on there (codes computed here, as tests/server/vpn_api_test.py does).
const OWNER = { email: 'owner@example.com', password: `owner-${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 16)}` };
let owner = { id: '', secret: '', step: 0, codes: [] };
let ownedId = '';
await step('an MFA-gated network and a client owner, set in the editors; no temporary access on it', async () => {
	let r = await api('POST', '/api/users', { ...OWNER, role: 'viewer' }, adminToken);
	assert(r.status === 201, `the owner: ${r.status} ${r.text}`);
	owner.id = r.json().id;
	const ot = await tokenOf(OWNER);
	owner.secret = (await api('POST', '/api/auth/totp', {}, ot)).json().secret;
	owner.step = Math.floor(Date.now() / 30000);
	r = await api('POST', '/api/auth/totp/confirm', { code: totp(owner.secret, owner.step) }, ot);
	assert(r.status === 200, `the owner's TOTP: ${r.status} ${r.text}`);
	owner.codes = r.json().recovery_codes;
	// The network "lab" (no clients yet) turned mfa_required in its editor.
	await nav(admin, 'Networks');
	await admin.locator('tr[data-network=lab]').getByRole('button', { name: 'Edit' }).click();
	await admin.locator('#f-mfa_required').check();
	await admin.locator('#f-mfa_session_hours').fill('0');
	await admin.getByRole('button', { name: 'Save', exact: true }).click();
	await admin.locator('[data-field=mfa_session_hours] .fielderr').waitFor(); // 1–720
	await admin.locator('#f-mfa_session_hours').fill('4');
	await admin.getByRole('button', { name: 'Save', exact: true }).click();
	await admin.locator('tr[data-network=lab] [data-testid=network-mfa]').filter({ hasText: 'MFA, 4 h' }).waitFor();
	const lab = (await api('GET', `/api/networks/${labId}`, null, adminToken)).json();
	assert(lab.mfa_required === true && lab.mfa_session_hours === 4, `the network in the API: ${JSON.stringify(lab)}`);
	// A client of it whose owner is chosen among the users.
	await nav(admin, 'Clients');
	await admin.getByRole('button', { name: 'New client' }).click();
	await admin.locator('#f-network_id').selectOption(labId);
	await admin.locator('#f-name').fill('owned');
	await admin.locator('#f-owner_id').selectOption({ label: OWNER.email });
	await shot(admin, 'desktop-client-owner');
	await admin.getByRole('button', { name: 'Create', exact: true }).click();
	await admin.locator('[data-notice=ok]').filter({ hasText: 'Client owned created' }).waitFor();
	const c = (await api('GET', `/api/clients?name=owned&network_id=${labId}`, null, adminToken)).json().items[0];
	assert(c && c.owner_id === owner.id, `the client's owner in the API: ${JSON.stringify(c)}`);
	ownedId = c.id;
	await admin.locator('tr[data-client=owned]').getByRole('button', { name: 'owned' }).click();
	await admin.getByTestId('client-owner').filter({ hasText: OWNER.email }).waitFor();
	await admin.getByRole('button', { name: 'Close' }).click();
	// Temporary access on it would let a guest in without password and code: the server's 409.
	await nav(admin, 'Temporary access');
	await admin.getByRole('button', { name: 'New temporary access' }).click();
	await admin.locator('#f-network_id').selectOption(labId);
	await admin.getByRole('button', { name: 'Create', exact: true }).click();
	await admin.locator('[data-field=network_id] .fielderr').filter({ hasText: 'mfa_required' }).waitFor();
	await shot(admin, 'desktop-temp-access-mfa');
	await admin.getByRole('button', { name: 'Cancel' }).click();
});

await step('VPN sessions: opened through the API it shows live; ended in the console; its owner sees it', async () => {
	await nav(admin, 'VPN sessions');
	await admin.getByRole('heading', { name: 'VPN sessions' }).waitFor();
	await settled(admin);
	// A code of a step after the one that confirmed enrolment (a code is good once), within
	// the server's window of one step either side.
	const code = totp(owner.secret, Math.max(Math.floor(Date.now() / 30000), owner.step + 1));
	const r = await api('POST', '/api/vpn-sessions', { client: 'owned', email: OWNER.email, password: OWNER.password, code });
	assert(r.status === 201, `open a session: ${r.status} ${r.text}`);
	const sid = r.json().id;
	const row = admin.locator(`tr[data-session="${sid}"]`);
	await row.waitFor(); // no reload: the audit stream says a session opened
	const text = await row.textContent();
	assert(text.includes(OWNER.email) && text.includes('owned') && text.includes('lab') && text.includes('open') && text.includes('expires in'), `the row: ${text}`);
	await shot(admin, 'desktop-vpn-session-open');
	await row.getByRole('button', { name: 'End' }).click();
	await admin.locator('[data-confirm]').click();
	await row.waitFor({ state: 'detached' }); // "Open only"
	const ended = (await api('GET', `/api/vpn-sessions?client_id=${ownedId}`, null, adminToken)).json().items.find((i) => i.id === sid);
	const me = (await api('GET', '/api/auth/me', null, adminToken)).json();
	assert(ended && ended.active === false && ended.end_reason === 'revoked' && ended.ended_by === me.id, `the session in the API: ${JSON.stringify(ended)}`);
	// Its owner (a viewer) logs in with password and a recovery code and sees it in Settings.
	const { ctx, page } = await newPage(DESKTOP, 'owner');
	current = page;
	await page.goto(URL0 + '/settings');
	await page.locator('#email').fill(OWNER.email);
	await page.locator('#password').fill(OWNER.password);
	await page.locator('#password').press('Enter');
	await page.locator('#code').fill(owner.codes[0]);
	await page.locator('#code').press('Enter');
	const mine = page.getByTestId('my-vpn-sessions').locator(`tr[data-session="${sid}"]`);
	await mine.filter({ hasText: 'revoked' }).waitFor();
	assert((await mine.getByRole('button', { name: 'End' }).count()) === 0, 'a viewer sees an End button');
	await ctx.close();
	current = admin;
});

await step("the network's topology: hub, clients, gateway, site and the agent's tunnel, by state", async () => {
	await admin.goto(URL0 + `/networks/${NET}`);
	const topo = admin.getByTestId('topology');
	await topo.waitFor();
	await topo.locator('[data-node=hub][data-state=online]').waitFor();
	await topo.locator('[data-node=client][data-name=laptop][data-state=online]').waitFor();
	await topo.locator('[data-node=client][data-name=printer][data-state=offline]').waitFor();
	await topo.locator('[data-node=gateway][data-name=edge][data-state=pending]').waitFor();
	await topo.locator('[data-node=site][data-name=branch]').waitFor();
	await topo.locator('[data-node=tunnel][data-state=up]').first().waitFor();
	await shot(admin, 'desktop-topology');
});

await step("the dashboard's health lists the certificates and keys; its last hour survives a reload", async () => {
	await admin.goto(URL0 + '/');
	await admin.getByRole('heading', { name: 'Dashboard' }).waitFor();
	const certs = admin.getByTestId('certs');
	await certs.locator('li[data-cert=signing_key]').filter({ hasText: 'OpenID provider' }).waitFor();
	assert((await certs.locator('li[data-cert=signing_key] .badge').first().textContent()).includes('created'), 'the key shows no age');
	// The hub's certificate, as its agent reported it: 20 days left, so expiring.
	await certs.locator('li[data-cert=node_cert]').filter({ hasText: 'hub: hub.pem' }).filter({ hasText: 'CN hub.office' }).locator('.badge-warn').filter({ hasText: 'expiring' }).waitFor();
	// The graph of the last hour comes from the server (GET /api/stats history): a reload shows
	// the same hour again, not only what the page saw since it opened. Samples are 10 s apart.
	const chart = admin.getByTestId('chart');
	await chart.waitFor({ timeout: 40000 });
	const before = { n: Number(await chart.getAttribute('data-points')), from: Number(await chart.getAttribute('data-from')) };
	await admin.reload();
	await chart.waitFor();
	const after = { n: Number(await chart.getAttribute('data-points')), from: Number(await chart.getAttribute('data-from')) };
	const hist = (await api('GET', '/api/stats', null, adminToken)).json().history;
	// (Live samples the open page added between the server's are not in its history: compare
	// where the hour starts, and that every sample of the server's hour is drawn.)
	assert(after.from <= before.from && after.from === hist[1].ts && after.n >= hist.length - 1, `the graph after a reload: ${JSON.stringify({ before, after, first: hist[0]?.ts, samples: hist.length })}`);
});

await step('every screen at desktop and phone width', async () => {
	const screens = [
		['dashboard', '/', 'Dashboard'],
		['clients', '/clients', 'Clients'],
		['networks', `/networks/${NET}`, 'Networks'],
		['temp-access', '/temp-access', 'Temporary access'],
		['vpn-sessions', '/vpn-sessions', 'VPN sessions'],
		['audit', '/audit', 'Audit log'],
		['policies', '/policies', 'Policies'],
		['peers', '/peers', 'Peers'],
		['tunnels', '/tunnels', 'Tunnels'],
		['gateways', '/gateways', 'Gateways'],
		['settings', '/settings', 'Settings'],
		['users', '/users', 'Admin users'],
	];
	for (const [vp, tag] of [[DESKTOP, 'desktop'], [PHONE, 'phone']]) {
		await admin.setViewportSize(vp);
		for (const [name, p, heading] of screens) {
			await admin.goto(URL0 + p);
			await admin.getByRole('heading', { name: heading, exact: false }).first().waitFor();
			await settled(admin);
			if (name === 'networks') await admin.getByTestId('topology').waitFor();
			if (name === 'dashboard') await admin.getByTestId('chart').or(admin.getByTestId('chart-empty')).waitFor();
			await shot(admin, `${tag}-${name}`);
		}
	}
	await admin.setViewportSize(DESKTOP);
});

await step('a session ended on the server sends the console back to the login page', async () => {
	// "Log out everywhere" from another login: every refresh token of the user is revoked.
	const other = await tokenOf(ADMIN);
	const r = await api('POST', '/api/auth/logout', {}, other);
	assert(r.status === 200, `logout everywhere: ${r.status}`);
	await nav(admin, 'Clients');
	await admin.getByText('Your session has ended').waitFor();
	await admin.locator('#email').waitFor();
});

await step('log out: the cookie is gone, a reload stays logged out', async () => {
	await login(admin, ADMIN);
	await admin.getByRole('button', { name: 'Log out' }).click();
	await admin.locator('#email').waitFor();
	const cookies = await admin.context().cookies();
	assert(!cookies.some((c) => c.name === 'sg_refresh'), 'the refresh cookie survived logout');
	await admin.reload();
	await admin.locator('#email').waitFor();
});

// CSP violations and script errors on any page (the console's own expected 401, a reload
// without a session, is not one).
await finish();
