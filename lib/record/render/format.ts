import { formatCount, formatMs, formatPercent, formatSeconds } from '../../score/format.ts';

/** How numbers read in the Markdown and HTML reports; the raw values stay in record.json. */

export const DASH = '–';
export const BLANK = '________________';

export const secs = (s: number | null | undefined): string => (s === null || s === undefined ? DASH : formatSeconds(s));
export const ms = (x: number | null | undefined): string => (x === null || x === undefined ? DASH : formatMs(x));
export const count = (n: number | null | undefined): string => (n === null || n === undefined ? DASH : formatCount(n));
export const pct = (r: number | null | undefined): string => {
  if (r === null || r === undefined) return DASH;
  // A tiny share still reads as spent (0.0004%), never as a flat 0%.
  if (r !== 0 && r < 0.001) return `${Number((r * 100).toPrecision(2))}%`;
  return formatPercent(r);
};
export const met = (m: boolean | null | undefined): string => (m === true ? 'met' : m === false ? 'MISSED' : 'not measured');

/** An SLO's measured value in its threshold's unit. */
export function sloValue(threshold: string, v: number | null): string {
  if (v === null) return DASH;
  const t = threshold.trim();
  if (t.startsWith('rate')) return pct(v);
  if (t.startsWith('count')) return count(v);
  return ms(v);
}

export const day = (iso: string | null | undefined): string => (iso ? iso.slice(0, 10) : DASH);
export const minute = (iso: string | null | undefined): string => (iso ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : DASH);
export const orBlank = (s: string | null | undefined): string => (s && s.trim() ? s : BLANK);
