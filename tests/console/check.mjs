// Drives StreamGate's web console in a real browser (Debian's Chromium,
// through playwright-core) for tests/console.rs:
//
//   node check.mjs <base-url> <screenshot-dir> <anomalous-metric>
//
// Visits every page at desktop and phone width, records console errors,
// failed requests, charts and their text alternatives, whether the first
// Tab reaches the skip link, and saves screenshots. Then keeps the
// anomalies page open (no reload) until the live refresh shows
// <anomalous-metric> in an anomaly with an anomaly mark on its chart.
// Prints one JSON object with everything it saw; the Rust test judges.

import { chromium } from 'playwright-core';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, outDir, metric] = process.argv.slice(2);
if (!base || !outDir || !metric) {
  console.error('usage: node check.mjs <base-url> <screenshot-dir> <anomalous-metric>');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
rmSync(join(outDir, 'anomalies-page-open'), { force: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

const result = { pages: [], anomaly: null };

async function visit(path, name, viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  const response = await page.goto(base + path, { waitUntil: 'load' });
  const info = await page.evaluate(() => {
    const charts = [...document.querySelectorAll('svg.chart')];
    return {
      title: document.title,
      lang: document.documentElement.lang,
      h1: document.querySelector('h1')?.textContent ?? '',
      current: document.querySelector('nav a[aria-current="page"]')?.textContent ?? '',
      charts: charts.length,
      chartsNamed: charts.filter((c) => c.querySelector('title')?.textContent && c.querySelector('desc')?.textContent).length,
      chartsDrawn: charts.filter((c) => c.querySelector('path.line, circle.mark, text.empty')).length,
      horizontalScroll: document.documentElement.scrollWidth > window.innerWidth + 1,
      mainText: document.querySelector('main')?.innerText.slice(0, 2000) ?? '',
      contrast: lowestContrast(),
    };

    // WCAG contrast ratio of every text element against the first opaque
    // background behind it; the lowest found, and where.
    function lowestContrast() {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length >= 3 && (c.length < 4 || c[3] > 0.9)) return c;
        }
        return [255, 255, 255];
      };
      let lowest = { ratio: 21, where: '' };
      for (const el of document.querySelectorAll('body *')) {
        const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        if (!own || el.closest('svg')) continue;
        const fg = lum(rgb(getComputedStyle(el).color));
        const bg = lum(background(el));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        if (ratio < lowest.ratio) lowest = { ratio, where: `${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.trim().slice(0, 40)}` };
      }
      return lowest;
    }
  });
  await page.keyboard.press('Tab');
  const firstTab = await page.evaluate(() => document.activeElement?.textContent ?? '');
  const shot = join(outDir, `${name}-${viewport.width}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  result.pages.push({ path, width: viewport.width, status: response.status(), errors, firstTab, screenshot: shot, ...info });
  await context.close();
}

const pages = [
  ['/', 'overview'],
  ['/console/forecasts', 'forecasts'],
  ['/console/alerts', 'alerts'],
  [`/console/series?match=${encodeURIComponent(metric)}`, 'series-search'],
  ['/console/anomalies', 'anomalies'],
];
for (const viewport of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
  for (const [path, name] of pages) {
    await visit(path, name, viewport);
  }
}

// The series explorer's first result, opened and watched.
{
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/console/series?match=${encodeURIComponent(metric)}`);
  const link = page.locator('#series a').first();
  const linked = await link.count();
  let view = null;
  if (linked) {
    await Promise.all([page.waitForNavigation(), link.click()]);
    view = await page.evaluate(() => ({
      url: location.pathname + location.search,
      h1: document.querySelector('h1')?.textContent ?? '',
      latest: document.getElementById('latest')?.textContent ?? '',
      charts: document.querySelectorAll('svg.chart').length,
    }));
    await page.screenshot({ path: join(outDir, 'series-view-1280.png'), fullPage: true });
  }
  result.seriesView = { linked, view, errors };
  await context.close();
}

// Live update: the anomalies page, opened once (then the test injects the
// anomaly), shows it when it comes, through the page's own refresh (the page is never reloaded).
{
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  let loads = 0;
  page.on('load', () => { loads += 1; });
  await page.goto(base + '/console/anomalies');
  // Tells the test's sender to start the anomaly now that the page is open.
  writeFileSync(join(outDir, 'anomalies-page-open'), String(Date.now()));
  const selector = `li[data-metric="${metric}"][data-anomalous="true"]`;
  const initiallyPresent = (await page.locator(selector).count()) > 0;
  const started = Date.now();
  let found = false;
  try {
    await page.waitForSelector(selector, { timeout: 45000 });
    found = true;
  } catch (e) {
    errors.push(`waiting for ${selector}: ${e.message}`);
  }
  const details = found
    ? await page.evaluate((sel) => {
        const li = document.querySelector(sel);
        return {
          marks: li.querySelectorAll('svg.chart circle.mark').length,
          band: li.querySelectorAll('svg.chart path.band').length,
          lines: li.querySelectorAll('svg.chart path.line').length,
          text: li.innerText.slice(0, 500),
          updated: document.getElementById('updated')?.textContent ?? '',
        };
      }, selector)
    : null;
  await page.screenshot({ path: join(outDir, 'anomaly-live-1280.png'), fullPage: true });
  result.anomaly = { found, initiallyPresent, waitedMs: Date.now() - started, loads, details, errors };

  // A report made now, while the anomaly lasts, rendered with its chart;
  // the same data as JSON.
  const made = await page.request.post(base + '/api/v1/reports');
  await page.goto(base + '/console/alerts');
  result.report = {
    status: made.status(),
    ...(await page.evaluate(() => {
      const section = document.getElementById('report');
      return {
        present: !!section,
        text: section?.innerText.slice(0, 1000) ?? '',
        charts: section ? section.querySelectorAll('svg.chart').length : 0,
        marks: section ? section.querySelectorAll('svg.chart circle.mark').length : 0,
      };
    })),
  };
  await page.screenshot({ path: join(outDir, 'alerts-report-1280.png'), fullPage: true });
  const json = await (await page.request.get(base + '/api/v1/console/anomalies')).json();
  result.json = {
    analysed: json.analysed,
    first: json.ranked[0]?.series?.metric ?? null,
    history: json.ranked[0]?.history?.length ?? 0,
  };
  await context.close();
}

await browser.close();
console.log(JSON.stringify(result));
