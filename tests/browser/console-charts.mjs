// The console's charts on phones and its printed report, in Debian's Chromium
// (playwright-core). Run by the Rust test `console_charts::...`, which seeds the data.
// Usage: node console-charts.mjs CONFIG_JSON
//   { "base": "http://127.0.0.1:PORT", "email": "...", "password": "...", "out": "DIR",
//     "pages": [["overview", "/console?period=2024"], ...], "report": "/console/units/X/report?period=2024",
//     "footer": ["Phường An Mỹ", "01/01/2024 – 31/12/2024"],
//     "widths": [390, 1366] (default: 320, 360, 390), "expect": {"overview": ["text the page shows"]} }
//   Without "report", no PDF is printed.
// Prints one JSON line: { steps: [{name, ok, detail}], axe: {page: [violations]}, pdf: {pages, text} }.
import { axeSource, launch } from './common.mjs';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

const config = JSON.parse(process.argv[2]);
const { base, out } = config;
mkdirSync(out, { recursive: true });
const results = { steps: [], axe: {}, pdf: {} };
const browser = await launch();

function step(name, ok, detail = '') {
  results.steps.push({ name, ok, detail });
  if (!ok) process.exitCode = 1;
}

// Everything measured on one page, in the browser: horizontal scroll, each chart's box, and
// every pair of text labels (and label/whisker) that overlap by more than half a pixel.
function measure(screen) {
  const box = (e) => e.getBoundingClientRect();
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5
    && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
  const charts = [...document.querySelectorAll('svg.chart')].map((svg, index) => {
    const frame = box(svg);
    const scale = svg.getScreenCTM().a;
    const texts = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim() !== '');
    const whiskers = [...svg.querySelectorAll('.whisker')];
    const problems = [];
    const smallest = Math.min(...texts.map((t) => parseFloat(getComputedStyle(t).fontSize) * scale));
    texts.forEach((t, i) => {
      const a = box(t);
      if (a.left < frame.left - 0.5 || a.right > frame.right + 0.5 || a.top < frame.top - 0.5 || a.bottom > frame.bottom + 0.5) {
        const at = (r) => `${r.left.toFixed(1)},${r.top.toFixed(1)}–${r.right.toFixed(1)},${r.bottom.toFixed(1)}`;
        problems.push(`"${t.textContent}" (${at(a)}) sticks out of the chart (${at(frame)})`);
      }
      texts.slice(i + 1).forEach((u) => {
        if (overlap(a, box(u))) problems.push(`"${t.textContent}" overlaps "${u.textContent}"`);
      });
      whiskers.forEach((w) => {
        if (overlap(a, box(w))) problems.push(`"${t.textContent}" overlaps an interval whisker`);
      });
    });
    return {
      index,
      title: svg.getAttribute('aria-label'),
      left: frame.left,
      right: frame.right,
      texts: texts.length,
      whiskers: whiskers.length,
      smallest,
      problems,
    };
  });
  // Anything that sticks out of the screen, outside a region that scrolls on its own.
  const wide = [...document.querySelectorAll('body *')]
    .filter((e) => !e.closest('.scroll') && !e.closest('svg') && box(e).right > screen + 0.5)
    .map((e) => `${e.tagName.toLowerCase()}${e.className ? '.' + e.className : ''} to ${box(e).right.toFixed(1)}`);
  const scrollWidth = Math.max(document.scrollingElement.scrollWidth, document.body.scrollWidth);
  return { scrollWidth, innerWidth, charts, wide };
}

async function axe(page, label) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  results.axe[label] = r.violations.map((v) => `${v.id}: ${v.nodes.length} node(s) – ${v.help}`);
}

async function signIn(page) {
  await page.goto(`${base}/console/login`);
  await page.fill('input[name=email]', config.email);
  await page.fill('input[name=password]', config.password);
  await Promise.all([page.waitForURL(/\/console$/), page.click('button[type=submit]')]);
}

for (const width of config.widths || [320, 360, 390]) {
  const phone = width < 800;
  const context = await browser.newContext({ viewport: { width, height: 800 }, isMobile: phone, hasTouch: phone, deviceScaleFactor: phone ? 2 : 1 });
  const page = await context.newPage();
  await signIn(page);
  for (const [label, path] of config.pages) {
    await page.goto(base + path);
    if (label.endsWith('-en')) step(`${label} at ${width} px is in English`, (await page.getAttribute('html', 'lang')) === 'en');
    const m = await page.evaluate(measure, width);
    const at = `${label} at ${width} px`;
    // On a phone Chromium widens the layout viewport to content that overflows: innerWidth
    // must still be the screen's.
    step(`${at}: no sideways scroll`, m.scrollWidth <= m.innerWidth && m.innerWidth === width, `scrollWidth ${m.scrollWidth}, innerWidth ${m.innerWidth}`);
    step(`${at}: nothing sticks out of the screen`, m.wide.length === 0, m.wide.slice(0, 5).join('; '));
    step(`${at}: has charts`, m.charts.length > 0, `${m.charts.length}`);
    for (const c of m.charts) {
      const name = `${at}, chart "${c.title}"`;
      step(`${name}: fits the viewport`, c.left >= 0 && c.right <= width, `left ${c.left}, right ${c.right}`);
      step(`${name}: labels do not overlap each other or a whisker`, c.problems.length === 0, c.problems.slice(0, 6).join('; '));
      step(`${name}: smallest label at least 10 px`, c.smallest >= 10, `${c.smallest.toFixed(1)} px over ${c.texts} labels`);
    }
    await page.screenshot({ path: `${out}/${label}-${width}.png`, fullPage: true });
    if (width === 320 || width === 390 || !phone) await axe(page, `${label} at ${width} px`);
    for (const want of (config.expect || {})[label] || []) {
      step(`${at} shows "${want}"`, (await page.textContent('main')).includes(want));
    }
  }
  await context.close();
}

// The printed report: Chromium's own PDF, its text page by page (pdftotext) and PNGs of the
// pages (pdftoppm) to look at.
if (config.report) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  await signIn(page);
  await page.goto(base + config.report);
  await axe(page, 'report');
  const headings = await page.$$eval('main h2', (hs) => hs.map((h) => h.textContent.trim()));
  const file = `${out}/report.pdf`;
  await page.pdf({ path: file, preferCSSPageSize: true, printBackground: true });
  execFileSync('pdftoppm', ['-png', '-r', '50', file, `${out}/report-page`]);
  const pages = execFileSync('pdftotext', ['-layout', file, '-']).toString().split('\f').filter((p) => p.trim() !== '');
  results.pdf = { pages: pages.length, text: pages };
  step('the report prints on more than one page', pages.length > 1, `${pages.length} pages`);
  pages.forEach((text, i) => {
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const footer = lines.slice(-3).join(' ');
    const number = config.footer_page.replace('{n}', i + 1).replace('{total}', pages.length);
    for (const want of [...config.footer, number]) {
      step(`page ${i + 1}: the footer says "${want}"`, footer.includes(want), footer);
    }
    // The last line above the footer must not be a heading whose section starts overleaf.
    const body = lines.filter((l) => !config.footer.some((f) => l.includes(f)));
    const last = body[body.length - 1] || '';
    step(`page ${i + 1}: does not end with a heading`, i === pages.length - 1 || !headings.includes(last), last);
  });
  await context.close();
}

await browser.close();
console.log(JSON.stringify(results));
