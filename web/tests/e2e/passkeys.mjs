// Passkeys in the console, in Debian's Chromium driven by playwright-core, with Chromium's own
// virtual authenticator (the DevTools protocol's WebAuthn domain: CTAP2, a resident key, user
// verification): tests/integration/test_console_passkeys.sh starts the server with
// --public-url http://localhost:PORT and runs this script. Each step stops the run at its first
// failure with a screenshot; the last line says how many steps passed.
//
// Environment: SG_URL (http://localhost:PORT), SG_EMAIL/SG_PASSWORD (an admin),
// SG_ROOT_EMAIL/SG_ROOT_PASSWORD (a super_admin), SG_OUT (screenshots), SG_CHROMIUM.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { apiAt, assert, env, launch, stepper, watch } from './harness.mjs';

const URL0 = env('SG_URL');
const OUT = env('SG_OUT');
const ADMIN = { email: env('SG_EMAIL'), password: env('SG_PASSWORD') };
const ROOT = { email: env('SG_ROOT_EMAIL'), password: env('SG_ROOT_PASSWORD') };
fs.mkdirSync(path.join(OUT, 'screenshots'), { recursive: true });

const problems = [];
const api = apiAt(URL0);
const browser = await launch(chromium);
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
page.setDefaultTimeout(20000);
watch(page, problems);
const { step, finish } = stepper(browser, problems, () =>
	page.screenshot({ path: path.join(OUT, 'screenshots', 'passkeys-FAILED.png'), fullPage: true }),
);
async function shot(name) {
	await page.waitForTimeout(150);
	await page.screenshot({ path: path.join(OUT, 'screenshots', `${name}.png`), fullPage: true });
}
async function nav(label) {
	const menu = page.getByRole('button', { name: 'Menu' });
	if (await menu.isVisible()) await menu.click();
	await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
}
async function logout() {
	await page.getByRole('button', { name: 'Log out' }).click();
	await page.locator('#email').waitFor();
}
async function passwordStep() {
	await page.locator('#email').fill(ADMIN.email);
	await page.locator('#password').fill(ADMIN.password);
	await page.locator('#password').press('Enter');
}
const tokenOf = async () => (await api('POST', '/api/auth/login', ADMIN)).json();

// Chromium's virtual authenticator: a platform authenticator (CTAP2) that keeps resident keys
// and verifies the user, as a phone or a laptop's screen lock does.
const cdp = await ctx.newCDPSession(page);
let authId;

await step('a virtual authenticator (CTAP2, resident keys, user verification)', async () => {
	await cdp.send('WebAuthn.enable', { enableUI: false });
	({ authenticatorId: authId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
		options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
	}));
	assert(authId, 'no authenticator id');
});

await step('log in with the password; add a passkey in Settings', async () => {
	await page.goto(URL0 + '/');
	await passwordStep();
	await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
	await nav('Settings');
	const sec = page.getByTestId('passkeys');
	await sec.getByText('No passkeys.').waitFor();
	await sec.getByLabel('Passkey name').fill('Chromium');
	await sec.getByRole('button', { name: 'Add a passkey' }).click();
	await sec.getByTestId('passkey').filter({ hasText: 'Chromium' }).waitFor();
	await page.getByText('Passkey added').waitFor();
	const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: authId });
	assert(credentials.length === 1 && credentials[0].isResidentCredential && credentials[0].rpId === new URL(URL0).hostname,
		`the authenticator holds one resident credential for the rpId: ${JSON.stringify(credentials.map((c) => ({ rp: c.rpId, rk: c.isResidentCredential })))}`);
	const t = await tokenOf();
	assert(t.mfa_required && t.methods.includes('passkey'), `the account now asks for a second factor: ${JSON.stringify(t)}`);
	await shot('desktop-passkeys');
});

let firstCount = 0;
await step('log out; log in again: password, then the passkey as the second step', async () => {
	await logout();
	await passwordStep();
	await page.getByRole('button', { name: 'Use a passkey' }).click();
	await page.getByTestId('whoami').filter({ hasText: ADMIN.email }).waitFor(); // back where it was
	const rc = (await ctx.cookies()).find((c) => c.name === 'sg_refresh');
	assert(rc && rc.httpOnly, 'no HttpOnly refresh cookie after the passkey step');
	const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: authId });
	firstCount = credentials[0].signCount;
	assert(firstCount >= 1, `the authenticator signed: count ${firstCount}`);
});

await step('log out; log in with the passkey alone (no e-mail, no password)', async () => {
	await logout();
	await page.getByRole('button', { name: 'Log in with a passkey' }).click();
	await page.getByTestId('whoami').filter({ hasText: ADMIN.email }).waitFor();
	const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: authId });
	assert(credentials[0].signCount > firstCount, 'the counter moved');
});

await step('the server recorded both logins and the counter', async () => {
	// The password step answers an mfa_token now: read the server with the console's session
	// (a refresh from its cookie).
	const tok = await page.evaluate(async () => {
		const r = await fetch('/api/auth/refresh', { method: 'POST', credentials: 'same-origin' });
		return (await r.json()).access_token;
	});
	const a = (await api('GET', '/api/audit?event_type=user.login&limit=20', null, tok)).json();
	const det = a.items.map((e) => (typeof e.details === 'string' ? JSON.parse(e.details || '{}') : e.details || {}));
	assert(det.some((d) => d.second_factor === 'passkey') && det.some((d) => d.method === 'passkey'), `audit: ${JSON.stringify(det)}`);
	const pk = (await api('GET', '/api/auth/passkeys', null, tok)).json();
	assert(pk.total === 1 && pk.items[0].algorithm === 'ES256' && pk.items[0].sign_count >= 2 && pk.items[0].last_used_at, `passkey: ${JSON.stringify(pk)}`);
	const added = (await api('GET', '/api/audit?event_type=user.passkey_added&limit=5', null, tok)).json();
	assert(added.items.length === 1, 'user.passkey_added audited once');
});

await step('rename and remove the passkey in Settings; then the password alone logs in', async () => {
	await nav('Settings');
	const sec = page.getByTestId('passkeys');
	await sec.getByTestId('passkey').filter({ hasText: 'Chromium' }).waitFor();
	await sec.getByRole('button', { name: 'Rename' }).click();
	await sec.getByLabel('New name').fill('Chromium key');
	await sec.getByRole('button', { name: 'Save' }).click();
	await sec.getByTestId('passkey').filter({ hasText: 'Chromium key' }).waitFor();
	await sec.getByRole('button', { name: 'Remove' }).click();
	await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
	await sec.getByText('No passkeys.').waitFor();
	await shot('desktop-passkeys-removed');
	await logout();
	await passwordStep();
	await page.getByTestId('whoami').filter({ hasText: ADMIN.email }).waitFor();
	// The authenticator still holds the credential; the server no longer knows it.
	await logout();
	await page.getByRole('button', { name: 'Log in with a passkey' }).click();
	await page.getByRole('alert').filter({ hasText: 'not registered' }).waitFor();
});

await step("a super_admin removes another user's passkeys in Admin users; that user's session ends", async () => {
	await passwordStep();
	await page.getByTestId('whoami').filter({ hasText: ADMIN.email }).waitFor();
	await nav('Settings');
	const sec = page.getByTestId('passkeys');
	await sec.getByLabel('Passkey name').fill('Second');
	await sec.getByRole('button', { name: 'Add a passkey' }).click();
	await sec.getByTestId('passkey').filter({ hasText: 'Second' }).waitFor();
	// The super_admin, in a browser context of its own (no authenticator there).
	const rctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
	const root = await rctx.newPage();
	root.setDefaultTimeout(20000);
	root.on('pageerror', (e) => problems.push(`super_admin: script error: ${e.message}`));
	await root.goto(URL0 + '/users');
	await root.locator('#email').fill(ROOT.email);
	await root.locator('#password').fill(ROOT.password);
	await root.locator('#password').press('Enter');
	const row = root.locator(`tr[data-user="${ADMIN.email}"]`);
	await row.getByTestId('user-passkeys').filter({ hasText: '1' }).waitFor();
	await row.getByRole('button', { name: 'Remove passkeys' }).click();
	await root.locator('[data-confirm]').click();
	await row.getByTestId('user-passkeys').filter({ hasText: '0' }).waitFor();
	assert((await row.getByRole('button', { name: 'Remove passkeys' }).count()) === 0, 'the button stayed');
	await root.waitForTimeout(150);
	await root.screenshot({ path: path.join(OUT, 'screenshots', 'desktop-users-passkeys-removed.png'), fullPage: true });
	await rctx.close();
	// The admin's console session ended with it; the password alone logs in again.
	// Settings lists the user's VPN sessions live, so the removal's audit event makes the next
	// request (a 401) soon; where it did not yet, a click on a menu entry makes one.
	const ended = page.getByText('Your session has ended');
	if (!(await ended.isVisible()))
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard', exact: true }).click({ timeout: 2000 }).catch(() => {});
	await ended.waitFor();
	const t = await tokenOf();
	assert(t.access_token && !t.mfa_required, `after the removal the password alone logs in: ${JSON.stringify(Object.keys(t))}`);
});

await finish();
