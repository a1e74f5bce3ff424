/** Calendar quarters in UTC: the record's period, its months, and the quarter before it. */

export interface Quarter {
  /** `2026-Q4` */
  id: string;
  year: number;
  /** 1-4 */
  q: number;
  /** First instant of the quarter, ISO (inclusive). */
  from: string;
  /** First instant of the next quarter, ISO (exclusive). */
  to: string;
  /** `2026-10`, `2026-11`, `2026-12` */
  months: string[];
}

const QUARTER = /^(\d{4})-Q(\d)$/;

/** Null when the text is not a quarter; the caller says why in its own words. */
export function parseQuarter(text: string): Quarter | null {
  const m = QUARTER.exec(text.trim());
  if (!m) return null;
  const year = Number(m[1]);
  const q = Number(m[2]);
  if (q < 1 || q > 4 || year < 2000 || year > 2999) return null;
  return quarterOf(year, q);
}

export function quarterOf(year: number, q: number): Quarter {
  const firstMonth = (q - 1) * 3; // 0-based
  const from = new Date(Date.UTC(year, firstMonth, 1)).toISOString();
  const to = new Date(Date.UTC(year, firstMonth + 3, 1)).toISOString();
  const months = [0, 1, 2].map((i) => monthId(new Date(Date.UTC(year, firstMonth + i, 1))));
  return { id: `${year}-Q${q}`, year, q, from, to, months };
}

export function previousQuarter(q: Quarter): Quarter {
  return q.q === 1 ? quarterOf(q.year - 1, 4) : quarterOf(q.year, q.q - 1);
}

export function quarterOfInstant(iso: string): Quarter | null {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return null;
  const d = new Date(t);
  return quarterOf(d.getUTCFullYear(), Math.floor(d.getUTCMonth() / 3) + 1);
}

export function monthId(d: Date): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

export function monthOfInstant(iso: string): string | null {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : monthId(new Date(t));
}

/** [from, to) of a `YYYY-MM` month, ISO. */
export function monthBounds(month: string): { from: string; to: string } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return { from: new Date(Date.UTC(y, m - 1, 1)).toISOString(), to: new Date(Date.UTC(y, m, 1)).toISOString() };
}

export function within(iso: string, from: string, to: string): boolean {
  const t = Date.parse(iso);
  return t >= Date.parse(from) && t < Date.parse(to);
}

/** Run folders are named `<UTC yyyymmddThhmmssZ>-<scenario>-<id>`: a bad run.json can still be dated by its folder. */
export function instantFromRunId(id: string): string | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(id);
  if (!m) return null;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}
