import type { DrillKind } from '../../config/types.ts';
import { formatSeconds } from '../../score/format.ts';
import { coverage, isGap, type KnownRun } from './coverage.ts';
import { remediationActions, rollupFindings, severityCounts } from './findings.ts';
import { buildChain, GENESIS } from './integrity.ts';
import { quarterOfInstant, within, type Quarter } from './quarter.ts';
import { emptyStatusCount, rollupScenarios, rollupServices, round3, summarizeRun } from './rollup.ts';
import { trend } from './trend.ts';
import type { ExcludedFile, PolicyRequirement, QuarterlyRecord, RunInput, RunSummary, WindowException } from './types.ts';

/** Everything the record is built from, already read. The builder is pure: same input, same record. */
export interface RecordInput {
  quarter: Quarter;
  generatedAt: string;
  harnessVersion: string;
  source: QuarterlyRecord['source'];
  /** Every readable run the source holds, of any quarter: earlier ones tell coverage when a scenario last ran. */
  runs: readonly RunInput[];
  /** Every file that could not be read; those of other quarters are left out of this record. */
  excluded: readonly ExcludedFile[];
  /** The policy: scenarios of `quarterly` and `monthly` drills. */
  requirements: readonly PolicyRequirement[];
  /** Why there are no requirements, when there are none (no drills folder, no quarterly drill...). */
  policyReason?: string;
  policyDrills: ReadonlyArray<{
    name: string;
    kind: DrillKind | null;
    file: string | null;
    owner: string | null;
    participants: string[];
    approver: string | null;
  }>;
  previous: QuarterlyRecord | null;
  previousReason?: string;
  /** From flags: they win over what drill files say. */
  people: { participants?: string[]; approver?: string; signedBy?: string; signedAt?: string };
  warnings?: readonly string[];
}

const byStart = (a: { record: { startedAt: string; id: string } }, b: { record: { startedAt: string; id: string } }) =>
  Date.parse(a.record.startedAt) - Date.parse(b.record.startedAt) || a.record.id.localeCompare(b.record.id);

const uniq = <T>(xs: T[]) => [...new Set(xs)];

export function buildQuarterlyRecord(i: RecordInput): QuarterlyRecord {
  const q = i.quarter;
  const inQuarter = i.runs.filter((r) => within(r.record.startedAt, q.from, q.to)).sort(byStart);
  const runs = inQuarter.map(summarizeRun);
  const excluded = i.excluded
    .filter((e) => e.dated === null || quarterOfInstant(e.dated)?.id === q.id)
    .slice()
    .sort((a, b) => a.file.localeCompare(b.file));

  // Coverage sees every run known, including those before the quarter and those the previous record listed.
  const known = new Map<string, KnownRun>();
  for (const c of i.previous?.coverage.items ?? []) {
    if (c.lastRunId && c.lastRunAt && c.lastStatus)
      known.set(c.lastRunId, { id: c.lastRunId, drill: c.drill, scenario: c.scenario, startedAt: c.lastRunAt, status: c.lastStatus });
  }
  for (const r of i.runs)
    known.set(r.record.id, {
      id: r.record.id,
      drill: r.record.drill,
      scenario: r.record.scenario,
      startedAt: r.record.startedAt,
      status: r.record.status,
    });
  // A run after the quarter neither fills nor dates its gaps: a record drawn up late must say what was late.
  const items = coverage(
    i.requirements,
    [...known.values()].filter((k) => Date.parse(k.startedAt) < Date.parse(q.to)),
    q,
    i.generatedAt,
  );
  const gaps = items.filter(isGap);

  const previousKeys = new Set((i.previous?.findings ?? []).map((f) => f.key));
  const findings = rollupFindings(inQuarter, gaps, q, previousKeys);
  const actions = remediationActions(findings);

  const scenarios = rollupScenarios(runs);
  const services = rollupServices(runs, q.months);

  const byStatus = emptyStatusCount();
  for (const r of runs) byStatus[r.status]++;
  const rtos = runs.map((r) => r.rto.measuredSeconds).filter((x): x is number => x !== null);
  const sum = (f: (r: (typeof runs)[number]) => number | null) => runs.reduce((s, r) => s + (f(r) ?? 0), 0);
  const counts = severityCounts(findings);
  const summary: QuarterlyRecord['summary'] = {
    runs: runs.length,
    byStatus,
    scenarios: scenarios.length,
    rtoMet: runs.filter((r) => r.rto.met === true).length,
    rtoMissed: runs.filter((r) => r.rto.met === false).length,
    rtoWorstSeconds: rtos.length ? Math.max(...rtos) : null,
    rpoMet: runs.filter((r) => r.rpo.met === true).length,
    rpoMissed: runs.filter((r) => r.rpo.met === false).length,
    lostWrites: sum((r) => r.rpo.lostWrites),
    unknownWrites: sum((r) => r.rpo.unknownWrites),
    downtimeSeconds: round3(sum((r) => r.errorBudget.downtimeSeconds)),
    findings: counts,
    coverageGaps: gaps.length,
    excluded: excluded.length,
    headline: '',
  };
  summary.headline = headline(summary, items.length);

  const contexts = inQuarter.map((r) => r.context);
  const drillNames = uniq([...inQuarter.map((r) => r.record.drill), ...i.policyDrills.map((d) => d.name)]).sort();
  const policyBy = new Map(i.policyDrills.map((d) => [d.name, d]));
  const drills = drillNames.map((name) => {
    const p = policyBy.get(name);
    const ctx = inQuarter.find((r) => r.record.drill === name)?.context;
    return {
      name,
      kind: p?.kind ?? ctx?.drillKind ?? null,
      file: p?.file ?? ctx?.drillFile ?? null,
      owner: p?.owner ?? ctx?.owner ?? null,
    };
  });

  const previousHead = i.previous?.integrity.head ?? null;
  const integrity = buildChain(
    inQuarter.map((r) => ({ id: r.record.id, file: r.file, digest: r.digest })),
    previousHead ?? GENESIS,
    previousHead ? i.previous!.quarter : null,
  );

  const partial: Pick<QuarterlyRecord, 'summary' | 'scenarios'> = { summary, scenarios };
  return {
    schemaVersion: 1,
    kind: 'drill-quarterly-record',
    quarter: q.id,
    period: { from: q.from, to: q.to, months: q.months },
    generatedAt: i.generatedAt,
    harnessVersion: i.harnessVersion,
    source: i.source,
    scope: {
      drills,
      targets: uniq(inQuarter.map((r) => r.record.target)).sort(),
      services: uniq(
        contexts
          .map((c) => c.service)
          .filter((s) => s !== null)
          .map((s) => JSON.stringify(s)),
      )
        .map((s) => JSON.parse(s) as QuarterlyRecord['scope']['services'][number])
        .sort((a, b) => a.name.localeCompare(b.name)),
      databases: uniq(inQuarter.flatMap((r) => databasesOf(r))).sort(),
      backupSets: uniq(inQuarter.flatMap((r) => backupSetsOf(r))).sort(),
    },
    people: {
      participants: i.people.participants?.length
        ? i.people.participants
        : uniq([...contexts.flatMap((c) => c.participants), ...i.policyDrills.flatMap((d) => d.participants)]).sort(),
      approver:
        i.people.approver ??
        uniq([...contexts.map((c) => c.approver), ...i.policyDrills.map((d) => d.approver)].filter((a): a is string => !!a))[0] ??
        null,
      owners: uniq(drills.map((d) => d.owner).filter((o): o is string => !!o)).sort(),
    },
    signOff: {
      approver: i.people.approver ?? null,
      signedBy: i.people.signedBy ?? null,
      signedAt: i.people.signedAt ?? null,
      statement: `I have reviewed the ${q.id} drill record, its findings and remediation actions.`,
    },
    summary,
    scenarios,
    services,
    runs,
    findings,
    windowExceptions: windowExceptions(runs),
    actions,
    trend: trend(previousQuarterId(q), i.previous, partial, i.previousReason),
    coverage: {
      requirements: i.requirements.length,
      items,
      gaps: gaps.length,
      ...(i.requirements.length === 0
        ? { reason: i.policyReason ?? 'no drill of kind quarterly or monthly found: nothing is required' }
        : {}),
    },
    excluded,
    warnings: [...(i.warnings ?? [])],
    integrity,
  };
}

function previousQuarterId(q: Quarter): string {
  return q.q === 1 ? `${q.year - 1}-Q4` : `${q.year}-Q${q.q - 1}`;
}

function headline(s: QuarterlyRecord['summary'], required: number): string {
  if (s.runs === 0)
    return `No drill runs in the quarter${s.coverageGaps ? `; ${s.coverageGaps} required drills or restore tests missed` : ''}.`;
  const parts = [
    `${s.runs} run${s.runs === 1 ? '' : 's'} of ${s.scenarios} scenario${s.scenarios === 1 ? '' : 's'}: ${s.byStatus.passed} passed, ${s.runs - s.byStatus.passed} not`,
  ];
  const measured = s.rtoMet + s.rtoMissed;
  if (measured > 0)
    parts.push(`RTO met in ${s.rtoMet} of ${measured}${s.rtoWorstSeconds !== null ? `, worst ${formatSeconds(s.rtoWorstSeconds)}` : ''}`);
  parts.push(s.lostWrites > 0 ? `${s.lostWrites} acknowledged writes lost` : 'no acknowledged write lost');
  parts.push(`${formatSeconds(s.downtimeSeconds)} downtime`);
  parts.push(required > 0 ? `${s.coverageGaps} coverage gap${s.coverageGaps === 1 ? '' : 's'}` : 'no coverage policy');
  const f = (['SEV1', 'SEV2', 'SEV3', 'SEV4'] as const).filter((k) => s.findings[k] > 0).map((k) => `${s.findings[k]} ${k}`);
  parts.push(f.length ? `findings: ${f.join(', ')}` : 'no findings');
  return parts.join('; ') + '.';
}

/** Databases a run touched, as `target: host:port/db`, from the redacted environment. */
function databasesOf(r: RunInput): string[] {
  const t = (r.record.environment?.target ?? {}) as Record<string, unknown>;
  const pg = t.postgres as { host?: unknown; port?: unknown; database?: unknown } | undefined;
  if (pg && typeof pg.database === 'string') return [`PostgreSQL ${pg.database} (${r.record.target})`];
  return r.record.dataClass === 'database' && r.record.objectives.rpo.method
    ? [`${r.record.dataClass} of ${r.context.service?.name ?? r.record.target}`]
    : [];
}

/** Backup sets a run used: the Blob container/prefix of its target and the backups its actions restored. */
function backupSetsOf(r: RunInput): string[] {
  const out: string[] = [];
  const t = (r.record.environment?.target ?? {}) as Record<string, unknown>;
  if (t.kind === 'blob' && typeof t.container === 'string')
    out.push(`blob://${t.container}${typeof t.prefix === 'string' && t.prefix ? `/${t.prefix}` : ''}`);
  for (const a of r.record.actions ?? []) {
    for (const target of a.targets) {
      // blob-restore names its target `<backup folder> (taken <time>) -> scratch cluster in <dir>`.
      const m = /^(.+?) \(taken [^)]+\)/.exec(target);
      if (m) out.push(m[1]!);
      else if (/^blob:\/\//.test(target)) out.push(target);
    }
  }
  return out;
}

function windowExceptions(runs: readonly RunSummary[]): WindowException[] {
  return runs
    .filter((r) => r.window && (r.window.override || !r.window.noticeInTime))
    .map((r) => ({
      run: r.id,
      drill: r.drill,
      scenario: r.scenario,
      target: r.target,
      startedAt: r.startedAt,
      override: r.window!.override,
      reason: r.window!.reason,
      noticeGivenAt: r.window!.noticeGivenAt,
      noticeInTime: r.window!.noticeInTime,
    }));
}
