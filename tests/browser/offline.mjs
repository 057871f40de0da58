// The service worker on a citizen's phone, in Debian's Chromium (playwright-core): what
// happens on the visits after the first one. The phone talks to the application through a
// small proxy in this script, which can cut the network (the server is unreachable, as on a
// phone without signal) or play an older release (its sw.js carries another version and its
// pages a marker), so the test sees an updated page reach a phone with the old worker.
// Run by the Rust test `browser::the_service_worker_...`, which then counts the responses.
// Usage: node offline.mjs CONFIG_JSON   { "base": "http://127.0.0.1:PORT", "out": "DIR" }
import { launch } from './common.mjs';
import { mkdirSync } from 'node:fs';
import http from 'node:http';

const { base, out } = JSON.parse(process.argv[2]);
mkdirSync(out, { recursive: true });
const results = { steps: [], errors: [] };
function step(name, ok, detail = '') {
  results.steps.push({ name, ok, detail });
  if (!ok) process.exitCode = 1;
}

// 'up': passes through; 'down': the server cannot be reached; 'old': an older release.
let mode = 'up';
const OLD = 'oldrelease';
const target = new URL(base);
const proxy = http.createServer((req, res) => {
  if (mode === 'down') { req.socket.destroy(); return; }
  const headers = { ...req.headers, host: target.host };
  delete headers['accept-encoding']; // plain bodies, so the old release can be written into them
  const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers }, (r) => {
    const html = (r.headers['content-type'] || '').startsWith('text/html');
    if (mode !== 'old' || !(html || req.url.startsWith('/s/sw.js'))) {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
      return;
    }
    const chunks = [];
    r.on('data', (c) => chunks.push(c));
    r.on('end', () => {
      let body = Buffer.concat(chunks).toString('utf8');
      if (html) body = body.replace('<main>', '<main><p id=old-release>old release</p>');
      else {
        const version = body.match(/app\.js\?v=(\w+)/);
        if (version) body = body.split(version[1]).join(OLD);
      }
      const h = { ...r.headers, 'content-length': Buffer.byteLength(body) };
      res.writeHead(r.statusCode, h);
      res.end(body);
    });
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
await new Promise((ok) => proxy.listen(0, '127.0.0.1', ok));
const site = `http://127.0.0.1:${proxy.address().port}`;

const browser = await launch();
const phone = { viewport: { width: 360, height: 800 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale: 'vi-VN' };

function watch(page, label) {
  page.on('pageerror', (e) => results.errors.push(`${label}: ${e.message}`));
}

async function poll(what, fn, seconds = 15) {
  const until = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < until) {
    last = await fn().catch((e) => `error: ${e.message}`);
    if (last === true) return true;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)}`);
}

// The worker runs this page and keeps it.
async function installed(page) {
  await poll('worker in control', () => page.evaluate(() => navigator.serviceWorker.controller !== null));
  await poll('page kept', () => page.evaluate(async () => !!(await caches.match(location.href, { ignoreVary: true }))));
}

async function cacheNames(page) {
  return page.evaluate(() => caches.keys());
}

async function fillAndSend(page, value) {
  await page.check('input[name=respondent_type][value=citizen]');
  for (const name of await page.$$eval('form input[type=radio][value="5"]', (els) => els.map((e) => e.name))) {
    await page.check(`input[name="${name}"][value="${value}"]`);
  }
  await page.click('button[type=submit]');
}

async function scenario(name, fn) {
  try { await fn(); } catch (e) { step(name, false, e.message.split('\n')[0]); }
}

const context = await browser.newContext(phone);

// 1. The first visit installs the worker; a reload is served through it and works.
await scenario('reload after the worker installed', async () => {
  const page = await context.newPage();
  watch(page, 'reload');
  await page.goto(`${site}/s/QNM.TK.AM`);
  await installed(page);
  const res = await page.reload();
  step('reload after the worker installed: the page comes', res !== null && res.ok() && (await page.locator('h1').count()) === 1,
    res ? `HTTP ${res.status()}` : 'no response');
  step('reload after the worker installed: served through the worker', res.fromServiceWorker());
  await fillAndSend(page, '4');
  await page.waitForSelector('#st.ok', { timeout: 15000 });
  step('reload after the worker installed: the form is sent', true);
  await page.screenshot({ path: `${out}/1-reload-sent.png` });
  await page.close();
});

// 2. Another unit in a new tab, on the same phone.
await scenario('a second visit to another unit', async () => {
  const page = await context.newPage();
  watch(page, 'second unit');
  const res = await page.goto(`${site}/s/QNM.HA.MA`);
  step('another unit in a new tab: the page comes', res.ok() && (await page.textContent('p.u')).length > 0, `HTTP ${res.status()}`);
  await fillAndSend(page, '3');
  await page.waitForSelector('#st.ok', { timeout: 15000 });
  step('another unit in a new tab: the form is sent', true);
  await page.close();
});

// 3. The signal drops after the page came: the answer waits on the phone. Someone else
//    opens the survey on the same phone, still without signal: the kept blank form opens
//    (the copy of the page just sent, which must not pass for a retry of it), and both
//    answers go once the signal is back.
await scenario('reopening offline', async () => {
  const page = await context.newPage();
  watch(page, 'offline');
  await page.goto(`${site}/s/QNM.TK.AM`);
  const sid = await page.inputValue('input[name=submission_id]');
  mode = 'down';
  await context.setOffline(true);
  await fillAndSend(page, '5');
  await page.waitForSelector('#st.wait', { timeout: 15000 });
  step('offline: told it waits on the phone', (await page.textContent('#st')).includes('Chưa gửi được'));
  const other = await context.newPage();
  watch(other, 'offline, reopened');
  const res = await other.goto(`${site}/s/QNM.TK.AM`);
  step('offline: the blank form comes from the phone', res.ok() && res.fromServiceWorker() && (await other.locator('form[data-unit]').count()) === 1);
  const checked = await other.$$eval('input:checked', (els) => els.length);
  step('offline: the kept form is blank', checked === 0, `${checked} checked`);
  const sid2 = await other.inputValue('input[name=submission_id]');
  step('offline: the kept page sends under its own submission id', sid2 !== sid, `${sid2} (the page sent: ${sid})`);
  await other.screenshot({ path: `${out}/2-offline-reopened.png` });
  await fillAndSend(other, '1');
  await other.waitForSelector('#st.wait', { timeout: 15000 });
  const queued = await other.evaluate(() => JSON.parse(localStorage.getItem('sipas:queue') || '[]').length);
  step('offline: both answers wait on the phone', queued === 2, `${queued} queued`);
  mode = 'up';
  await context.setOffline(false);
  await other.waitForSelector('#st.ok', { timeout: 30000 });
  await poll('queue empty', () => other.evaluate(() => JSON.parse(localStorage.getItem('sipas:queue') || '[]').length === 0), 30);
  step('offline: both sent once back online, queue empty', true);
  await other.screenshot({ path: `${out}/3-offline-sent.png` });
  await other.close();
  await page.close();
});
await context.close();

// 4. A phone that still runs the previous release's worker gets the new page and worker,
//    and the old release's caches are deleted.
await scenario('an update reaches a phone with an old worker', async () => {
  const phone2 = await browser.newContext(phone);
  const page = await phone2.newPage();
  watch(page, 'update');
  mode = 'old';
  await page.goto(`${site}/s/QNM.TK.TT`);
  await installed(page);
  const before = await cacheNames(page);
  step('the old release keeps its pages in its own cache', JSON.stringify(before) === JSON.stringify([`sipas-survey-${OLD}`]), JSON.stringify(before));
  mode = 'up';
  await page.reload();
  step('the new page reaches the phone through the old worker', (await page.locator('#old-release').count()) === 0);
  const version = await page.evaluate(() => new URL(document.querySelector('script[src]').src).searchParams.get('v'));
  await poll('only the new cache left', async () => JSON.stringify(await cacheNames(page)) === JSON.stringify([`sipas-survey-${version}`]));
  step('the new worker deleted the old caches', true, JSON.stringify(await cacheNames(page)));
  const script = await page.evaluate(() => navigator.serviceWorker.controller && navigator.serviceWorker.controller.scriptURL);
  step('the new worker controls the page', script !== null, String(script));
  mode = 'down';
  await phone2.setOffline(true);
  const res = await page.reload();
  step('offline after the update: the new release of the page is kept',
    res.ok() && (await page.locator('form[data-unit]').count()) === 1 && (await page.locator('#old-release').count()) === 0);
  mode = 'up';
  await phone2.setOffline(false);
  await fillAndSend(page, '2');
  await page.waitForSelector('#st.ok', { timeout: 30000 });
  step('after the update the form is sent', true);
  await page.screenshot({ path: `${out}/4-updated-sent.png` });
  await phone2.close();
});

await browser.close();
proxy.close();
step('no script errors', results.errors.length === 0, results.errors.join('; '));
console.log(JSON.stringify(results, null, 2));
