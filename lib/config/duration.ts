/**
 * Durations the way SREs write them: `500ms`, `30s`, `15m`, `1h`, `1d`, and compounds like `1h30m`.
 * A bare number is refused: `10` could be seconds or milliseconds, and a drill is the wrong place to guess.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

export function parseDuration(text: string): number {
  const s = text.trim();
  if (s.length === 0) throw new Error('expected a duration like 500ms, 30s, 15m or 1h, got an empty string');
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (!m) {
      throw new Error(`expected a duration like 500ms, 30s, 15m or 1h, got ${JSON.stringify(text)}`);
    }
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = PART.lastIndex;
  }
  return total;
}

/** The shortest faithful spelling of a duration, for plans and records: 90000 -> `1m30s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  if (rest < 1000) return `${sign}${Math.round(rest * 10) / 10}ms`;
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      parts.push(`${n}${unit}`);
      rest -= n * size;
    }
  }
  if (rest > 0) {
    const sec = Math.round(rest / 10) / 100;
    parts.push(`${sec}s`);
  }
  return sign + parts.join('');
}
