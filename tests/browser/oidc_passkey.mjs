// The OpenID provider's login page with a passkey as the second step, in Debian's Chromium with
// its virtual authenticator (the DevTools protocol's WebAuthn domain: CTAP2, a resident key,
// user verification), for `secureguard connect --oidc` (tests/integration/test_oidc_passkey.sh
// starts the server with --public-url http://localhost:PORT and the command, and passes the
// address the command printed):
//   1. the account adds a passkey through the API, the browser's authenticator making it;
//   2. the browser opens the command's address: the login page; e-mail and password; the second
//      step offers the passkey only (the account has no TOTP), under a policy that allows no
//      inline script; "Use a passkey" signs the server's challenge;
//   3. the browser is sent back to the command's loopback listener, which says the session is
//      open.
// Each step stops the run at its first failure; the last line says how many passed.
//
//   node oidc_passkey.mjs AUTHORIZE_URL        (SG_URL, SG_EMAIL, SG_PASSWORD in the environment)
import { chromium } from 'playwright-core';
import { apiAt, assert, env, launch, stepper, watch } from '../../web/tests/e2e/harness.mjs';

const URL0 = env('SG_URL');
const EMAIL = env('SG_EMAIL');
const PASSWORD = env('SG_PASSWORD');
const AUTHORIZE = process.argv[2];

const problems = [];
const api = apiAt(URL0);
const browser = await launch(chromium);
const ctx = await browser.newContext();
const page = await ctx.newPage();
page.setDefaultTimeout(20000);
watch(page, problems);
const { step, finish } = stepper(browser, problems, async () => {
	console.log(`page at ${page.url()}: ${(await page.textContent('body').catch(() => '')) || ''}`);
});

const cdp = await ctx.newCDPSession(page);
let authId;
await step('a virtual authenticator (CTAP2, resident keys, user verification)', async () => {
	await cdp.send('WebAuthn.enable', { enableUI: false });
	({ authenticatorId: authId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
		options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
	}));
	assert(authId, 'no authenticator id');
});

await step('the account adds a passkey (registration through the API, in the browser)', async () => {
	const login = (await api('POST', '/api/auth/login', { email: EMAIL, password: PASSWORD })).json();
	assert(login.access_token, `password login: ${JSON.stringify(login)}`);
	// A page of the relying party's origin (http://localhost is a secure context).
	await page.goto(URL0 + '/.well-known/openid-configuration');
	const out = await page.evaluate(async (tok) => {
		const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
		const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
		const h = { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' };
		const o = await (await fetch('/api/auth/passkeys/options', { method: 'POST', headers: h, body: '{}' })).json();
		const c = await navigator.credentials.create({ publicKey: {
			...o, challenge: dec(o.challenge), user: { ...o.user, id: dec(o.user.id) },
			excludeCredentials: (o.excludeCredentials || []).map((d) => ({ type: d.type, id: dec(d.id) })),
		} });
		const r = await fetch('/api/auth/passkeys', { method: 'POST', headers: h, body: JSON.stringify({
			name: 'Chromium', credential: { id: enc(c.rawId), type: 'public-key', response: {
				clientDataJSON: enc(c.response.clientDataJSON), attestationObject: enc(c.response.attestationObject) } },
		}) });
		return { status: r.status, text: await r.text() };
	}, login.access_token);
	assert(out.status === 201, `passkey added: ${out.status} ${out.text}`);
	const list = (await api('GET', '/api/auth/passkeys', null, login.access_token)).json();
	assert(list.total === 1, `the account's passkeys: ${JSON.stringify(list)}`);
});

let csp = '';
await step('the login page of the command\'s address; the password step', async () => {
	assert(AUTHORIZE && AUTHORIZE.startsWith(URL0 + '/oauth2/authorize?') && AUTHORIZE.includes('client_id=secureguard-cli'),
		`an authorization request of secureguard-cli: ${AUTHORIZE}`);
	await page.goto(AUTHORIZE);
	await page.locator('#email').fill(EMAIL);
	await page.locator('#password').fill(PASSWORD);
	const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/oauth2/authorize')), page.locator('#signin').click()]);
	csp = (await resp.allHeaders())['content-security-policy'] || '';
	await page.getByRole('button', { name: 'Use a passkey' }).waitFor();
});

await step('the second step offers the passkey only, under a policy without inline script', async () => {
	assert((await page.locator('#code').count()) === 0, 'a code field for an account without TOTP');
	assert(/script-src 'self'/.test(csp) && !/unsafe-inline'[^;]*;?/.test(csp.split(';').find((d) => d.includes('script-src')) || ''), `the page's policy: ${csp}`);
	assert(/frame-ancestors 'none'/.test(csp) && /default-src 'none'/.test(csp), `the page's policy: ${csp}`);
	assert((await page.locator('script:not([src])').count()) === 0, 'an inline script on the page');
});

await step('"Use a passkey": the authenticator signs, the browser goes back to the command', async () => {
	const before = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: authId })).credentials[0].signCount;
	await Promise.all([
		page.waitForURL((u) => u.hostname === '127.0.0.1' && u.pathname === '/callback', { timeout: 20000 }),
		page.getByRole('button', { name: 'Use a passkey' }).click(),
	]);
	await page.getByText('The VPN session is open').waitFor();
	const after = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: authId })).credentials[0].signCount;
	assert(after > before, `the authenticator signed (count ${before} -> ${after})`);
});

await finish();
