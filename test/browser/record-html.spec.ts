import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { QUARTER, WORK } from './global-setup.ts';

/**
 * record.html opened the way an auditor opens it: from a file, offline. Every figure the page shows is
 * checked against record.json, every run must have its charts with the fault and recovery marks, and
 * the page must neither log an error nor ask the network for anything.
 */

const DIR = join(WORK, 'records', QUARTER);
const record = JSON.parse(readFileSync(join(DIR, 'record.json'), 'utf8'));

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o === null || o === undefined ? undefined : (o as Record<string, unknown>)[k]), obj);
}

/** A shown figure back in the record's units: `2.48 s`, `1.5 min`, `1 h` -> seconds, `30.1 ms` -> ms, `0.076%` -> ratio. */
function parseShown(text: string): { value: number | null; unit: 'seconds' | 'ms' | 'ratio' | 'count' } {
  const t = text.trim();
  if (t === '–') return { value: null, unit: 'count' };
  let m = /^([\d.,]+) (ms|s|min|h)$/.exec(t);
  if (m) {
    const v = Number(m[1]!.replace(/,/g, ''));
    if (m[2] === 'ms') return { value: v, unit: 'ms' };
    return { value: v * (m[2] === 'h' ? 3600 : m[2] === 'min' ? 60 : 1), unit: 'seconds' };
  }
  m = /^([\d.]+)%$/.exec(t);
  if (m) return { value: Number(m[1]) / 100, unit: 'ratio' };
  if (/^[\d,]+$/.test(t)) return { value: Number(t.replace(/,/g, '')), unit: 'count' };
  throw new Error(`unreadable figure ${JSON.stringify(text)}`);
}

async function open(page: Page) {
  const consoleErrors: string[] = [];
  const external: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  // Anything but the file itself is refused and counted: the report must need nothing else.
  await page.context().route(/.*/, (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    external.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(join(DIR, 'record.html')).href, { waitUntil: 'load' });
  return { consoleErrors, external };
}

test('the figures shown equal record.json, and the page loads nothing from outside and logs no error', async ({ page }, testInfo) => {
  const { consoleErrors, external } = await open(page);
  await expect(page.locator('h1')).toHaveText(`Drill record ${QUARTER}`);
  await expect(page.locator('[data-field="summary.headline"]')).toHaveText(record.summary.headline);

  const fields = await page
    .locator('[data-field]')
    .evaluateAll((els) =>
      els.map((e) => ({ path: e.getAttribute('data-field')!, value: e.getAttribute('data-value'), text: e.textContent ?? '' })),
    );
  expect(fields.length).toBeGreaterThan(50);
  let numbers = 0;
  for (const f of fields) {
    if (f.path === 'summary.headline') continue;
    const expected = at(record, f.path);
    expect(expected, `${f.path} exists in record.json`).not.toBeUndefined();
    expect(JSON.parse(f.value ?? 'null'), `${f.path}: data-value`).toEqual(expected);
    if (typeof expected === 'string') {
      continue;
    }
    const shown = parseShown(f.text);
    if (expected === null) {
      expect(shown.value, `${f.path} shown as a dash`).toBeNull();
      continue;
    }
    const x = expected as number;
    expect(shown.value, `${f.path}: shown ${f.text}`).not.toBeNull();
    // The page rounds for people (3 significant digits, tiny percentages to 2): allow that, nothing more.
    const tolerance =
      shown.unit === 'ratio' ? Math.max(Math.abs(x) * 0.05, 0.00005) : shown.unit === 'count' ? 0 : Math.max(Math.abs(x) * 0.01, 0.006);
    expect(Math.abs(shown.value! - x), `${f.path}: shown ${f.text} vs ${x}`).toBeLessThanOrEqual(tolerance);
    numbers++;
  }
  expect(numbers).toBeGreaterThan(40);
  // Counts a manager reads first are shown exactly.
  await expect(page.locator('[data-field="summary.runs"]')).toHaveText(String(record.summary.runs));
  await expect(page.locator('[data-field="summary.coverageGaps"]')).toHaveText(String(record.summary.coverageGaps));
  await expect(page.locator('[data-field="integrity.head"]')).toHaveText(record.integrity.head);
  await expect(page.locator('table.excluded tr')).toHaveCount(record.excluded.length === 0 ? 0 : record.excluded.length + 1);

  const shot = testInfo.outputPath('record.png');
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach('record.png', { path: shot, contentType: 'image/png' });
  expect(consoleErrors).toEqual([]);
  expect(external).toEqual([]);
});

test('every run has its latency and error-rate charts with the fault and recovery marks, SLO lines, and RTO/RPO bars', async ({ page }) => {
  const { consoleErrors, external } = await open(page);
  expect(record.runs.length).toBeGreaterThan(0);
  await expect(page.locator('section.run')).toHaveCount(record.runs.length);
  for (const run of record.runs as Array<{
    id: string;
    marks: Array<{ name: string }>;
    series: { points: unknown[] };
    slo: Array<{ kind: string }>;
  }>) {
    const section = page.locator(`section.run[data-run="${run.id}"]`);
    await expect(section).toHaveCount(1);
    await expect(section.locator('svg.chart.objectives [data-objective="rto"] rect.target')).toHaveCount(1);
    await expect(section.locator('svg.chart.objectives [data-objective="rpo"]')).toHaveCount(1);
    expect(run.series.points.length, `${run.id} has per-second metrics`).toBeGreaterThan(0);
    for (const chart of ['latency', 'errors']) {
      const svg = section.locator(`svg.chart.${chart}[data-run="${run.id}"]`);
      await expect(svg).toHaveCount(1);
      await expect(svg).toBeVisible();
      for (const mark of ['fault-injected', 'recovered']) {
        if (run.marks.some((m) => m.name === mark)) await expect(svg.locator(`g.mark[data-mark="${mark}"] line`)).toHaveCount(1);
      }
      expect(await svg.locator('g.slo').count(), `${run.id} ${chart}: SLO lines`).toBeGreaterThan(0);
    }
    const latency = section.locator('svg.chart.latency');
    for (const p of ['p50', 'p95', 'p99'])
      expect(await latency.locator(`polyline[data-series="${p}"]`).count(), `${run.id} ${p}`).toBeGreaterThan(0);
    expect(await section.locator('svg.chart.errors polyline[data-series="error-rate"]').count()).toBeGreaterThan(0);
    // A line drawn from real points: as many vertices as seconds with answers.
    const vertices = await latency
      .locator('polyline[data-series="p50"]')
      .evaluateAll((ls) => ls.reduce((n, l) => n + (l.getAttribute('points') ?? '').trim().split(/\s+/).length, 0));
    expect(vertices).toBeGreaterThan(5);
  }
  // At least one run of the example injected a fault and recovered: the marks are really there.
  await expect(page.locator('svg.chart.latency g.mark[data-mark="fault-injected"]').first()).toBeVisible();
  await expect(page.locator('svg.chart.latency g.mark[data-mark="recovered"]').first()).toBeVisible();
  expect(consoleErrors).toEqual([]);
  expect(external).toEqual([]);
});

test('the page prints: the PDF written by drill record --pdf through Chromium is a real PDF', async () => {
  const pdf = readFileSync(join(DIR, 'record.pdf'));
  expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  expect(pdf.length).toBeGreaterThan(20_000);
});
