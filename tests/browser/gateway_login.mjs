// A login through the gateway in Debian's Chromium, as a person does it (test_gateway.sh):
// the protected page sends the browser to the management server's login page; the account's
// e-mail and password are typed there; the browser comes back through the gateway's callback
// to the page first asked for, which the target answers (it echoes X-Forwarded-User).
//
//   node gateway_login.mjs URL EMAIL PASSWORD HOST_RULES
//
// HOST_RULES maps the test's names to addresses (Chromium's --host-resolver-rules). Prints
// the page's text; exit status 0 when the login page was seen and the page came back.
import { chromium } from "playwright-core";

const [url, email, password, rules] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  // INTEROP.md: root, no GPU, nothing from the network but what the test asks for.
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    `--host-resolver-rules=${rules}`],
});
let code = 1;
try {
  const page = await browser.newPage();
  await page.goto(url, { timeout: 20000 });
  const loginUrl = page.url();
  if (!loginUrl.includes("/oauth2/authorize")) throw new Error(`not at the login page: ${loginUrl}`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  const back = new URL(url).host;
  await Promise.all([
    page.waitForURL((u) => u.host === back, { timeout: 20000 }),
    page.click("#signin"),
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
