// Browser test of the built-in dashboard against a running `teleinfo demo`.
//
//   node tests/browser/dashboard.test.mjs http://127.0.0.1:PORT/ test-output
//
// Drives Debian's chromium (headless) with playwright-core from web/node_modules. Checks that
// every view loads with no console error, that each chart drew data, that a live value changes
// when a frame arrives, that the language switch changes the labels and that the meter selector
// switches data. Writes screenshots and the measured timings to the output directory.
// scripts/test-browser.sh starts the demo and runs this.

import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(root, 'web/package.json'));
const { chromium } = require('playwright-core');

const base = process.argv[2] ?? 'http://127.0.0.1:8080/';
const outDir = process.argv[3] ?? join(root, 'test-output');
const shots = join(outDir, 'screenshots');
mkdirSync(shots, { recursive: true });

const failures = [];
const results = { views: {}, sizes: {} };
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures.push(what);
}

const profile = mkdtempSync(join(tmpdir(), 'teleinfo-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
  locale: 'fr-FR',
  timezoneId: 'Europe/Paris',
});
const page = ctx.pages()[0] ?? await ctx.newPage();
page.setDefaultTimeout(15000);
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
page.on('requestfailed', (r) => {
  // The live stream is cut when the page navigates away: not an error.
  if (!r.url().includes('/live')) consoleErrors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
});
const transfer = new Map();
page.on('requestfinished', async (r) => {
  try {
    const s = await r.sizes();
    const res = await r.response();
    transfer.set(new URL(r.url()).pathname, { body: s.responseBodySize, encoding: res?.headers()['content-encoding'] ?? '' });
  } catch { /* the page went away */ }
});

async function waitReady(view) {
  await page.waitForFunction((v) => document.body.dataset.ready === v, view);
}
async function chartPoints(id) {
  return Number(await page.getAttribute(`#${id}`, 'data-points') ?? 0);
}
async function openView(view) {
  const t0 = Date.now();
  await page.evaluate(() => { delete document.body.dataset.ready; });
  await page.evaluate((v) => {
    // Re-entering the current view does not fire hashchange: fire it ourselves.
    if (location.hash === '#' + v) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = v;
  }, view);
  await waitReady(view);
  return Date.now() - t0;
}

try {
  // First load: the live view, cold (nothing cached).
  const t0 = Date.now();
  await page.goto(base, { waitUntil: 'domcontentloaded' });
  await waitReady('live');
  const first = Date.now() - t0;
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    return { domContentLoaded: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd) };
  });
  results.views.live = { first_load_ms: first, ...nav };
  check(first < 1000, `live view interactive in ${first} ms on first load (< 1000)`);
  check(await page.textContent('nav a[data-view=live]') === 'Direct', 'French by default');
  const meters = await page.$$eval('#meter option', (o) => o.map((x) => x.value));
  check(meters.length === 2, `meter selector lists ${meters.length} meters`);
  check((await page.textContent('#l-papp')).trim() !== '—', `live apparent power shown: ${(await page.textContent('#l-papp')).trim()} VA`);
  await page.waitForFunction(() => Number(document.getElementById('c-live').dataset.points) > 0);
  check(await chartPoints('c-live') > 0, `live chart drew ${await chartPoints('c-live')} points`);
  // A new frame must change the displayed values within a second of its arrival.
  const ts0 = await page.getAttribute('#l-when', 'data-ts');
  const tChange = Date.now();
  await page.waitForFunction((ts) => document.getElementById('l-when').dataset.ts !== ts, ts0, { timeout: 10000 });
  const lag = await page.evaluate(() => Date.now() - Number(document.getElementById('l-when').dataset.receive));
  check(true, `live frame time changed after ${Date.now() - tChange} ms`);
  check(lag < 1000, `frame shown ${lag} ms after the server received it (< 1000)`);
  await page.screenshot({ path: join(shots, 'live-fr.png'), fullPage: true });

  for (const view of ['history', 'energy', 'devices']) {
    const ms = await openView(view);
    results.views[view] = { switch_ms: ms };
    check(ms < 1000, `${view} view interactive in ${ms} ms (< 1000)`);
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(shots, `${view}-fr.png`), fullPage: true });
  }
  await openView('history');
  for (const id of ['c-power', 'c-current']) {
    const p = await chartPoints(id);
    check(p > 0, `history chart ${id} drew ${p} points`);
  }
  // A year of history: the widest preset.
  await openView('history');
  let t1 = Date.now();
  await page.evaluate(() => { delete document.body.dataset.ready; });
  await page.click('[data-preset=year]');
  await page.waitForFunction(() => document.querySelector('[data-preset=year]').getAttribute('aria-pressed') === 'true'
    && Number(document.getElementById('c-power').dataset.points) > 300);
  results.views.history.year_ms = Date.now() - t1;
  check(results.views.history.year_ms < 1000, `history over a year in ${results.views.history.year_ms} ms (< 1000)`);
  check(await page.$('.u-band, #c-power canvas') !== null, 'year chart drawn');
  await page.screenshot({ path: join(shots, 'history-year-fr.png'), fullPage: true });
  // Zoom: drag across the middle of the power chart.
  const box = await page.locator('#c-power .u-over').boundingBox();
  const fromBefore = await page.inputValue('#h-from');
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction((f) => document.getElementById('h-from').value !== f, fromBefore);
  check(true, `zoom changed the range to ${await page.inputValue('#h-from')} – ${await page.inputValue('#h-to')}`);

  await openView('energy');
  check(await chartPoints('c-energy') > 0, `energy chart drew ${await chartPoints('c-energy')} values`);
  const rows = await page.$$eval('#e-table tbody tr', (r) => r.length);
  check(rows >= 28, `energy table has ${rows} daily rows`);
  t1 = Date.now();
  await page.click('[data-period=month]');
  await page.waitForFunction(() => document.querySelectorAll('#e-table tbody tr').length <= 13);
  results.views.energy.months_ms = Date.now() - t1;
  await page.click('[data-unit=eur]');
  await page.waitForFunction(() => document.getElementById('e-table').textContent.includes('€'));
  check(true, 'energy in euros');
  await page.waitForTimeout(200);
  await page.screenshot({ path: join(shots, 'energy-months-eur-fr.png'), fullPage: true });

  await openView('devices');
  const cards = await page.$$eval('#d-list .dev', (d) => d.length);
  check(cards >= 2, `devices view lists ${cards} devices`);
  const diag = await page.$$eval('.diag', (d) => d.map((x) => x.textContent));
  check(diag.some((d) => d.includes('optocoupleur')), 'noisy line diagnosed (optocoupler)');

  // Language switch.
  await page.click('#lang');
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  check(await page.textContent('nav a[data-view=live]') === 'Live', 'English switch changes the labels');
  check((await page.$$eval('.diag', (d) => d.map((x) => x.textContent))).some((d) => d.includes('optocoupler')), 'diagnosis in English');
  await page.screenshot({ path: join(shots, 'devices-en.png'), fullPage: true });
  await openView('live');
  await page.screenshot({ path: join(shots, 'live-en.png'), fullPage: true });

  // Meter selector: the other meter's data replaces the first's.
  const before = { meter: await page.inputValue('#meter'), idx: await page.textContent('#l-idx') };
  const other = meters.find((m) => m !== before.meter);
  await page.evaluate(() => { delete document.body.dataset.ready; });
  await page.selectOption('#meter', other);
  await waitReady('live');
  await page.waitForFunction((i) => document.getElementById('l-idx').textContent !== i && document.getElementById('l-idx').textContent !== '', before.idx);
  check(true, `meter selector switched ${before.meter} → ${other}`);
  const threePhase = await page.$eval('.phases', (t) => !t.classList.contains('one'));
  results.switched_to_three_phase = threePhase;
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, `live-en-${other}.png`), fullPage: true });
  for (const view of ['history', 'energy']) {
    const ms = await openView(view);
    results.views[view].other_meter_ms = ms;
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(shots, `${view}-en-${other}.png`), fullPage: true });
  }
  check(await chartPoints('c-energy') > 0, 'energy chart of the other meter drew data');

  // A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#lang');
  await openView('live');
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, 'live-phone-fr.png'), fullPage: true });
  await openView('energy');
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, 'energy-phone-fr.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `phone layout fits the screen width (overflow ${overflow} px)`);

  // What the page itself weighs on the wire (HTML + JS + CSS, compressed as served).
  let total = 0;
  for (const [path, s] of transfer) {
    if (path === '/' || path.startsWith('/assets/')) {
      results.sizes[path] = s;
      total += s.body;
      check(s.encoding === 'gzip', `${path} served gzipped (${s.body} bytes)`);
    }
  }
  results.sizes.total_bytes = total;
  check(total > 0 && total <= 200 * 1024, `page weighs ${total} bytes gzipped (≤ 200 KB)`);
  check(consoleErrors.length === 0, `no console error${consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''}`);
} catch (e) {
  failures.push(String(e.stack ?? e));
  console.log('FAIL', e);
  await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
results.failures = failures;
writeFileSync(join(outDir, 'browser-results.json'), JSON.stringify(results, null, 2));
console.log(JSON.stringify(results, null, 2));
console.log(failures.length ? `\n${failures.length} FAILED` : '\nall browser checks passed');
process.exit(failures.length ? 1 : 0);
