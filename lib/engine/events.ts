import type { Drill, ScenarioEntry } from '../config/types.ts';
import type { RpoMeasurement } from '../score/objectives.ts';
import type { ProbeFact } from './facts.ts';
import type { RunAbort } from './context.ts';

/**
 * Everything a run tells: the journal (events.jsonl) keeps the `JournaledEvent`s, the person watching
 * sees both kinds through one formatter per kind. The journaled shapes are the journal format
 * `drill recover` reads back, old journals included: a field renamed here is a journal that no longer recovers.
 */

/** The entry as journaled: enough to rebuild the scenario's context after a crash. */
export type JournaledEntry = Pick<ScenarioEntry, 'name' | 'params' | 'timeoutMs' | 'tier' | 'dataClass'>;

export interface RunStarted {
  type: 'run.start';
  id: string;
  /** The whole normalised drill, so `drill recover` can rebuild the scenario's context after a crash. */
  drill: Drill;
  scenario: string;
  entry: JournaledEntry;
  /** The target's details, from which `drill recover` reopens it. */
  target: Record<string, unknown>;
  epochMs: number;
}

/** A scenario's `ctx.log` line (a runbook command's output survives a crash this way). */
export interface LogLine {
  type: 'log';
  level: 'info' | 'warn';
  message: string;
  fields?: Record<string, unknown>;
}

export interface StopConditionHeld {
  type: 'stop-condition';
  condition: string;
  value: number;
}

export type RpoMeasured = { type: 'rpo.measured' } & RpoMeasurement;

/** The file-storage and logs classes read back after the run, each measured or with why not. */
export interface RpoClassesMeasured {
  type: 'rpo.classes';
  classes: Array<
    | { dataClass: string; acknowledged: number; survived: number; lost: number; unknown: number; rpoSeconds: number; lostSample: string[] }
    | { dataClass: string; reason: string }
  >;
}

/** A probe's `at` is when it answered; it replaces the journal stamp's `at` on the line. */
export type ProbeAnswered = { type: 'probe' } & ProbeFact;

export interface ProbeSkipped {
  type: 'probe.skipped';
  name: string;
  reason: string;
}

/** Written, and fsynced, before the action runs: what it selected is what its rollback needs. */
export interface ActionIntent {
  type: 'action.intent';
  /** The action's position in the scenario. */
  action: number;
  name: string;
  scenario: string;
  selected: unknown;
  targets: string[];
  /** The rollback's description, as the plan shows it. */
  rollback: string;
  /** The condition the rollback restores (absent in journals written before rollbacks converged, and for none). */
  restores?: string;
}

export interface ActionDone {
  type: 'action.done';
  action: number;
  name: string;
  /** What `run` returned (null for nothing): the rollback and later actions read it by the action's name. */
  result: unknown;
}

export interface ActionFailed {
  type: 'action.failed';
  action: number;
  name: string;
  error: string;
}

export interface RecoveryFailed {
  type: 'recovery.failed';
  probe: ProbeFact;
}

export interface RecoveryTimedOut {
  type: 'recovery.timeout';
  timeoutMs: number;
  probe: ProbeFact | null;
}

export interface RunAborted {
  type: 'run.abort';
  kind: RunAbort['kind'];
  reason: string;
}

export interface HarnessFailed {
  type: 'harness.error';
  message: string;
  stack?: string;
}

/** The rollback events `drill recover` writes carry `recovered: true` (see `JournalLine`). */
export interface RollbackNone {
  type: 'rollback.none';
  action: number;
  name: string;
  why: string;
}

export interface RollbackStarted {
  type: 'rollback.start';
  action: number;
  name: string;
  /** The rollback's own time limit; `drill recover` uses its fixed one and writes none. */
  timeoutMs?: number;
  /** The condition it restores, checked before and after it converges. */
  restores?: string;
}

export interface RollbackDone {
  type: 'rollback.done';
  action: number;
  name: string;
  detail: string | null;
  /** The condition was already true when checked: nothing was done. */
  alreadyHeld?: true;
}

export interface RollbackFailed {
  type: 'rollback.failed';
  action: number;
  name: string;
  error: string;
}

export interface RunEnded {
  type: 'run.end';
  aborted: RunAbort['kind'] | null;
  harnessError: string | null;
}

/** What `drill recover` did for one action of a crashed run. */
export interface RecoverResult {
  run: string;
  action: string;
  /** nothing-left: the action had no rollback (`rollback.none`). */
  status: 'done' | 'failed' | 'nothing-left';
  detail: string;
  /** Done without doing anything: its condition already held. */
  alreadyHeld?: true;
}

export interface RunRecovered {
  type: 'run.recovered';
  results: RecoverResult[];
}

export type JournaledEvent =
  | RunStarted
  | LogLine
  | StopConditionHeld
  | RpoMeasured
  | RpoClassesMeasured
  | ProbeAnswered
  | ProbeSkipped
  | ActionIntent
  | ActionDone
  | ActionFailed
  | RecoveryFailed
  | RecoveryTimedOut
  | RunAborted
  | HarnessFailed
  | RollbackNone
  | RollbackStarted
  | RollbackDone
  | RollbackFailed
  | RunEnded
  | RunRecovered;

/** One line of events.jsonl: the event, stamped with run-relative ms and its wall-clock time. */
export type JournalLine = JournaledEvent & { at: string; ms: number; recovered?: true };

/** The phases of a run, in order; the live line shows the current one. */
export type RunPhase = 'baseline' | 'steady-state' | 'inject' | 'observe' | 'verify' | 'rollback' | 'cooldown' | 'data-classes';

/** For the person watching only: the journal does not keep these. */
export type ProgressEvent =
  | { type: 'drill.start'; drill: string; kind: string; file: string; entries: string[] }
  /** A line the target says while it opens (the lab coming up, where backups go). */
  | { type: 'target.note'; line: string }
  | { type: 'scenario.start'; entry: string; scenario: string; tier: string; dataClass: string }
  | { type: 'phase'; name: RunPhase }
  | { type: 'baseline.start'; rate: number; baselineMs: number }
  | { type: 'recovered'; afterMs: number }
  | { type: 'recovery.deadline'; timeoutMs: number; windowMs: number };

export type RunEvent = JournaledEvent | ProgressEvent;
