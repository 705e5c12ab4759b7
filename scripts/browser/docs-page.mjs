// Drives GET /docs in headless Chromium the way a user would; run by scripts/browser-test.
//
//   node docs-page.mjs            (env: CORRAL_URL, CORRAL_TOKEN, SCREENSHOT, CHROMIUM, PROFILE_DIR)
//
// Checks: the reference renders anonymously from the base document; a token typed into the
// page's token bar reloads /openapi.json with `Authorization: Bearer <token>`; "Try it out" on
// GET /api/v1/crm/{collection} sends the token and shows the demo tenant's accounts. Fails on
// any page error, any Content-Security-Policy violation and any request that leaves
// 127.0.0.1. Exits 0 when every check passed, 1 otherwise.
import { chromium } from 'playwright-core';

const base = requiredEnv('CORRAL_URL');
const token = requiredEnv('CORRAL_TOKEN');
const screenshot = requiredEnv('SCREENSHOT');
const profileDir = requiredEnv('PROFILE_DIR');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const origin = new URL(base).origin;
// Generous: rendering the tenant's document (hundreds of v1 list parameters) takes seconds of
// main-thread time on a busy 2-core machine.
const STEP_TIMEOUT = 90_000;

// The whole run stops by itself.
const watchdog = setTimeout(() => {
  console.error('FAIL: browser test still running after 300 s');
  process.exit(1);
}, 300_000);

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL: ${name} is not set`);
    process.exit(1);
  }
  return value;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
  console.log(`ok: ${message}`);
}

const problems = []; // page errors, CSP violations, off-host requests
const specRequests = []; // Authorization header of each /openapi.json request
const apiRequests = []; // { url, authorization } of each /api/ request

let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 1100 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Nothing but 127.0.0.1 resolves, whatever a page asks for.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });

  // Any request to another origin is refused and reported.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:')) return route.continue();
    problems.push(`request outside ${origin}: ${url}`);
    return route.abort('blockedbyclient');
  });
  // Report CSP violations from inside the page (they are not always console errors).
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });

  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('request', (r) => {
    const url = new URL(r.url());
    const authorization = r.headers()['authorization'] ?? null;
    if (url.pathname === '/openapi.json') specRequests.push(authorization);
    if (url.pathname.startsWith('/api/')) apiRequests.push({ url: r.url(), authorization });
  });

  // 1. The page renders the base document with no token.
  const response = await page.goto(`${base}/docs`, { waitUntil: 'load' });
  check(response?.status() === 200, 'GET /docs answers 200');
  check((response?.headers()['content-type'] ?? '').startsWith('text/html'), '/docs is text/html');
  check(!!response?.headers()['content-security-policy'], '/docs sends a Content-Security-Policy');
  const listOp = page.locator('#operations-v1-v1_list_accounts');
  await listOp.waitFor({ state: 'visible' });
  check(await listOp.locator('.opblock-summary-path').innerText().then((t) => t.includes('/api/v1/crm/accounts')),
    'the operation list renders (GET /api/v1/crm/accounts is shown)');
  check(await page.locator('.opblock').count() >= 40, `every operation is listed (${await page.locator('.opblock').count()} shown)`);
  await page.locator('#token-status[data-state="anonymous"]').waitFor();
  check(specRequests.length >= 1 && specRequests.every((a) => a === null), 'without a token /openapi.json is fetched with no Authorization');

  // 2. The user pastes a token into the bar and applies it.
  const before = specRequests.length;
  await page.locator('#token').fill(token);
  await page.getByRole('button', { name: 'Use token' }).click();
  await page.locator('#token-status[data-state="tenant"]').waitFor();
  check(specRequests.length > before && specRequests.at(-1) === `Bearer ${token}`,
    'with a token /openapi.json is fetched again with Authorization: Bearer <token>');
  check((await page.locator('#token-status').innerText()).includes('tenant demo'), 'the status line names the tenant');
  await listOp.waitFor({ state: 'visible' });

  // 3. "Try it out" on the v1 list, as a user would.
  await listOp.locator('.opblock-summary').first().click();
  // The tenant's document: the demo's custom attribute `seats` is a filter of the v1 list.
  await listOp.locator('tr[data-param-name="custom_fields.seats"]').waitFor();
  check(true, "the tenant's document is shown (the v1 list takes custom_fields.seats)");
  await listOp.locator('button.try-out__btn').click();
  await listOp.locator('tr[data-param-name="limit"] input').fill('10');
  const sent = apiRequests.length;
  await listOp.locator('button.execute').click();
  const liveResponse = listOp.locator('.live-responses-table .response');
  await liveResponse.first().waitFor();
  const status = (await liveResponse.first().locator('.response-col_status').innerText()).trim();
  const body = await liveResponse.first().locator('.response-col_description').innerText();
  const request = apiRequests.slice(sent).find((r) => r.url.includes('/api/v1/crm/accounts'));
  check(request !== undefined, `the page sent ${request?.url ?? 'GET /api/v1/crm/accounts'}`);
  check(request.authorization === `Bearer ${token}`, 'the "Try it out" request carried Authorization: Bearer <token>');
  check(status === '200', `the response shown is 200 (got ${status})`);
  check(body.includes('Acme Corporation') && body.includes('Globex'), 'the response shown holds the demo accounts (Acme Corporation, Globex)');

  // 4. Screenshot: the token bar, then the request sent and the response shown.
  await page.evaluate(() => {
    const execute = document.querySelector('#operations-v1-v1_list_accounts button.execute');
    const bar = document.querySelector('.corral-bar');
    window.scrollTo(0, execute.getBoundingClientRect().top + window.scrollY - bar.offsetHeight - 8);
  });
  await page.screenshot({ path: screenshot });
  console.log(`ok: screenshot written to ${screenshot}`);

} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.message}`);
} finally {
  await context?.close().catch(() => {});
  if (problems.length) {
    failed = true;
    console.error(`FAIL: page errors, CSP violations or off-host requests:\n  ${problems.join('\n  ')}`);
  } else if (!failed) {
    console.log('ok: no page errors, CSP violations or off-host requests');
  }
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
