// The survey page on narrow phones, in Debian's Chromium (playwright-core): both forms, in
// Vietnamese and English, at 320, 360, 390 and 430 px. For every question it measures the
// boxes: all levels on one row or in one column, no label spilling out of its box, no page
// wider than the phone. It also checks that no item code shows, that nothing is chosen
// before the citizen chooses (a quiet "no answer" undoes a choice), that the form says how
// far the citizen is, and runs axe-core. Screenshots go to OUT_DIR.
// Run by the Rust test `browser::the_survey_reads_well_on_narrow_phones...`.
// Usage: node phones.mjs CONFIG_JSON   { "base": "http://127.0.0.1:PORT", "out": "DIR" }
import { axeSource, launch } from './common.mjs';
import { mkdirSync } from 'node:fs';

const { base, out } = JSON.parse(process.argv[2]);
mkdirSync(out, { recursive: true });
const results = { steps: [], errors: [], measured: [] };
function step(name, ok, detail = '') {
  results.steps.push({ name, ok, detail });
  if (!ok) process.exitCode = 1;
}
const browser = await launch();

// Everything measured in the page: one entry per problem found.
function geometry() {
  const problems = [];
  const vw = window.innerWidth;
  if (document.documentElement.scrollWidth > vw) problems.push(`page is ${document.documentElement.scrollWidth}px wide`);
  let rows = 0, columns = 0;
  document.querySelectorAll('form fieldset .o').forEach((o) => {
    const name = o.querySelector('input').name;
    const boxes = [...o.querySelectorAll(':scope > label')].map((l) => l.getBoundingClientRect());
    const sameTop = boxes.every((b) => Math.abs(b.top - boxes[0].top) < 1);
    const sameLeft = boxes.every((b) => Math.abs(b.left - boxes[0].left) < 1 && Math.abs(b.width - boxes[0].width) < 1);
    if (sameTop && boxes.length > 1) rows++;
    else if (sameLeft && boxes.every((b, i) => i === 0 || b.top >= boxes[i - 1].bottom - 1)) columns++;
    else problems.push(`${name}: levels neither on one row nor in one column`);
    o.querySelectorAll(':scope > label').forEach((l) => {
      const box = l.getBoundingClientRect();
      const range = document.createRange();
      range.selectNodeContents(l);
      const text = range.getBoundingClientRect();
      const label = `${name}=${l.querySelector('input').value} "${l.textContent}"`;
      if (l.scrollWidth > l.clientWidth || l.scrollHeight > l.clientHeight) problems.push(`${label} overflows its box`);
      if (text.left < box.left - 0.5 || text.right > box.right + 0.5 || text.top < box.top - 0.5 || text.bottom > box.bottom + 0.5)
        problems.push(`${label} spills out of its box`);
      if (box.right > vw || box.left < 0) problems.push(`${label} is off the screen`);
      if (box.height < 44) problems.push(`${label} is only ${box.height}px high`);
    });
  });
  return { problems, rows, columns };
}

const forms = [['sipas-2017', ''], ['sipas-2023', 'form=sipas-2023']];
for (const width of [320, 360, 390, 430]) {
  for (const [form, param] of forms) {
    for (const lang of ['vi', 'en']) {
      // A phone of its own: no draft kept from another page.
      const context = await browser.newContext({ viewport: { width, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1, locale: 'vi-VN' });
      const query = [param, lang === 'en' ? 'lang=en' : ''].filter(Boolean).join('&');
      const page = await context.newPage();
      page.setDefaultTimeout(5000);
      page.on('pageerror', (e) => results.errors.push(`${form} ${lang} ${width}: ${e.message}`));
      try {
        await page.goto(`${base}/s/QNM.TK.AM${query ? `?${query}` : ''}`);
        const label = `${form} ${lang} ${width}px`;
        const g = await page.evaluate(geometry);
        results.measured.push({ page: label, rows: g.rows, columns: g.columns });
        step(`${label}: every scale on one row or one column, nothing spills`, g.problems.length === 0, g.problems.slice(0, 8).join('; '));

        // No item code in what the citizen reads.
        const codes = await page.$$eval('form input[type=radio], form input[type=checkbox]',
          (els) => [...new Set(els.map((e) => e.name).filter((n) => /^[A-Z]/.test(n)))]);
        const text = await page.evaluate(() => document.body.innerText);
        const shown = codes.filter((c) => new RegExp(`(^|[^\\p{L}\\p{N}_])${c}([^\\p{L}\\p{N}_]|$)`, 'u').test(text));
        step(`${label}: no item code shown`, codes.length > 0 && shown.length === 0, shown.join(' '));

        if (width === 320) {
          // Nothing chosen before the citizen chooses; "no answer" shows, quietly, after.
          const checked = await page.$$eval('form input:checked', (els) => els.length);
          step(`${label}: nothing is chosen on a new page`, checked === 0, `${checked} checked`);
          const first = codes[0];
          const quiet = page.locator(`label.na:has(input[name="${first}"])`);
          step(`${label}: no "no answer" control before a choice`, !(await quiet.isVisible()));
          await page.check(`input[name="${first}"][value="4"], input[name="${first}"][value="2"] >> nth=0`);
          const quietBox = await quiet.boundingBox();
          const levelBox = await page.locator(`.o label:has(input[name="${first}"])`).first().boundingBox();
          step(`${label}: "no answer" shows after a choice, smaller than a level`,
            quietBox !== null && quietBox.height < levelBox.height && quietBox.width < levelBox.width * 5, JSON.stringify({ quietBox, levelBox }));
          await quiet.click();
          const still = await page.$$eval(`input[name="${first}"]:checked`, (els) => els.map((e) => e.value));
          step(`${label}: "no answer" undoes the choice`, still.length === 1 && still[0] === '', JSON.stringify(still));

          // How far: numbered parts without a script, a live count with it (also offline).
          const parts = await page.$$eval('h2 .pn', (els) => els.map((e) => e.textContent));
          const total = parts.length;
          step(`${label}: parts are numbered`, total >= 2 && parts.every((p, i) => p.endsWith(`${i + 1}/${total}`)), parts.join(', '));
          step(`${label}: the size is told up front`, (await page.textContent('#size')).startsWith(`${codes.length} `), await page.textContent('#size'));
          await context.setOffline(true);
          for (const c of codes.slice(1, 4)) await page.check(`input[name="${c}"] >> nth=0`);
          const progress = await page.textContent('#pg');
          const n = codes.length;
          const expected = lang === 'vi' ? `Đã trả lời 3/${n} câu · còn ${n - 3}` : `Answered 3 of ${n} · ${n - 3} left`;
          step(`${label}: live count of answered questions, offline too`, (await page.isVisible('#pg')) && progress === expected, progress);
          await context.setOffline(false);
          await page.evaluate(axeSource);
          const axe = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
          step(`${label}: axe-core finds no violations`, axe.violations.length === 0,
            axe.violations.map((v) => `${v.id}: ${v.nodes.length}`).join('; '));
        }

        const name = `${form}-${lang}-${width}`;
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.screenshot({ path: `${out}/${name}-top.png` });
        await page.locator('form fieldset .o').nth(2).scrollIntoViewIfNeeded();
        await page.evaluate(() => window.scrollBy(0, -120));
        await page.screenshot({ path: `${out}/${name}-items.png` });
        await page.locator('form fieldset .o').last().scrollIntoViewIfNeeded();
        await page.screenshot({ path: `${out}/${name}-end.png` });
      } catch (e) {
        step(`${form} ${lang} ${width}px`, false, e.message.split('\n')[0]);
      }
      await context.close();
    }
  }
}
await browser.close();
step('no script errors', results.errors.length === 0, results.errors.join('; '));
console.log(JSON.stringify(results, null, 2));
