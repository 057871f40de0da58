// Browser tests of the survey pages in Debian's Chromium (playwright-core), at a phone
// viewport, in Vietnamese. Run by the Rust test `browser::...`, which prepares the data and
// then checks the database. Usage: node survey.mjs CONFIG_JSON
//   { "base": "http://127.0.0.1:PORT", "code": "ABCD-EFGH-K", "kiosk": "/k/UNIT?enroll=KEY", "out": "DIR" }
import { axeSource, launch } from './common.mjs';
import { mkdirSync } from 'node:fs';

const config = JSON.parse(process.argv[2]);
const { base, out } = config;
mkdirSync(out, { recursive: true });
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale: 'vi-VN', bypassCSP: false };
const results = { steps: [], axe: {}, errors: [] };
const browser = await launch();

function watch(page, label, allowed = []) {
  page.on('console', (m) => {
    if (m.type() === 'error' && !allowed.some((a) => m.text().includes(a))) results.errors.push(`${label}: ${m.text()}`);
  });
  page.on('pageerror', (e) => results.errors.push(`${label}: ${e.message}`));
}

async function axe(page, label) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  results.axe[label] = r.violations.map((v) => `${v.id}: ${v.nodes.length} node(s) – ${v.help}`);
}

async function answerAll(page, value) {
  for (const name of await page.$$eval('form input[type=radio][value="5"]', (els) => els.map((e) => e.name))) {
    await page.check(`input[name="${name}"][value="${value}"]`);
  }
}

function step(name, ok, detail = '') {
  results.steps.push({ name, ok, detail });
  if (!ok) process.exitCode = 1;
}

// 1. A citizen fills in the whole form in Vietnamese and sends it (script on).
{
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  watch(page, 'survey');
  await page.goto(`${base}/s/QNM.TK.AM`);
  step('page is Vietnamese', (await page.getAttribute('html', 'lang')) === 'vi');
  await axe(page, 'survey page');
  step('nothing is chosen before the citizen chooses', (await page.$$eval('input:checked', (els) => els.length)) === 0);
  await page.check('input[name=respondent_type][value=citizen]');
  await answerAll(page, '5');
  // A choice is undone with the quiet "no answer" next to it: E3 goes unanswered.
  await page.check('input[name=E3][value=""]');
  step('"no answer" undoes a choice', JSON.stringify(await page.$$eval('input[name=E3]:checked', (els) => els.map((e) => e.value))) === '[""]');
  await page.selectOption('select[name=service]', 'ho_tich');
  await page.fill('textarea[name=comment]', 'Cán bộ hướng dẫn rất tận tình.');
  await page.screenshot({ path: `${out}/1-survey-filled.png`, fullPage: false });
  await page.click('button[type=submit]');
  await page.waitForSelector('#st.ok', { timeout: 15000 });
  step('sent and acknowledged', (await page.textContent('#st')).includes('đã được ghi nhận'));
  await page.screenshot({ path: `${out}/2-survey-received.png` });
  await axe(page, 'survey received');
  await context.close();
}

// 2. With a receipt code from an invitation link.
{
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  watch(page, 'code');
  await page.goto(`${base}/s/QNM.TK.HH?code=${encodeURIComponent(config.code)}`);
  step('code filled in from the link', (await page.inputValue('input[name=code]')) === config.code);
  await page.check('input[name=respondent_type][value=organization]');
  await answerAll(page, '4');
  await page.click('button[type=submit]');
  await page.waitForSelector('#st.ok', { timeout: 15000 });
  step('sent with a code', true);
  await page.screenshot({ path: `${out}/3-code-received.png` });
  await context.close();
}

// 3. The connection drops mid-way: the answer waits on the phone and goes when it is back.
{
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  watch(page, 'offline', ['ERR_INTERNET_DISCONNECTED', 'net::ERR']);
  await page.goto(`${base}/s/QNM.HA.MA`);
  await page.check('input[name=respondent_type][value=citizen]');
  await page.check('input[name=A1][value="3"]');
  await context.setOffline(true);
  await answerAll(page, '4');
  await page.click('button[type=submit]');
  await page.waitForSelector('#st.wait', { timeout: 15000 });
  const waiting = await page.textContent('#st');
  step('told plainly that it is not sent yet', waiting.includes('Chưa gửi được'), waiting);
  const queued = await page.evaluate(() => JSON.parse(localStorage.getItem('sipas:queue') || '[]').length);
  step('queued on the phone', queued === 1, `queue length ${queued}`);
  await page.screenshot({ path: `${out}/4-offline-waiting.png` });
  await context.setOffline(false);
  await page.waitForSelector('#st.ok', { timeout: 30000 });
  const left = await page.evaluate(() => JSON.parse(localStorage.getItem('sipas:queue') || '[]').length);
  step('sent once back online, queue empty', left === 0);
  await page.screenshot({ path: `${out}/5-offline-received.png` });
  await context.close();
}

// 4. Without JavaScript the form still works (the server renders errors and the thanks).
{
  const context = await browser.newContext({ ...phone, javaScriptEnabled: false });
  const page = await context.newPage();
  // The form with problems comes back with HTTP 422, which Chromium reports in the console.
  watch(page, 'no-js', ['status of 422']);
  await page.goto(`${base}/s/QNM.TK.TT`);
  await answerAll(page, '4');
  // Without a script too, the quiet "no answer" undoes a choice: A1 goes unanswered.
  await page.check('input[name=A1][value=""]');
  await page.click('button[type=submit]');
  await page.waitForSelector('[role=alert]');
  step('without a script, problems are shown inline', (await page.textContent('[role=alert]')).includes('Vui lòng'));
  await page.check('input[name=respondent_type][value=citizen]');
  await page.click('button[type=submit]');
  await page.waitForSelector('h1:has-text("Cảm ơn")');
  step('without a script, the form is sent', true);
  await context.close();
}

// 5. A kiosk at the counter: enrolled, resets to a blank form, no way back to the answers.
{
  const context = await browser.newContext({ viewport: { width: 800, height: 1280 }, hasTouch: true, locale: 'vi-VN' });
  const page = await context.newPage();
  watch(page, 'kiosk');
  await page.goto(`${base}${config.kiosk}`);
  await page.waitForURL(`${base}/k/QNM.SNV`);
  await axe(page, 'kiosk page');
  await page.check('input[name=respondent_type][value=citizen]');
  await answerAll(page, '2');
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/k/QNM.SNV?thanks=1`);
  step('the kiosk thanks and offers a blank form', (await page.textContent('#st')).includes('Mời người tiếp theo'));
  await axe(page, 'kiosk thanks');
  await page.screenshot({ path: `${out}/6-kiosk-thanks.png` });
  const checked = await page.$$eval('input[type=radio]:checked', (els) => els.filter((e) => e.value !== '').length);
  step('kiosk is back to a blank form by itself', checked === 0, `${checked} answers still checked`);
  await page.goBack();
  await page.goBack();
  const after = await page.$$eval('input[type=radio]:checked', (els) => els.filter((e) => e.value !== '').length).catch(() => 0);
  step('going back shows no previous answers', after === 0, `${after} answers visible`);
  await page.screenshot({ path: `${out}/7-kiosk-blank.png` });
  await context.close();
}

await browser.close();
const violations = Object.values(results.axe).flat();
step('axe-core finds no violations', violations.length === 0, violations.join('; '));
step('no console errors', results.errors.length === 0, results.errors.join('; '));
results.screenshots = out;
console.log(JSON.stringify(results, null, 2));
console.log(`screenshots written to ${out}`);
