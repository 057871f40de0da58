// The console pages whose text a unit head reads (exports, an export error, rankings, units,
// users, the audit log, the sign-in page over plain http on a LAN) in Debian's Chromium at
// 390 px: axe-core, a real click on each export button with the page's default values,
// and screenshots. Run by `console_text::...` in tests/api. Usage: node console-text.mjs CONFIG_JSON
//   { "base": "http://127.0.0.1:PORT", "email": "...", "password": "...", "out": "DIR" }
import { axeSource, launch } from './common.mjs';
import { mkdirSync } from 'node:fs';

const { base, email, password, out } = JSON.parse(process.argv[2]);
mkdirSync(out, { recursive: true });
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1, locale: 'vi-VN', acceptDownloads: true };
const results = { steps: [], axe: {}, errors: [], shots: [] };
const browser = await launch();

function step(name, ok, detail = '') {
  results.steps.push({ name, ok, detail });
  if (!ok) process.exitCode = 1;
}

// `exclude`: parts another test owns (the charts' layout on phones is checked with the charts).
async function check(page, label, exclude = []) {
  await page.evaluate(axeSource);
  const r = await page.evaluate((exclude) => window.axe.run({ exclude }, { resultTypes: ['violations'] }), exclude);
  results.axe[label] = r.violations.map((v) => `${v.id}: ${v.nodes.length} node(s) – ${v.help}`);
  const file = `${out}/${label}-390.png`;
  await page.screenshot({ path: file, fullPage: true });
  results.shots.push(file);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  step(`${label}: no sideways scrolling of the page`, wide <= 390, `scrollWidth ${wide}`);
}

try {
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  page.on('pageerror', (e) => results.errors.push(e.message));
  await page.goto(`${base}/console/login`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${base}/console`), page.click('button[type=submit]')]);

  await page.goto(`${base}/console/exports`);
  await check(page, 'exports');
  const year = String(new Date(Date.now() + 7 * 3600e3).getUTCFullYear());
  const periods = await page.$$eval('input[name=period]', (els) => els.map((e) => e.value));
  step('every period field opens as this year', periods.length === 3 && periods.every((p) => p === year), periods.join(','));
  // A real click on each button, untouched: a file arrives.
  const buttons = 'form[action^="/console/exports/"]:not([action="/console/exports/jobs"]) button[type=submit]';
  const actions = await page.$$eval(buttons, (bs) => bs.map((b) => b.getAttribute('formaction') || b.form.getAttribute('action')));
  step('five export buttons', actions.length === 5, actions.join(','));
  for (const [i, action] of actions.entries()) {
    await page.goto(`${base}/console/exports`);
    const button = page.locator(buttons).nth(i);
    if (action.endsWith('.json')) {
      const [response] = await Promise.all([page.waitForNavigation(), button.click()]);
      step(`${action}: JSON shown`, response.status() === 200 && response.headers()['content-type'].startsWith('application/json'));
      continue;
    }
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), button.click()]);
    const name = download.suggestedFilename();
    const failure = await download.failure();
    step(`${action}: a file on the first click`, !failure && name.endsWith(action.split('.').pop()) && name.includes(year), `${name} ${failure || ''}`);
  }
  // Prepared in the background: a progress page (a bar that reaches 100 %, reloading
  // itself), then a download link that gives the file.
  await page.goto(`${base}/console/exports`);
  await Promise.all([page.waitForURL(/\/console\/exports\/jobs\//), page.click('form[action="/console/exports/jobs"] button[type=submit]')]);
  await check(page, 'export-job');
  const link = page.locator('a[href$="/file"]');
  await link.waitFor({ timeout: 20000 });
  const bar = await page.$eval('progress', (p) => [p.value, p.max]);
  step('the background export reaches 100 %', bar[0] === bar[1] && bar[1] > 0, bar.join('/'));
  await page.screenshot({ path: `${out}/export-job-390.png`, fullPage: true });
  const [prepared] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), link.click()]);
  step('the prepared file downloads', !(await prepared.failure()) && prepared.suggestedFilename().endsWith('.csv'), prepared.suggestedFilename());
  await page.goto(`${base}/console/exports`);
  // A mistyped period: a page in Vietnamese saying what to enter.
  await page.fill('form[action="/console/exports/indices.csv"] input[name=period]', '2025-13');
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.click('form[action="/console/exports/indices.csv"] button[type=submit]'),
  ]);
  const text = await page.textContent('main');
  step('a bad period shows a page, 422', response.status() === 422 && text.includes('nhập một năm (2025)'), text.slice(0, 200));
  await check(page, 'export-error');

  for (const [label, path, exclude = []] of [
    ['overview', '/console?period=2024'],
    ['unit', '/console/units/QNM.TK.AM?period=2024'],
    ['rankings', '/console/rankings?period=2024&level=commune'],
    ['units', '/console/admin/units'],
    ['users', '/console/admin/users'],
    ['audit', '/console/admin/audit'],
  ]) {
    await page.goto(base + path);
    await check(page, label, exclude);
    if (label === 'unit') {
      // The counts by channel and respondent type, close up.
      const file = `${out}/unit-channels-390.png`;
      await page.locator('div.cards').last().screenshot({ path: file });
      results.shots.push(file);
    }
  }
  await context.close();

  // The sign-in page as a LAN browser reaches it over plain http while cookies are Secure
  // (the forwarded host stands in for the LAN address).
  const lan = await browser.newContext({ ...phone, extraHTTPHeaders: { 'X-Forwarded-Host': '192.168.1.20:8080' } });
  const login = await lan.newPage();
  await login.goto(`${base}/console/login`);
  const warning = (await login.textContent('main')) || '';
  step('plain-http warning on the sign-in page', warning.includes('SIPAS_COOKIE_SECURE=false'), warning.slice(0, 160));
  await check(login, 'login-plain-http');
  await lan.close();
} catch (e) {
  step('run', false, String(e && e.stack || e));
}
await browser.close();
step('no page errors', results.errors.length === 0, results.errors.join('; '));
for (const [label, v] of Object.entries(results.axe)) step(`axe: ${label}`, v.length === 0, v.join('; '));
console.log(JSON.stringify(results, null, 1));
