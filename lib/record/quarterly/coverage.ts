import type { RunRecord } from '../run-record.ts';
import { monthBounds, type Quarter } from './quarter.ts';
import type { CoverageItem, PolicyRequirement } from './types.ts';

/**
 * Coverage: what the policy requires (each scenario of a `quarterly` drill once a quarter, each of a
 * `monthly` drill — the restore tests — once a month) against the runs that happened. A period that
 * has not ended yet is `due`, not a gap: the record can be drawn up mid-quarter.
 */

export interface KnownRun {
  id: string;
  drill: string;
  scenario: string;
  startedAt: string;
  status: RunRecord['status'];
}

export function coverage(
  requirements: readonly PolicyRequirement[],
  runs: readonly KnownRun[],
  quarter: Quarter,
  now: string,
): CoverageItem[] {
  const items: CoverageItem[] = [];
  const nowMs = Date.parse(now);
  for (const req of requirements) {
    const mine = runs
      .filter((r) => r.drill === req.drill && r.scenario === req.scenario)
      .sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt) || a.id.localeCompare(b.id));
    const periods =
      req.cadence === 'quarterly'
        ? [{ id: quarter.id, from: quarter.from, to: quarter.to }]
        : quarter.months.map((m) => ({ id: m, ...monthBounds(m) }));
    for (const p of periods) {
      const from = Date.parse(p.from);
      const to = Date.parse(p.to);
      const inPeriod = mine.filter((r) => Date.parse(r.startedAt) >= from && Date.parse(r.startedAt) < to);
      const before = mine.filter((r) => Date.parse(r.startedAt) < from);
      const last = inPeriod.at(-1) ?? before.at(-1) ?? null;
      // An aborted or errored run never had its recovery judged: it does not cover the requirement.
      const judged = inPeriod.filter((r) => r.status === 'passed' || r.status === 'failed');
      let status: CoverageItem['status'];
      if (judged.length > 0) status = 'ran';
      else if (nowMs < to) status = 'due';
      else if (inPeriod.length > 0) status = 'incomplete';
      else status = before.length > 0 ? 'stale' : 'missing';
      items.push({
        cadence: req.cadence,
        period: p.id,
        drill: req.drill,
        scenario: req.scenario,
        status,
        runs: inPeriod.length,
        lastRunId: last?.id ?? null,
        lastRunAt: last?.startedAt ?? null,
        lastStatus: last?.status ?? null,
        owner: req.owner,
      });
    }
  }
  return items;
}

export function isGap(item: CoverageItem): boolean {
  return item.status === 'missing' || item.status === 'stale' || item.status === 'incomplete';
}

/** The end of a coverage item's period, ISO: due dates of gap findings count from it. */
export function periodEnd(item: Pick<CoverageItem, 'cadence' | 'period'>, quarter: Quarter): string {
  return item.cadence === 'quarterly' ? quarter.to : monthBounds(item.period).to;
}
