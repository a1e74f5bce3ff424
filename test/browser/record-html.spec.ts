import { test, expect, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
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

/**
 * How a coverage status reads on the page, written out here rather than taken from the renderer, so swapped
 * labels fail. Any other string field is shown as it is in record.json.
 */
const COVERAGE_LABEL: Record<string, string> = {
  ran: 'ran',
  due: 'due (period not over)',
  missing: 'GAP: never ran',
  stale: 'GAP: ran only before',
  incomplete: 'GAP: only aborted runs',
};
const shownString = (path: string, value: string) => (/^coverage\.items\.\d+\.status$/.test(path) ? COVERAGE_LABEL[value] : value);

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
      // data-value is written from the same record.json; what a person reads is the text.
      expect(f.text.trim(), `${f.path}: shown text`).toBe(shownString(f.path, expected));
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
  // The strings a reader goes by that carry no data-field: each run's drill, scenario and status in its heading,
  // and each finding's severity and title in its row, in the record's order.
  for (const run of record.runs as Array<{ id: string; drill: string; scenario: string; status: string }>) {
    await expect(page.locator(`section.run[data-run="${run.id}"] h3`)).toContainText(
      `${run.drill} / ${run.scenario} ${run.status.toUpperCase()}`,
    );
  }
  const findingRows = page.locator('#findings tbody tr');
  await expect(findingRows).toHaveCount(record.findings.length);
  for (const [i, f] of (record.findings as Array<{ id: string; severity: string; title: string }>).entries()) {
    const cells = findingRows.nth(i).locator('td');
    await expect(cells.nth(0)).toHaveText(f.id);
    await expect(cells.nth(1)).toHaveText(f.severity);
    await expect(cells.nth(2)).toContainText(f.title);
  }

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
    series: { points: Array<{ p50Ms: number | null }> };
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
    // A line drawn from real points: one vertex per point with a p50 (a second with answers), none dropped or invented.
    const vertices = await latency
      .locator('polyline[data-series="p50"]')
      .evaluateAll((ls) => ls.reduce((n, l) => n + (l.getAttribute('points') ?? '').trim().split(/\s+/).filter(Boolean).length, 0));
    expect(vertices, `${run.id} p50 vertices`).toBe(run.series.points.filter((p) => p.p50Ms !== null).length);
  }
  // At least one run of the example injected a fault and recovered: the marks are really there.
  await expect(page.locator('svg.chart.latency g.mark[data-mark="fault-injected"]').first()).toBeVisible();
  await expect(page.locator('svg.chart.latency g.mark[data-mark="recovered"]').first()).toBeVisible();
  expect(consoleErrors).toEqual([]);
  expect(external).toEqual([]);
});

test('the page prints: the PDF written by drill record --pdf through Chromium is a real PDF', async () => {
  const file = join(DIR, 'record.pdf');
  const pdf = readFileSync(file);
  expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  // Read back as text (poppler-utils, installed by test/setup.ts): an error page or a blank print is a valid PDF too,
  // but it has neither the title nor the headline, and the record (summary, coverage, findings, a section and two
  // charts per run) does not fit on one page.
  const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
  expect(text).toContain(`Drill record ${QUARTER}`);
  expect(text).toContain(record.summary.headline.replace(/\s+/g, ' '));
  const pages = Number(/^Pages:\s+(\d+)$/m.exec(execFileSync('pdfinfo', [file], { encoding: 'utf8' }))?.[1]);
  expect(pages).toBeGreaterThanOrEqual(2);
});
