// Screenshots of the console's overview and of a unit page at phone and laptop widths, in
// Debian's Chromium. Usage: node screenshots.mjs BASE_URL EMAIL PASSWORD UNIT OUT_DIR
import { launch } from './common.mjs';
import { mkdirSync } from 'node:fs';

const [base, email, password, unit, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await launch();
const shots = [];
for (const [name, viewport] of [['phone', { width: 390, height: 844 }], ['laptop', { width: 1366, height: 900 }]]) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  await page.goto(`${base}/console/login`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${base}/console`), page.click('button[type=submit]')]);
  for (const [label, path] of [['overview', '/console'], ['unit', `/console/units/${unit}`]]) {
    await page.goto(base + path);
    const file = `${out}/${label}-${name}.png`;
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  }
  if (errors.length) { console.error(`console errors on ${name}:`, errors); process.exitCode = 1; }
  await context.close();
}
await browser.close();
console.log(`screenshots written to ${out}:`);
for (const s of shots) console.log(`  ${s}`);
