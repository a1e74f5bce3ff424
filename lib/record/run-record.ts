import type { DataClass, Drill, ScenarioEntry, Tier } from '../config/types.ts';
import type { LoadSummary, RequestLog } from '../load/types.ts';
import type { Mark } from '../scenario/define.ts';
import { createRequestLog, summarize } from '../measure/summary.ts';
import { downtimeMs, findRecovery, outageIntervals, recoveryMethod, requestSpacingMs, type FailureKinds } from '../measure/recovery.ts';
import { PHASES, markMs, phaseSelection, selectionHistogram, phaseSummaries, type PhaseName, type PhaseSummary } from '../measure/phases.ts';
import { scoreRpo, scoreRto, scoreSlos, seconds, type RpoMeasurement, type RpoResult, type RtoResult, type SloResult } from '../score/objectives.ts';
import { availabilityTarget, errorBudget, type ErrorBudget } from '../score/budget.ts';
import { deriveFindings, type Finding } from '../score/findings.ts';
import { verdict, type AbortKind, type RunStatus } from '../score/verdict.ts';
import { formatSeconds } from '../score/format.ts';
import { sloChecks, sloName } from '../score/slo.ts';
import { redact, redactSecrets } from '../util/secrets.ts';


/** A probe's outcome as the engine recorded it. */
export interface ProbeOutcome {
  name: string;
  ok: boolean;
  detail: string;
  at: string;
  /** A recovery probe whose failure polling cannot change (a restore that failed its checks). */
  final?: boolean;
}

/** One action and its rollback as the engine recorded them (the engine's ActionFact fits). */
export interface ActionInput {
  name: string;
  description: string;
  startedAt: string | null;
  endedAt: string | null;
  status: 'done' | 'failed' | 'not-run';
  targets: string[];
  error?: string;
  rollback: {
    description: string;
    status: 'done' | 'failed' | 'none' | 'not-run';
    detail?: string;
    error?: string;
    startedAt?: string;
    endedAt?: string;
  };
}

export interface EnvironmentInput {
  harnessVersion: string;
  node: string;
  platform: string;
  [extra: string]: unknown;
}

/**
 * What the engine hands in when a run ends: its RunFacts plus the environment (and, for scenarios
 * that write data, the write ledger's RPO measurement). Everything else is derived here, so a run
 * can be re-scored offline from run.json's marks and requests.tsv.
 */
export interface RunRecordInput {
  id: string;
  drill: Pick<Drill, 'name' | 'policy' | 'target'>;
  entry: Pick<ScenarioEntry, 'name' | 'scenario' | 'tier' | 'dataClass' | 'timeoutMs'>;
  /** The opened target's details (kind, URLs, lab dir...); secrets are removed here. */
  targetDetails: Record<string, unknown>;
  startedAt: string;
  endedAt: string;
  /** Wall-clock epoch ms of run time 0, to turn run-relative ms into ISO times. */
  epochMs: number;
  marks: Mark[];
  actions: ActionInput[];
  /** The scenario's recovery check (`recovery.until`), last outcome; null when it has none or never ran. */
  recoveryProbe: ProbeOutcome | null;
  verification: ProbeOutcome[];
  /** Verification probes that did not apply to this run, with why. */
  skippedChecks?: { name: string; reason: string }[];
  abort: { kind: AbortKind; message: string } | null;
  harnessError: { message: string } | null;
  load: { log: RequestLog; startMs: number; endMs: number } | null;
  /** From the write ledger or a restore check; absent or null when the scenario writes no data. */
  rpo?: RpoMeasurement | null;
  environment: EnvironmentInput;
}

export interface ActionRecord {
  name: string;
  description: string;
  startedAt: string | null;
  endedAt: string | null;
  status: 'done' | 'failed' | 'not-run';
  targets: string[];
  error: string | null;
  rollback: {
    status: 'done' | 'failed' | 'none' | 'not-run';
    description: string;
    detail: string | null;
    error: string | null;
    startedAt: string | null;
    endedAt: string | null;
  };
}

export interface VerificationResult {
  met: boolean | null;
  probes: ProbeOutcome[];
  /** Probes that did not apply to this run (e.g. the write ledger read-back when the load sent no token writes), with why. */
  skipped?: { name: string; reason: string }[];
  reason?: string;
}

export interface OutageIntervalRecord {
  startMs: number;
  endMs: number | null;
  startAt: string;
  endAt: string | null;
  durationMs: number | null;
  failed: number;
  kinds: FailureKinds;
}

export interface RecoveryRecord {
  windowSeconds: number;
  resolutionMs: number | null;
  method: string | null;
  downtimeSeconds: number | null;
  outageIntervals: OutageIntervalRecord[];
  /** All intervals found; the list above keeps the first MAX_INTERVALS of a flapping run. */
  outageIntervalCount: number;
  reason?: string;
}

export type PhaseRecord = PhaseSummary & { slo: SloResult[] };

export type LoadRecord = LoadSummary & { reason?: string };

/** run.json. The top-level keys are DESIGN.md's contract plus phases, recovery, abort and exitCode. */
export interface RunRecord {
  schemaVersion: 1;
  id: string;
  drill: string;
  /** The entry's name in the drill: what `drill run --scenario` takes, unique within a drill. */
  scenario: string;
  /** The scenario module under scenarios/ that the entry runs (pod-kill, exec...). */
  scenarioModule: string;
  target: string;
  startedAt: string;
  endedAt: string;
  status: RunStatus;
  tier: Tier;
  dataClass: DataClass;
  marks: Mark[];
  objectives: {
    rto: RtoResult;
    rpo: RpoResult;
    /** SLOs in the baseline and recovery phases: the service's promise outside the fault. */
    slo: SloResult[];
    verification: VerificationResult;
  };
  load: LoadRecord;
  errorBudget: ErrorBudget;
  actions: ActionRecord[];
  findings: Finding[];
  environment: Record<string, unknown>;
  phases: Record<PhaseName, PhaseRecord | null>;
  recovery: RecoveryRecord;
  abort: { kind: AbortKind | 'harness-error'; reason: string } | null;
  exitCode: number;
}

const MAX_INTERVALS = 1000;
const SUMMARY_LATENCY = new Set(['max', 'med', 'count']);

/** Whether some latency SLO reads an aggregate the summary does not carry, so its span needs a histogram. */
function needsHistogram(drill: RunRecordInput['drill']): boolean {
  return drill.policy.slo.latency.some((t) =>
    t.aggregate.kind === 'percentile' ? ![50, 95, 99].includes(t.aggregate.p) : !SUMMARY_LATENCY.has(t.aggregate.kind),
  );
}

export function buildRunRecord(input: RunRecordInput): RunRecord {
  const { drill, entry } = input;
  const policy = drill.policy;
  const iso = (ms: number) => new Date(input.epochMs + ms).toISOString();
  const log = input.load?.log ?? createRequestLog(1);
  const loadStartMs = input.load?.startMs ?? 0;
  const loadEndMs = input.load?.endMs ?? 0;
  const faultMs = markMs(input.marks, 'fault-injected');
  const recoveredMs = markMs(input.marks, 'recovered');
  // Abort and error messages quote commands and connection errors: they reach the record only redacted.
  const stopReason = input.harnessError ? redactSecrets(`harness error: ${input.harnessError.message}`) : input.abort ? redactSecrets(input.abort.message) : null;
  const notInjected = stopReason ?? 'no fault was injected';

  // Phases and their SLOs.
  const phases: Record<PhaseName, PhaseRecord | null> = { baseline: null, fault: null, recovery: null, run: null };
  if (input.load) {
    const summaries = phaseSummaries(log, input.marks, loadStartMs, loadEndMs);
    const histograms = needsHistogram(drill);
    for (const p of PHASES) {
      const s = summaries[p];
      const h = s && histograms ? selectionHistogram(log, phaseSelection(log, p, s, faultMs)) : undefined;
      phases[p] = s === null ? null : { ...s, slo: scoreSlos(policy.slo, s, p, h) };
    }
  }

  // Recovery: the recovered mark is the engine's decision (SLO window and the scenario's own check);
  // outage intervals and downtime are re-derived from the log up to it.
  const recovery: RecoveryRecord = {
    windowSeconds: seconds(policy.recoveryWindowMs),
    resolutionMs: input.load ? requestSpacingMs(log) : null,
    method: null,
    downtimeSeconds: null,
    outageIntervals: [],
    outageIntervalCount: 0,
  };
  let downtime: number | null = null;
  if (faultMs === null || input.load === null) {
    recovery.reason = input.load === null ? 'no load ran' : `${notInjected}; nothing to recover from`;
  } else {
    recovery.method = recoveryMethod(policy.recoveryWindowMs, recovery.resolutionMs, input.recoveryProbe?.name);
    const until = recoveredMs ?? loadEndMs;
    const scan = outageIntervals(log, faultMs, until);
    downtime = downtimeMs(scan.intervals, until);
    recovery.downtimeSeconds = seconds(downtime);
    recovery.outageIntervalCount = scan.intervals.length;
    recovery.outageIntervals = scan.intervals.slice(0, MAX_INTERVALS).map((iv) => ({
      startMs: round3(iv.startMs),
      endMs: iv.endMs === null ? null : round3(iv.endMs),
      startAt: iso(iv.startMs),
      endAt: iv.endMs === null ? null : iso(iv.endMs),
      durationMs: iv.endMs === null ? null : round3(iv.endMs - iv.startMs),
      failed: iv.failed,
      kinds: iv.kinds,
    }));
    if (recoveredMs === null) recovery.reason = 'the service did not recover: downtime is counted to the end of the load';
  }

  const rto = scoreRto({
    tier: entry.tier,
    policy,
    faultMs,
    recoveredMs,
    method: recovery.method ?? recoveryMethod(policy.recoveryWindowMs, recovery.resolutionMs),
    reason:
      faultMs === null
        ? `${notInjected}; RTO not measured`
        : recoveredMs === null && stopReason
          ? `the run stopped before the service recovered (${stopReason}); RTO not measured`
          : recoveredMs === null && input.recoveryProbe?.final
            ? redactSecrets(`not recovered: ${input.recoveryProbe.detail}`)
          : recoveredMs === null
            ? `not recovered within the scenario timeout of ${formatSeconds(entry.timeoutMs / 1000)}${lateRecoveryNote(input, faultMs)}`
            : undefined,
    interrupted: stopReason !== null,
  });

  const rpo = scoreRpo({
    dataClass: entry.dataClass,
    policy,
    measurement: input.rpo ? redact(input.rpo) : null,
    // A skipped read-back says why better than the default ("writes no data") when the load did write.
    reason: faultMs === null && !input.rpo ? `${notInjected}; RPO not measured` : input.skippedChecks?.[0]?.reason,
  });

  const verification: VerificationResult = { met: null, probes: redact(input.verification), ...(input.skippedChecks?.length ? { skipped: input.skippedChecks } : {}) };
  if (input.verification.length > 0) verification.met = input.verification.every((v) => v.ok);
  else verification.reason = stopReason ? `verification did not run: ${stopReason}` : 'the scenario defines no verification probes';

  const sloOf = (p: PhaseName) => phases[p]?.slo ?? [];
  const objectiveSlo = [...sloOf('baseline'), ...sloOf('recovery')];
  if (faultMs !== null && phases.recovery === null && input.load) {
    const why = stopReason ? `the run stopped before the service recovered (${stopReason})` : 'the service did not recover';
    for (const c of sloChecks(policy.slo)) {
      objectiveSlo.push({ name: sloName(c), kind: c.kind, phase: 'recovery', threshold: c.threshold.source, measured: null, met: null, reason: `${why}: no recovery phase` });
    }
  }

  const actions: ActionRecord[] = redact(
    input.actions.map((a) => ({
      name: a.name,
      description: a.description,
      startedAt: a.startedAt,
      endedAt: a.endedAt,
      status: a.status,
      targets: a.targets,
      error: a.error ?? null,
      rollback: {
        status: a.rollback.status,
        description: a.rollback.description,
        detail: a.rollback.detail ?? null,
        error: a.rollback.error ?? null,
        startedAt: a.rollback.startedAt ?? null,
        endedAt: a.rollback.endedAt ?? null,
      },
    })),
  );

  const load: LoadRecord = phases.run ? runLoad(phases.run) : { ...summarize(log), reason: 'no load ran' };

  const findings = redact(
    deriveFindings({
      tier: entry.tier,
      rto,
      rpo,
      slo: [...sloOf('baseline'), ...sloOf('fault'), ...sloOf('recovery')],
      verification: input.verification,
      actions,
      dropped: load.dropped,
      endedAt: input.endedAt,
      downtimeSeconds: recovery.downtimeSeconds,
    }),
  );

  const v = verdict({
    objectives: { rto, rpo, slo: objectiveSlo, verification },
    rollbackFailed: actions.some((a) => a.rollback.status === 'failed'),
    abort: input.abort,
    harnessError: input.harnessError,
  });

  return {
    schemaVersion: 1,
    id: input.id,
    drill: drill.name,
    scenario: entry.name,
    scenarioModule: entry.scenario,
    target: targetLabel(drill.target, input.targetDetails),
    startedAt: input.startedAt,
    endedAt: input.endedAt,
    status: v.status,
    tier: entry.tier,
    dataClass: entry.dataClass,
    marks: input.marks.map((m) => ({ name: m.name, at: m.at, ms: m.ms })),
    objectives: { rto, rpo, slo: objectiveSlo, verification },
    load,
    errorBudget: errorBudget({ downtimeMs: downtime, availabilityTarget: availabilityTarget(policy.slo), periodMs: policy.budgetPeriodMs }),
    actions,
    findings,
    environment: redact({ ...input.environment, target: input.targetDetails }),
    phases,
    recovery,
    abort: input.abort
      ? { kind: input.abort.kind, reason: redactSecrets(input.abort.message) }
      : input.harnessError
        ? { kind: 'harness-error', reason: redactSecrets(input.harnessError.message) }
        : null,
    exitCode: v.exitCode,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function runLoad(run: PhaseRecord): LoadRecord {
  const { fromMs: _from, toMs: _to, slo: _slo, ...summary } = run;
  return summary;
}

/** For a run that timed out: whether the SLOs held again later, which tells a slow recovery from a stuck one. */
function lateRecoveryNote(input: RunRecordInput, faultMs: number): string {
  if (!input.load) return '';
  const late = findRecovery(input.load.log, {
    faultMs,
    slo: input.drill.policy.slo,
    windowMs: input.drill.policy.recoveryWindowMs,
    nowMs: input.load.endMs,
  });
  if (late.recoveredMs === null) return '';
  const after = late.recoveredMs - faultMs;
  return after > input.entry.timeoutMs
    ? `; the SLOs held again only ${formatSeconds(after / 1000)} after the fault`
    : `; the SLOs held again ${formatSeconds(after / 1000)} after the fault, but the scenario's recovery check did not pass in time`;
}

/** What the record says about the machine that ran the drill (no secrets: it is redacted with the rest). */
export function describeEnvironment(harnessVersion: string, extra: Record<string, unknown> = {}): EnvironmentInput {
  return { harnessVersion, node: process.version, platform: `${process.platform}-${process.arch}`, ...extra };
}

/**
 * Where the run acted, as the SRE names it: a Kubernetes run is known by its context and namespace (the
 * service URL is only where the load went), a blob run by its container and folder.
 */
export function targetLabel(target: Drill['target'], details: Record<string, unknown>): string {
  if (target.kind === 'lab') return 'lab';
  if (target.kind === 'blob') return `blob:${target.container}/${target.prefix}`;
  if (target.kind === 'kubernetes') {
    const context = typeof details.context === 'string' ? details.context : (target.context ?? (target.inCluster ? 'in-cluster' : 'current-context'));
    return `kubernetes:${target.inCluster ? 'in-cluster' : context}/${target.namespace}`;
  }
  return redactSecrets(target.url);
}
