import type { RunSummary, SeriesPoint } from '../quarterly/types.ts';
import { ms, pct, secs } from './format.ts';

/**
 * Inline SVG charts, drawn by hand so the report needs no script, no font and no network: it opens
 * from a file, offline, and prints. Every element a reader (or a test) looks for carries a class.
 */

const W = 720;
const H = 230;
const M = { left: 58, right: 14, top: 14, bottom: 34 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n = (x: number) => (Math.round(x * 10) / 10).toString();

/** Marks drawn on the charts; the first two are the ones an auditor asks about. */
const MARK_STYLE: Record<string, { color: string; label: string }> = {
  'fault-injected': { color: '#c62828', label: 'fault injected' },
  recovered: { color: '#2e7d32', label: 'recovered' },
  'outage-detected': { color: '#ef6c00', label: 'outage detected' },
  verified: { color: '#1565c0', label: 'verified' },
};

function niceMax(x: number): number {
  if (x <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const k of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (k * p >= x) return k * p;
  return 10 * p;
}

function frame(
  title: string,
  cls: string,
  runId: string,
  body: string,
  yTicks: Array<{ v: number; label: string }>,
  yMax: number,
  xMax: number,
): string {
  const y = (v: number) => M.top + PH - (v / yMax) * PH;
  const x = (t: number) => M.left + (t / xMax) * PW;
  const grid = yTicks
    .map(
      (t) =>
        `<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${n(y(t.v))}" y2="${n(y(t.v))}"/><text class="tick" x="${M.left - 6}" y="${n(y(t.v) + 4)}" text-anchor="end">${esc(t.label)}</text>`,
    )
    .join('');
  const step = niceMax(xMax / 8);
  const xt: string[] = [];
  for (let t = 0; t <= xMax + 1e-9; t += step)
    xt.push(`<text class="tick" x="${n(x(t))}" y="${H - M.bottom + 16}" text-anchor="middle">${n(t)}</text>`);
  return (
    `<svg class="chart ${cls}" data-run="${esc(runId)}" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg">` +
    `<title>${esc(title)}</title>${grid}${xt.join('')}` +
    `<text class="axis" x="${M.left + PW / 2}" y="${H - 4}" text-anchor="middle">seconds since the run started</text>` +
    `<rect class="plot" x="${M.left}" y="${M.top}" width="${PW}" height="${PH}"/>${body}</svg>`
  );
}

function marksSvg(run: RunSummary, xMax: number): string {
  const x = (t: number) => M.left + (Math.min(Math.max(t, 0), xMax) / xMax) * PW;
  return run.marks
    .filter((m) => MARK_STYLE[m.name])
    .map((m, i) => {
      const s = MARK_STYLE[m.name]!;
      const xx = n(x(m.ms / 1000));
      return `<g class="mark" data-mark="${esc(m.name)}"><line x1="${xx}" x2="${xx}" y1="${M.top}" y2="${M.top + PH}" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="5 3"/><text x="${xx}" y="${M.top + 11 + (i % 3) * 11}" dx="3" fill="${s.color}">${esc(s.label)}</text></g>`;
    })
    .join('');
}

function polyline(
  points: SeriesPoint[],
  pick: (p: SeriesPoint) => number | null,
  x: (t: number) => number,
  y: (v: number) => number,
  cls: string,
  color: string,
  dash = '',
): string {
  // A second with no answers breaks the line rather than drawing a fake zero.
  const segs: string[][] = [[]];
  for (const p of points) {
    const v = pick(p);
    if (v === null) {
      if (segs.at(-1)!.length) segs.push([]);
      continue;
    }
    segs.at(-1)!.push(`${n(x(p.t))},${n(y(v))}`);
  }
  return segs
    .filter((s) => s.length)
    .map(
      (s) =>
        `<polyline class="series ${cls}" data-series="${cls}" points="${s.join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    )
    .join('');
}

function xMaxOf(run: RunSummary): number {
  const lastT = run.series.points.at(-1)?.t ?? 0;
  const lastMark = Math.max(0, ...run.marks.map((m) => m.ms / 1000));
  return Math.max(1, lastT + run.series.resolutionSeconds, lastMark);
}

/** `p(95)<500ms` -> { label, ms } for latency SLO lines. */
export function latencyThreshold(threshold: string): { p: string; ms: number } | null {
  const m = /^\s*(p\(\d+(?:\.\d+)?\)|avg|med|max)\s*<=?\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$/.exec(threshold);
  if (!m) return null;
  return { p: m[1]!, ms: Number(m[2]) * (m[3] === 's' ? 1000 : 1) };
}

export function latencyChart(run: RunSummary): string {
  const pts = run.series.points;
  const slos = [
    ...new Map(run.slo.filter((s) => s.kind === 'latency').map((s) => [s.threshold, latencyThreshold(s.threshold)])).entries(),
  ].filter((e): e is [string, { p: string; ms: number }] => e[1] !== null);
  const dataMax = Math.max(0, ...pts.flatMap((p) => [p.p50Ms ?? 0, p.p95Ms ?? 0, p.p99Ms ?? 0]));
  // Show the SLO lines unless one is far above the data: then it would flatten the curves to nothing.
  const shown = slos.filter(([, s]) => s.ms <= Math.max(dataMax * 3, 1));
  const yMax = niceMax(Math.max(dataMax, ...shown.map(([, s]) => s.ms), 1) * 1.05);
  const xMax = xMaxOf(run);
  const x = (t: number) => M.left + (t / xMax) * PW;
  const y = (v: number) => M.top + PH - (Math.min(v, yMax) / yMax) * PH;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => ({ v: f * yMax, label: ms(f * yMax) }));
  const sloLines = slos
    .map(([thr, s]) => {
      const off = s.ms > yMax;
      const yy = n(y(s.ms));
      return `<g class="slo" data-slo="${esc(thr)}"${off ? ' data-offscale="true"' : ''}><line x1="${M.left}" x2="${W - M.right}" y1="${yy}" y2="${yy}" stroke="#6a1b9a" stroke-width="1" stroke-dasharray="2 3"/><text x="${W - M.right - 4}" y="${Number(yy) - 3}" text-anchor="end" fill="#6a1b9a">SLO ${esc(thr)}${off ? ' (above scale)' : ''}</text></g>`;
    })
    .join('');
  const body =
    polyline(pts, (p) => p.p50Ms, x, y, 'p50', '#1e88e5') +
    polyline(pts, (p) => p.p95Ms, x, y, 'p95', '#fb8c00') +
    polyline(pts, (p) => p.p99Ms, x, y, 'p99', '#8e24aa', '4 2') +
    sloLines +
    marksSvg(run, xMax);
  return frame(`Latency p50/p95/p99 per second, run ${run.id}`, 'latency', run.id, body, ticks, yMax, xMax);
}

/** `rate<0.1%` -> 0.001 */
export function errorRateThreshold(threshold: string): number | null {
  const m = /^\s*rate\s*<=?\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(threshold);
  return m ? Number(m[1]) / 100 : null;
}

export function errorChart(run: RunSummary): string {
  const pts = run.series.points;
  const slo = run.slo.find((s) => s.kind === 'errors' && errorRateThreshold(s.threshold) !== null);
  const limit = slo ? errorRateThreshold(slo.threshold)! : null;
  const dataMax = Math.max(0, ...pts.map((p) => p.errorRate ?? 0));
  const yMax = niceMax(Math.max(dataMax * 1.05, limit ?? 0, 0.01));
  const xMax = xMaxOf(run);
  const x = (t: number) => M.left + (t / xMax) * PW;
  const y = (v: number) => M.top + PH - (v / yMax) * PH;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => ({ v: f * yMax, label: pct(f * yMax) }));
  const sloLine =
    slo && limit !== null
      ? `<g class="slo" data-slo="${esc(slo.threshold)}"><line x1="${M.left}" x2="${W - M.right}" y1="${n(y(limit))}" y2="${n(y(limit))}" stroke="#6a1b9a" stroke-dasharray="2 3"/><text x="${W - M.right - 4}" y="${n(y(limit) - 3)}" text-anchor="end" fill="#6a1b9a">SLO errors ${esc(slo.threshold)}</text></g>`
      : '';
  const body = polyline(pts, (p) => p.errorRate, x, y, 'error-rate', '#d32f2f') + sloLine + marksSvg(run, xMax);
  return frame(`Error rate per second (errors and dropped / scheduled), run ${run.id}`, 'errors', run.id, body, ticks, yMax, xMax);
}

/** Measured against target as two bars on one scale; a missing measurement says why instead of a bar. */
export function objectiveBars(run: RunSummary): string {
  const rows: Array<{ key: 'rto' | 'rpo'; label: string; target: number; measured: number | null; met: boolean | null; reason?: string }> =
    [
      {
        key: 'rto',
        label: 'RTO',
        target: run.rto.targetSeconds,
        measured: run.rto.measuredSeconds,
        met: run.rto.met,
        reason: run.rto.reason,
      },
      {
        key: 'rpo',
        label: 'RPO',
        target: run.rpo.targetSeconds,
        measured: run.rpo.measuredSeconds,
        met: run.rpo.met,
        reason: run.rpo.reason,
      },
    ];
  const BW = 720;
  const left = 50;
  const width = BW - left - 230;
  const rowH = 44;
  const parts = rows.map((r, i) => {
    const top = 8 + i * rowH;
    const scale = Math.max(r.target, r.measured ?? 0) || 1;
    const tw = (r.target / scale) * width;
    const color = r.met === false ? '#c62828' : '#2e7d32';
    const measuredBar =
      r.measured === null
        ? `<text class="reason" x="${left + 4}" y="${top + 31}">not measured${r.reason ? `: ${esc(r.reason.length > 80 ? r.reason.slice(0, 77) + '…' : r.reason)}` : ''}</text>`
        : `<rect class="measured" x="${left}" y="${top + 22}" width="${n(Math.max(2, (r.measured / scale) * width))}" height="12" fill="${color}"/>`;
    const share = r.measured === null ? '' : ` = ${pct(r.measured / r.target)} of target`;
    return (
      `<g class="objective-bar" data-objective="${r.key}" data-target="${r.target}" data-measured="${r.measured ?? ''}">` +
      `<text x="4" y="${top + 20}" font-weight="bold">${r.label}</text>` +
      `<rect class="target" x="${left}" y="${top + 6}" width="${n(tw)}" height="12" fill="#cfd8dc"/>` +
      measuredBar +
      `<text x="${left + width + 8}" y="${top + 16}">target ${secs(r.target)}</text>` +
      `<text x="${left + width + 8}" y="${top + 33}" fill="${color}">${r.measured === null ? 'not measured' : `measured ${secs(r.measured)}${share}`}</text></g>`
    );
  });
  return `<svg class="chart objectives" data-run="${esc(run.id)}" viewBox="0 0 ${BW} ${8 + rows.length * rowH}" width="100%" role="img" aria-label="RTO and RPO against targets" xmlns="http://www.w3.org/2000/svg"><title>RTO and RPO against targets, run ${esc(run.id)}</title>${parts.join('')}</svg>`;
}
