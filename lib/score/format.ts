/** Numbers as people read them in findings, summaries and JUnit messages (records keep the raw values). */

function trim(fixed: string): string {
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

export function formatPercent(ratio: number): string {
  return `${trim((ratio * 100).toFixed(3))}%`;
}

export function formatMs(ms: number): string {
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${trim(ms.toFixed(ms >= 10 ? 1 : 2))} ms`;
}

export function formatSeconds(s: number): string {
  if (s >= 3600) return `${trim((s / 3600).toFixed(2))} h`;
  if (s >= 120) return `${trim((s / 60).toFixed(1))} min`;
  return `${trim(s.toFixed(s >= 10 ? 1 : 2))} s`;
}

/** Three significant digits, no unit (120, 3.33, 0.05): the recovery method's window and request spacing. */
export function formatSignificant(n: number): string {
  return Number(n.toPrecision(3)).toString();
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A measured SLO value in the unit its threshold speaks: `rate` a percentage, `count` a number, anything else ms. */
export function formatSloValue(threshold: string, measured: number | null): string {
  if (measured === null) return 'n/a';
  const t = threshold.trim();
  if (t.startsWith('rate')) return formatPercent(measured);
  if (t.startsWith('count')) return formatCount(measured);
  return formatMs(measured);
}
