// The hosted pages in headless Chromium (issue 13), driven by
// playwright-core: activation (PIN twice), reveal (shown once) and PIN
// reset, as a cardholder would use them, and their refusals.  The links
// come from test/browser.sh (JSON on stdin); the return_urls are https
// pages of app.example.test, answered here by route() so that a landing is
// observed without a network.  Screenshots go to ARTIFACTS.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const links = JSON.parse(fs.readFileSync(0, 'utf8'));
const artifacts = process.env.ARTIFACTS;
let checks = 0;

function fail(message) {
  console.error(`browser: FAIL: ${message}`);
  process.exit(1);
}
function check(condition, message) {
  if (!condition) fail(message);
  checks++;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext();
  const consoleErrors = [];
  // A page of its own for each step; it reports what the
  // Content-Security-Policy blocked, if anything (a 4xx page is logged
  // too, as a failed resource: those are the pages under test).
  async function freshPage() {
    const p = await context.newPage();
    p.on('console', (msg) => {
      if (/Content Security Policy|Refused to/.test(msg.text())) consoleErrors.push(msg.text());
    });
    return p;
  }
  let page = await freshPage();
  // Submit a form and return the request for the app it redirected to; the
  // page (left on the browser's error page for the app) is replaced.
  async function submitToApp() {
    const [landing] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith('https://app.example.test/')),
      page.click('button[type=submit]', { noWaitAfter: true }),
    ]);
    const from = landing.redirectedFrom();
    check(from !== null && from.method() === 'POST', 'reached by the redirect of the form');
    await page.close();
    page = await freshPage();
    return landing.url();
  }

  // Activation: a mismatch first, then the PIN twice; lands on return_url.
  let response = await page.goto(links.activate);
  check(response.status() === 200, `activation page status ${response.status()}`);
  check((await page.title()) === 'Activate your card', 'activation page title');
  const headers = response.headers();
  check(headers['content-security-policy'].includes("default-src 'none'"), 'CSP on the page');
  check(headers['cache-control'] === 'no-store', 'no-store on the page');
  check(await page.evaluate(() => document.scripts.length === 0), 'no script on the page');
  check(await page.evaluate(() => getComputedStyle(document.querySelector('button')).backgroundColor !== 'rgba(0, 0, 0, 0)'),
    'the stylesheet applies');
  await shot(page, '1-activation-form');
  await page.fill('#pin', '2468');
  await page.fill('#pin2', '2469');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check((await page.textContent('.error')).includes('differ'), 'mismatched PINs are told');
  await shot(page, '2-activation-mismatch');
  await page.fill('#pin', '2468');
  await page.fill('#pin2', '2468');
  const landed = await submitToApp();
  check(landed === links.activate_return, `landed on ${landed}`);
  check(!landed.includes('token') && !landed.includes('2468'), 'no secret in the return URL');

  // The same link again: a clear page, not a form.
  response = await page.goto(links.activate);
  await page.fill('#pin', '2468');
  await page.fill('#pin2', '2468');
  const [used] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(used.status() === 410, `a used link answers ${used.status()}`);
  check((await page.title()) === 'This link can no longer be used', 'used link page');
  await shot(page, '4-activation-used');

  // An expired link (its expiry moved into the past by the test).
  await page.goto(links.activate_expired);
  await page.fill('#pin', '1357');
  await page.fill('#pin2', '1357');
  const [expired] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(expired.status() === 410, `an expired link answers ${expired.status()}`);
  await shot(page, '5-activation-expired');

  // Reveal: nothing shown until asked; shown once.
  await page.goto(links.reveal);
  check(!/\d{16}/.test(await page.content()), 'no PAN before the holder asks');
  await shot(page, '6-reveal-ask');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  const shown = await page.textContent('dl');
  const pan = (shown.match(/\d{16}/) || [''])[0];
  check(pan.endsWith(links.reveal_last4), 'the PAN shown is the card\'s');
  check(/\d{3}/.test(shown.split('Security code')[1] || ''), 'a CVV is shown');
  await shot(page, '7-reveal-shown');
  await page.goto(links.reveal);
  const [again] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(again.status() === 410 && !/\d{16}/.test(await page.content()), 'a second reveal shows nothing');

  // PIN reset: lands on its return_url.
  await page.goto(links.pin);
  await page.fill('#pin', '9753');
  await page.fill('#pin2', '9753');
  await shot(page, '8-pin-reset-form');
  const pinLanded = await submitToApp();
  check(pinLanded === links.pin_return, `PIN reset landed on ${pinLanded}`);

  // A replacement's activation: a wrong PIN is told with the tries left,
  // the PIN it carries (9753, the reset above) lands.
  await page.goto(links.reissue);
  await page.fill('#pin', '9999');
  await page.fill('#pin2', '9999');
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(wrong.status() === 422, `a wrong PIN answers ${wrong.status()}`);
  const told = await page.textContent('.error');
  check(/not your card's PIN/.test(told) && /2 tries left/.test(told), `a wrong PIN is told: ${told}`);
  await shot(page, '9-reissue-wrong-pin');
  await page.fill('#pin', '9753');
  await page.fill('#pin2', '9753');
  check((await submitToApp()) === links.reissue_return, 'the carried PIN activates the replacement');

  check(consoleErrors.length === 0, `blocked by the page's CSP: ${consoleErrors.join('; ')}`);
  await browser.close();
  console.log(`browser: ${checks} checks passed; screenshots in ${artifacts}`);
})().catch((error) => fail(error.stack || String(error)));
