// Lighthouse 12 (mobile profile) on a page, in Debian's Chromium started by playwright-core.
// Prints {"performance": .., "accessibility": ..} and writes the report. COOKIE (optional)
// is sent with every request: a console session or an enrolled kiosk.
// Usage: node lighthouse.mjs URL OUT_DIR [COOKIE]
import { launch } from './common.mjs';
import lighthouse from 'lighthouse';
import { mkdirSync, writeFileSync } from 'node:fs';

const [url, out, cookie] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const port = 9300 + Math.floor(Math.random() * 500);
const browser = await launch([`--remote-debugging-port=${port}`]);
const result = await lighthouse(url, { port, output: 'json', logLevel: 'error', onlyCategories: ['performance', 'accessibility'],
  ...(cookie ? { extraHeaders: { Cookie: cookie } } : {}) });
await browser.close();
writeFileSync(`${out}/lighthouse.json`, result.report);
const scores = {
  performance: Math.round(result.lhr.categories.performance.score * 100),
  accessibility: Math.round(result.lhr.categories.accessibility.score * 100),
  formFactor: result.lhr.configSettings.formFactor,
};
console.log(JSON.stringify(scores));
