// The console's license banner in a real browser (Debian's Chromium driven by playwright-core),
// against a real server whose license is in its grace period: tests/integration/
// test_server_license.sh starts it. Logs in and waits for the banner with /api/health's warning.
//
// Environment: SG_URL, SG_EMAIL, SG_PASSWORD, SG_OUT (a screenshot), SG_WANT (text the banner
// must hold), SG_CHROMIUM.
import { chromium } from 'playwright-core';
import path from 'node:path';
import { env, launch } from './harness.mjs';

const browser = await launch(chromium);
let rc = 1;
try {
	const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
	page.setDefaultTimeout(15000);
	await page.goto(env('SG_URL') + '/');
	await page.locator('#email').fill(env('SG_EMAIL'));
	await page.locator('#password').fill(env('SG_PASSWORD'));
	await page.locator('#password').press('Enter');
	await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
	const banner = page.getByTestId('license-warning');
	await banner.waitFor();
	const text = await banner.innerText();
	await page.screenshot({ path: path.join(env('SG_OUT'), 'license-banner.png') });
	if (!text.includes(env('SG_WANT'))) throw new Error(`the banner says: ${text}`);
	console.log(`ok - the console shows the license warning: ${text}`);
	rc = 0;
} catch (e) {
	console.log(`not ok - ${e.stack || e}`);
} finally {
	await browser.close();
}
process.exit(rc);
