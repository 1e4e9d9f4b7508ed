// A login through the gateway in Debian's Chromium, as a person does it (test_gateway.sh):
// the protected page sends the browser to the management server's login page; the account's
// e-mail and password are typed there; the browser comes back through the gateway's callback
// to the page first asked for, which the target answers (it echoes X-Forwarded-User). With
// TOTP_SECRET (base32) the account has a second factor: after the password the page asks for a
// code, which this script computes (RFC 6238, here with node's HMAC-SHA-1, not the server's).
//
//   node gateway_login.mjs URL EMAIL PASSWORD HOST_RULES [TOTP_SECRET]
//
// HOST_RULES maps the test's names to addresses (Chromium's --host-resolver-rules). Prints
// the page's text; exit status 0 when the login page was seen and the page came back.
import { chromium } from "playwright-core";
import { launch, totp } from "../../web/tests/e2e/harness.mjs";

const [url, email, password, rules, totpSecret] = process.argv.slice(2);

// The code of the step after now: the step now may already have been used (a code is good
// once) and the server accepts one step of skew.
const totpNext = (b32) => totp(b32, Math.floor(Date.now() / 1000 / 30) + 1);
// INTEROP.md's flags, and the test's names mapped to addresses.
const browser = await launch(chromium, [`--host-resolver-rules=${rules}`]);
let code = 1;
try {
  const page = await browser.newPage();
  await page.goto(url, { timeout: 20000 });
  const loginUrl = page.url();
  if (!loginUrl.includes("/oauth2/authorize")) throw new Error(`not at the login page: ${loginUrl}`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  const back = new URL(url).host;
  let last = "#signin";
  if (totpSecret) {
    await Promise.all([page.waitForSelector("#code", { timeout: 20000 }), page.click("#signin")]);
    console.log("code step: asked for a code after the password");
    await page.fill("#code", totpNext(totpSecret));
    last = "#verify";
  }
  await Promise.all([
    page.waitForURL((u) => u.host === back, { timeout: 20000 }),
    page.click(last),
  ]);
  console.log(`login page: ${new URL(loginUrl).origin}${new URL(loginUrl).pathname}`);
  console.log(`back at: ${page.url()}`);
  console.log(await page.textContent("body"));
  code = 0;
} catch (e) {
  console.log(`chromium login failed: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(code);
