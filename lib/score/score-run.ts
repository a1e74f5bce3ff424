import type { ConfigProblem, Policy, ScenarioEntry } from '../config/types.ts';
import { scoreRpoClasses, type ClassMeasurement, type RpoClassResult } from './rpo-classes.ts';
import { createRequestLog, type LoadSummary, type RequestLog } from '../measure/request-log.ts';
import type { Mark } from '../measure/timeline.ts';
import { summarize } from '../measure/summary.ts';
import { downtimeMs, outageIntervals, requestSpacingMs, type FailureKinds } from '../measure/outage.ts';
import { findRecovery, recoveryMethod } from './recovery.ts';
import {
  PHASES,
  markMs,
  phaseSelection,
  selectionHistogram,
  phaseSummaries,
  type PhaseName,
  type PhaseSummary,
} from '../measure/phases.ts';
import {
  scoreRpo,
  scoreRto,
  scoreSlos,
  seconds,
  type RpoMeasurement,
  type RpoResult,
  type RtoResult,
  type SloResult,
} from './objectives.ts';
import { availabilityTarget, errorBudget, type ErrorBudget } from './budget.ts';
import { deriveFindings, type Finding } from './findings.ts';
import { verdict, type AbortKind, type RunStatus } from './verdict.ts';
import { formatSeconds } from './format.ts';
import { sloChecks, sloName } from './slo.ts';
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

/** What scoring reads of an action: whether its rollback failed, and why. */
export interface ActionToScore {
  name: string;
  rollback: { status: 'done' | 'failed' | 'none' | 'not-run'; error?: string };
}

/**
 * The facts of one run that its score depends on: the engine's RunFacts satisfy it. A run can be
 * re-scored offline from run.json's marks and requests.tsv because nothing else goes in.
 */
export interface RunFactsToScore {
  drill: { policy: Policy; warnings?: readonly ConfigProblem[] };
  entry: Pick<ScenarioEntry, 'tier' | 'dataClass' | 'timeoutMs'>;
  endedAt: string;
  /** Wall-clock epoch ms of run time 0, to turn run-relative ms into ISO times. */
  epochMs: number;
  marks: Mark[];
  actions: readonly ActionToScore[];
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
  /** The other data classes' ledgers (file storage, logs) as read back after recovery; absent when none was. */
  rpoClasses?: readonly ClassMeasurement[];
}

export interface VerificationResult {
  met: boolean | null;
  probes: ProbeOutcome[];
  /** Probes that did not apply to this run (e.g. the write ledger read-back when the load sent no token writes), with why. */
  skipped?: { name: string; reason: string }[];
  reason?: string;
}

export interface Objectives {
  rto: RtoResult;
  rpo: RpoResult;
  /** Every data class measured in the run, the entry's own first (DESIGN.md `objectives.rpoClasses`). */
  rpoClasses: RpoClassResult[];
  /** SLOs in the baseline and recovery phases: the service's promise outside the fault. */
  slo: SloResult[];
  verification: VerificationResult;
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

/**
 * A run judged: every figure run.json carries about how the service did. Text quoted from the run
 * (abort messages, probe details, rollback errors) is already redacted, so it can be published as is.
 */
export interface ScoredRun {
  status: RunStatus;
  exitCode: number;
  objectives: Objectives;
  load: LoadRecord;
  errorBudget: ErrorBudget;
  findings: Finding[];
  phases: Record<PhaseName, PhaseRecord | null>;
  recovery: RecoveryRecord;
}

const MAX_INTERVALS = 1000;
const SUMMARY_LATENCY = new Set(['max', 'med', 'count']);

/** Whether some latency SLO reads an aggregate the summary does not carry, so its span needs a histogram. */
function needsHistogram(policy: Policy): boolean {
  return policy.slo.latency.some((t) =>
    t.aggregate.kind === 'percentile' ? ![50, 95, 99].includes(t.aggregate.p) : !SUMMARY_LATENCY.has(t.aggregate.kind),
  );
}

/** Scores a run from its facts: phases, recovery, RTO, RPO, SLOs, error budget, findings and verdict. */
export function scoreRun(facts: RunFactsToScore): ScoredRun {
  const { entry } = facts;
  const policy = facts.drill.policy;
  const iso = (ms: number) => new Date(facts.epochMs + ms).toISOString();
  const log = facts.load?.log ?? createRequestLog(1);
  const loadStartMs = facts.load?.startMs ?? 0;
  const loadEndMs = facts.load?.endMs ?? 0;
  const faultMs = markMs(facts.marks, 'fault-injected');
  const recoveredMs = markMs(facts.marks, 'recovered');
  // Abort and error messages quote commands and connection errors: the score quotes them only redacted.
  const stopReason = facts.harnessError
    ? redactSecrets(`harness error: ${facts.harnessError.message}`)
    : facts.abort
      ? redactSecrets(facts.abort.message)
      : null;
  const notInjected = stopReason ?? 'no fault was injected';

  // Phases and their SLOs.
  const phases: Record<PhaseName, PhaseRecord | null> = { baseline: null, fault: null, recovery: null, run: null };
  if (facts.load) {
    const summaries = phaseSummaries(log, facts.marks, loadStartMs, loadEndMs);
    const histograms = needsHistogram(policy);
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
    resolutionMs: facts.load ? requestSpacingMs(log) : null,
    method: null,
    downtimeSeconds: null,
    outageIntervals: [],
    outageIntervalCount: 0,
  };
  let downtime: number | null = null;
  if (faultMs === null || facts.load === null) {
    recovery.reason = facts.load === null ? 'no load ran' : `${notInjected}; nothing to recover from`;
  } else {
    recovery.method = recoveryMethod(policy.recoveryWindowMs, recovery.resolutionMs, facts.recoveryProbe?.name);
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
          : recoveredMs === null && facts.recoveryProbe?.final
            ? redactSecrets(`not recovered: ${facts.recoveryProbe.detail}`)
            : recoveredMs === null
              ? `not recovered within the scenario timeout of ${formatSeconds(entry.timeoutMs / 1000)}${lateRecoveryNote(facts, faultMs)}`
              : undefined,
    interrupted: stopReason !== null,
  });

  const rpo = scoreRpo({
    dataClass: entry.dataClass,
    policy,
    measurement: facts.rpo ? redact(facts.rpo) : null,
    // A skipped read-back says why better than the default ("writes no data") when the load did write.
    reason: faultMs === null && !facts.rpo ? `${notInjected}; RPO not measured` : facts.skippedChecks?.[0]?.reason,
  });

  const rpoClasses = scoreRpoClasses({ entryClass: entry.dataClass, entryRpo: rpo, measured: redact(facts.rpoClasses ?? []), policy });
  const otherRpoClasses = rpoClasses.filter((c) => c.dataClass !== entry.dataClass);

  const verification: VerificationResult = {
    met: null,
    probes: redact(facts.verification),
    ...(facts.skippedChecks?.length ? { skipped: facts.skippedChecks } : {}),
  };
  if (facts.verification.length > 0) verification.met = facts.verification.every((v) => v.ok);
  else verification.reason = stopReason ? `verification did not run: ${stopReason}` : 'the scenario defines no verification probes';

  const sloOf = (p: PhaseName) => phases[p]?.slo ?? [];
  const objectiveSlo = [...sloOf('baseline'), ...sloOf('recovery')];
  if (faultMs !== null && phases.recovery === null && facts.load) {
    const why = stopReason ? `the run stopped before the service recovered (${stopReason})` : 'the service did not recover';
    for (const c of sloChecks(policy.slo)) {
      objectiveSlo.push({
        name: sloName(c),
        kind: c.kind,
        phase: 'recovery',
        threshold: c.threshold.source,
        measured: null,
        met: null,
        reason: `${why}: no recovery phase`,
      });
    }
  }

  const load: LoadRecord = phases.run ? runLoad(phases.run) : { ...summarize(log), reason: 'no load ran' };

  // A failed rollback's error is quoted in a finding: redacted first, like everything the score quotes.
  const actions = redact(
    facts.actions.map((a) => ({ name: a.name, rollback: { status: a.rollback.status, error: a.rollback.error ?? null } })),
  );
  const findings = redact(
    deriveFindings({
      tier: entry.tier,
      rto,
      rpo,
      otherRpoClasses,
      slo: [...sloOf('baseline'), ...sloOf('fault'), ...sloOf('recovery')],
      verification: facts.verification,
      actions,
      dropped: load.dropped,
      endedAt: facts.endedAt,
      downtimeSeconds: recovery.downtimeSeconds,
      configWarnings: facts.drill.warnings,
    }),
  );

  const v = verdict({
    objectives: { rto, rpo, otherRpoClasses, slo: objectiveSlo, verification },
    rollbackFailed: facts.actions.some((a) => a.rollback.status === 'failed'),
    abort: facts.abort,
    harnessError: facts.harnessError,
  });

  return {
    status: v.status,
    exitCode: v.exitCode,
    objectives: { rto, rpo, rpoClasses, slo: objectiveSlo, verification },
    load,
    errorBudget: errorBudget({ downtimeMs: downtime, availabilityTarget: availabilityTarget(policy.slo), periodMs: policy.budgetPeriodMs }),
    findings,
    phases,
    recovery,
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
function lateRecoveryNote(facts: RunFactsToScore, faultMs: number): string {
  if (!facts.load) return '';
  const late = findRecovery(facts.load.log, {
    faultMs,
    slo: facts.drill.policy.slo,
    windowMs: facts.drill.policy.recoveryWindowMs,
    nowMs: facts.load.endMs,
  });
  if (late.recoveredMs === null) return '';
  const after = late.recoveredMs - faultMs;
  return after > facts.entry.timeoutMs
    ? `; the SLOs held again only ${formatSeconds(after / 1000)} after the fault`
    : `; the SLOs held again ${formatSeconds(after / 1000)} after the fault, but the scenario's recovery check did not pass in time`;
}
