import type { RunRecord } from '../run-record.ts';
import type { FigureSpread, RunInput, RunSummary, ScenarioRollup, ServiceRollup, SloRollup } from './types.ts';
import { monthOfInstant } from './quarter.ts';

/** Per run, per scenario and per service figures of the quarter. Pure functions over run records. */

export function serviceOf(run: RunInput): string {
  return run.context.service?.name ?? 'unknown service';
}

export function summarizeRun(run: RunInput): RunSummary {
  const r = run.record;
  const slo = Object.values(r.phases ?? {})
    .filter((p): p is NonNullable<typeof p> => p !== null && Array.isArray(p.slo))
    .flatMap((p) => p.slo)
    .filter((s) => s.phase !== 'run')
    .map((s) => ({
      phase: s.phase,
      name: s.name,
      kind: s.kind,
      threshold: s.threshold,
      measured: s.measured,
      met: s.met,
      ...(s.reason ? { reason: s.reason } : {}),
    }));
  return {
    id: r.id,
    file: run.file,
    drill: r.drill,
    drillKind: run.context.drillKind,
    scenario: r.scenario,
    scenarioModule: r.scenarioModule ?? r.scenario,
    service: serviceOf(run),
    target: r.target,
    tier: r.tier,
    dataClass: r.dataClass,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    status: r.status,
    exitCode: r.exitCode,
    marks: r.marks.map((m) => ({ name: m.name, at: m.at, ms: m.ms })),
    rto: { ...r.objectives.rto, resolutionMs: r.recovery?.resolutionMs ?? null, windowSeconds: r.recovery?.windowSeconds ?? 0 },
    rpo: r.objectives.rpo,
    // A run.json from before classes were measured has none.
    otherRpoClasses: (r.objectives.rpoClasses ?? []).filter((c) => c.dataClass !== r.dataClass),
    slo:
      slo.length > 0
        ? slo
        : r.objectives.slo.map((s) => ({
            phase: s.phase,
            name: s.name,
            kind: s.kind,
            threshold: s.threshold,
            measured: s.measured,
            met: s.met,
          })),
    load: {
      scheduled: r.load.scheduled,
      ok: r.load.ok,
      errors: r.load.errors,
      dropped: r.load.dropped,
      availability: r.load.availability,
      p50Ms: r.load.p50Ms,
      p95Ms: r.load.p95Ms,
      p99Ms: r.load.p99Ms,
      maxMs: r.load.maxMs,
    },
    errorBudget: r.errorBudget,
    findings: r.findings.length,
    window: r.window ?? null,
    digest: run.digest,
    series: run.series,
  };
}

export function emptyStatusCount(): Record<RunRecord['status'], number> {
  return { passed: 0, failed: 0, aborted: 0, error: 0 };
}

function spread(values: Array<number | null>): FigureSpread {
  const xs = values.filter((v): v is number => typeof v === 'number');
  return {
    last: values.length > 0 ? (values.at(-1) ?? null) : null,
    min: xs.length ? Math.min(...xs) : null,
    max: xs.length ? Math.max(...xs) : null,
    measured: xs.length,
  };
}

const sumOrNull = (xs: Array<number | null>) => (xs.some((x) => x !== null) ? xs.reduce<number>((s, x) => s + (x ?? 0), 0) : null);

/** Availability is better high; error rates and latency are better low. */
function worstOf(kind: string, values: number[]): number | null {
  if (values.length === 0) return null;
  return kind === 'availability' ? Math.min(...values) : Math.max(...values);
}

/** Runs of one scenario entry of one drill, in start order. */
export function rollupScenario(runs: readonly RunSummary[]): ScenarioRollup {
  const last = runs.at(-1)!;
  const byStatus = emptyStatusCount();
  for (const r of runs) byStatus[r.status]++;
  const slo = new Map<string, SloRollup & { values: number[] }>();
  for (const r of runs) {
    for (const s of r.slo) {
      const key = `${s.phase}\u0000${s.name}`;
      const e = slo.get(key) ?? {
        phase: s.phase,
        name: s.name,
        kind: s.kind,
        threshold: s.threshold,
        judged: 0,
        met: 0,
        worst: null,
        values: [],
      };
      if (s.met !== null) e.judged++;
      if (s.met === true) e.met++;
      if (s.measured !== null) e.values.push(s.measured);
      slo.set(key, e);
    }
  }
  const withMethod = [...runs].reverse();
  return {
    drill: last.drill,
    scenario: last.scenario,
    scenarioModule: last.scenarioModule,
    service: last.service,
    tier: last.tier,
    dataClass: last.dataClass,
    runs: runs.length,
    byStatus,
    lastRun: { id: last.id, startedAt: last.startedAt, status: last.status },
    rto: {
      targetSeconds: last.rto.targetSeconds,
      measured: spread(runs.map((r) => r.rto.measuredSeconds)),
      met: runs.filter((r) => r.rto.met === true).length,
      missed: runs.filter((r) => r.rto.met === false).length,
      method: withMethod.find((r) => r.rto.method)?.rto.method ?? null,
      resolutionMs: withMethod.find((r) => r.rto.resolutionMs !== null)?.rto.resolutionMs ?? null,
      windowSeconds: last.rto.windowSeconds,
    },
    rpo: {
      targetSeconds: last.rpo.targetSeconds,
      measured: spread(runs.map((r) => r.rpo.measuredSeconds)),
      met: runs.filter((r) => r.rpo.met === true).length,
      missed: runs.filter((r) => r.rpo.met === false).length,
      method: withMethod.find((r) => r.rpo.method)?.rpo.method ?? null,
      lostWrites: sumOrNull(runs.map((r) => r.rpo.lostWrites)),
      unknownWrites: sumOrNull(runs.map((r) => r.rpo.unknownWrites)),
    },
    slo: [...slo.values()].map(({ values, ...s }) => ({ ...s, worst: worstOf(s.kind, values) })),
    errorBudget: {
      downtimeSeconds: round3(runs.reduce((s, r) => s + (r.errorBudget.downtimeSeconds ?? 0), 0)),
      consumedRatio: sumOrNull(runs.map((r) => r.errorBudget.consumedRatio)),
    },
  };
}

export function rollupScenarios(runs: readonly RunSummary[]): ScenarioRollup[] {
  const groups = new Map<string, RunSummary[]>();
  for (const r of runs) {
    const key = `${r.drill}\u0000${r.scenario}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map(rollupScenario).sort((a, b) => a.drill.localeCompare(b.drill) || a.scenario.localeCompare(b.scenario));
}

/** Downtime the drills themselves caused, per service and month, against the monthly error budget. */
export function rollupServices(runs: readonly RunSummary[], months: readonly string[]): ServiceRollup[] {
  const groups = new Map<string, RunSummary[]>();
  for (const r of runs) groups.set(r.service, [...(groups.get(r.service) ?? []), r]);
  return [...groups.entries()]
    .map(([service, rs]) => {
      const budget = rs.map((r) => r.errorBudget.monthlyBudgetSeconds).find((b) => b !== null) ?? null;
      const down = (xs: RunSummary[]) => round3(xs.reduce((s, r) => s + (r.errorBudget.downtimeSeconds ?? 0), 0));
      return {
        service,
        tier: rs.at(-1)!.tier,
        runs: rs.length,
        scenarios: new Set(rs.map((r) => `${r.drill}/${r.scenario}`)).size,
        downtimeSeconds: down(rs),
        monthlyBudgetSeconds: budget,
        months: months.map((month) => {
          const d = down(rs.filter((r) => monthOfInstant(r.startedAt) === month));
          return { month, downtimeSeconds: d, consumedRatio: budget ? d / budget : null };
        }),
      };
    })
    .sort((a, b) => a.service.localeCompare(b.service));
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
