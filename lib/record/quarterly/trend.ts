import type { QuarterlyRecord, ScenarioRollup, TrendMetric, Trend } from './types.ts';

/** This quarter against the previous quarter's record.json, metric by metric. */

export function metric(name: string, previous: number | null, current: number | null, better: TrendMetric['better']): TrendMetric {
  let direction: TrendMetric['direction'] = 'n/a';
  if (previous !== null && current !== null) {
    if (Math.abs(current - previous) < 1e-9) direction = 'same';
    else direction = current > previous === (better === 'higher') ? 'better' : 'worse';
  }
  return { name, previous, current, better, direction };
}

type Figures = Pick<QuarterlyRecord, 'summary' | 'scenarios'>;

function passRate(s: QuarterlyRecord['summary']): number | null {
  return s.runs > 0 ? s.byStatus.passed / s.runs : null;
}

function scenarioMetrics(prev: ScenarioRollup | undefined, cur: ScenarioRollup): TrendMetric[] {
  return [
    metric('runs', prev?.runs ?? null, cur.runs, 'higher'),
    metric('worst RTO (s)', prev?.rto.measured.max ?? null, cur.rto.measured.max, 'lower'),
    metric('last RTO (s)', prev?.rto.measured.last ?? null, cur.rto.measured.last, 'lower'),
    metric('lost writes', prev?.rpo.lostWrites ?? null, cur.rpo.lostWrites, 'lower'),
    metric('downtime (s)', prev?.errorBudget.downtimeSeconds ?? null, cur.errorBudget.downtimeSeconds, 'lower'),
  ];
}

export function trend(previousQuarter: string, previous: Figures | null, current: Figures, reason?: string): Trend {
  if (previous === null) {
    return { previousQuarter, available: false, reason: reason ?? `no record for ${previousQuarter}`, overall: [], scenarios: [] };
  }
  const p = previous.summary;
  const c = current.summary;
  const overall = [
    metric('runs', p.runs, c.runs, 'higher'),
    metric('pass rate', passRate(p), passRate(c), 'higher'),
    metric('worst RTO (s)', p.rtoWorstSeconds, c.rtoWorstSeconds, 'lower'),
    metric('RTO missed', p.rtoMissed, c.rtoMissed, 'lower'),
    metric('acknowledged writes lost', p.lostWrites, c.lostWrites, 'lower'),
    metric('downtime (s)', p.downtimeSeconds, c.downtimeSeconds, 'lower'),
    metric('SEV1 + SEV2 findings', p.findings.SEV1 + p.findings.SEV2, c.findings.SEV1 + c.findings.SEV2, 'lower'),
    metric('coverage gaps', p.coverageGaps, c.coverageGaps, 'lower'),
  ];
  const prevBy = new Map(previous.scenarios.map((s) => [`${s.drill}\u0000${s.scenario}`, s]));
  const scenarios = current.scenarios.map((s) => ({
    drill: s.drill,
    scenario: s.scenario,
    metrics: scenarioMetrics(prevBy.get(`${s.drill}\u0000${s.scenario}`), s),
  }));
  return { previousQuarter, available: true, overall, scenarios };
}
