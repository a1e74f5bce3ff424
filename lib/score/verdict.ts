import { ExitCode } from '../errors.ts';

export type RunStatus = 'passed' | 'failed' | 'aborted' | 'error';

/** Why a run stopped early (the engine's RunAbort kinds). */
export type AbortKind = 'signal' | 'stop-condition' | 'steady-state' | 'action-failed';

export interface VerdictInput {
  objectives: {
    rto: { met: boolean | null };
    rpo: { met: boolean | null };
    /** The data classes other than the entry's own (that one is `rpo`), each against its own target. */
    otherRpoClasses?: ReadonlyArray<{ dataClass: string; met: boolean | null }>;
    slo: ReadonlyArray<{ name: string; phase: string; met: boolean | null }>;
    verification: { met: boolean | null };
  };
  rollbackFailed: boolean;
  abort: { kind: AbortKind; message: string } | null;
  harnessError: { message: string } | null;
}

export interface Verdict {
  status: RunStatus;
  exitCode: number;
  abortReason: AbortKind | null;
  /** Why the verdict is not `passed`, one sentence each, most serious first. */
  reasons: string[];
}

/**
 * Exit codes per DESIGN.md, most serious first:
 *   5  a rollback failed: a person must look, whatever else happened
 *   70 harness error
 *   3  steady state not met: the run is `aborted` (nothing was injected), abortReason `steady-state`
 *   4  aborted by a signal, a stop condition or a failed action; rollbacks ran
 *   1  an objective (RTO, RPO, SLO, verification) was missed
 *   0  every measured objective was met
 * An unmeasured objective (met null) neither passes nor fails a run: its reason is in the record.
 */
export function verdict(i: VerdictInput): Verdict {
  const stops: string[] = [];
  if (i.rollbackFailed) stops.push('a rollback failed: the target may be left broken');
  if (i.harnessError) stops.push(`harness error: ${i.harnessError.message}`);
  if (i.abort) stops.push(i.abort.kind === 'steady-state' ? i.abort.message : `aborted: ${i.abort.message}`);

  const o = i.objectives;
  const missed: string[] = [];
  if (o.rto.met === false) missed.push('RTO missed');
  if (o.rpo.met === false) missed.push('RPO missed');
  for (const c of o.otherRpoClasses ?? []) if (c.met === false) missed.push(`RPO missed (${c.dataClass})`);
  for (const s of o.slo) if (s.met === false) missed.push(`SLO missed (${s.phase}): ${s.name}`);
  if (o.verification.met === false) missed.push('verification failed');
  const reasons = [...stops, ...missed];

  const abortReason = i.abort?.kind ?? null;
  const status: RunStatus = i.harnessError ? 'error' : i.abort ? 'aborted' : i.rollbackFailed || missed.length > 0 ? 'failed' : 'passed';
  let exitCode: number;
  if (i.rollbackFailed) exitCode = ExitCode.rollbackFailed;
  else if (i.harnessError) exitCode = ExitCode.internal;
  else if (i.abort) exitCode = i.abort.kind === 'steady-state' ? ExitCode.steadyStateNotMet : ExitCode.aborted;
  else exitCode = missed.length > 0 ? ExitCode.objectiveMissed : ExitCode.ok;
  return { status, exitCode, abortReason, reasons };
}
