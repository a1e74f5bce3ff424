import type { RpoMeasurement } from '../score/objectives.ts';
import type { Severity } from '../score/findings.ts';
import type { z } from 'zod';
import type { DataClass, Drill, ScenarioEntry, Target, Tier } from '../config/types.ts';
import type {
  DataClassesAdapter,
  DatabaseAdapter,
  ExecAdapter,
  LiveRestoreAdapter,
  RegionAdapter,
  ReplicaSetAdapter,
} from '../adapters/types.ts';
import type { KubeTargetAdapters } from '../adapters/kubernetes/types.ts';
import type { LoadSummary } from '../measure/request-log.ts';
import type { Mark } from '../measure/timeline.ts';
import type { BackupsAdapter } from '../adapters/postgres/backup/adapter.ts';
import type { WriteLedger } from '../load/ledger.ts';

/** What a target can do; a scenario lists what it needs and validation refuses a mismatch. */
export type Capability = 'replicas' | 'exec' | 'load' | 'kubernetes' | 'database' | 'backups' | 'live-restore' | 'region';

/** The adapters a target provides. Absent members are capabilities the target lacks. */
export interface Adapters {
  exec: ExecAdapter;
  replicas?: ReplicaSetAdapter;
  /** Deployments, rollouts, autoscalers and custom resources of a Kubernetes target, inside its namespace allowlist. */
  kube?: KubeTargetAdapters;
  /** A PostgreSQL primary/standby pair behind a stable endpoint, with the drill's failover provider. */
  database?: DatabaseAdapter;
  /** Backups in Blob (a blob target): list, restore into a scratch cluster, verify. */
  backups?: BackupsAdapter;
  /** The live database restored in place from Blob to a point in time (base backup + archived WAL). */
  liveRestore?: LiveRestoreAdapter;
  /** Two regions behind a global front: the primary region lost, the runbook run in the secondary. */
  region?: RegionAdapter;
  /**
   * Read-back of the file-storage and logs classes, used by the engine after a run whose load uploaded attachments
   * (no scenario capability: every scenario's run is scored on them). Absent: those classes are not measured.
   */
  dataClasses?: DataClassesAdapter;
}

/** Where each capability's adapter sits in `ctx.adapters` (`load` is the load generator, not an adapter). */
interface AdapterKeyOf {
  replicas: 'replicas';
  exec: 'exec';
  kubernetes: 'kube';
  database: 'database';
  backups: 'backups';
  'live-restore': 'liveRestore';
  region: 'region';
  load: never;
}

/**
 * The adapters of a target that has the capabilities C: those C names are present. Validation refuses a drill
 * whose target lacks a capability its scenario requires, so a scenario needs no guard of its own.
 */
export type AdaptersFor<C extends Capability> = Adapters & { [K in AdapterKeyOf[C]]-?: NonNullable<Adapters[K]> };

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Live view of the load while a scenario runs, for probes that judge the service by its traffic. */
export interface LoadView {
  /** Aggregates of requests scheduled in the last `windowMs`. */
  window(windowMs: number): LoadSummary;
  /** Every write the load sent (requests whose template carries `{{token}}`), with token, seq and fate, live. */
  ledger?: WriteLedger;
  /**
   * When the service counted as recovered from a fault at `faultMs`, judged as the engine judges it (the start of
   * the first window after the fault in which every SLO held): null while no such window is complete. A scenario
   * that must not break the service again before its recovery is on record (a failback) waits for it.
   */
  recoveredAfter?(faultMs: number): number | null;
  /** The service's base URL the load goes to: a probe that asks the service as a user would (is my order there?) asks here. */
  serviceUrl?: string;
}

/** How far a long transfer has come (a backup's download), for a live line on the terminal; `done` clears the line. */
export type Progress = { label: string; bytes: number; totalBytes?: number } | { label: string; done: true };

/** An action as an earlier result is looked up by: the action object itself. */
export interface ActionHandle<R> {
  readonly name: string;
  run(ctx: never, selected: never): Promise<R>;
}

/** What probes and actions see. C: the capabilities the scenario requires, whose adapters are then present. */
export interface ScenarioContext<P, C extends Capability = never> {
  params: P;
  drill: Drill;
  entry: ScenarioEntry;
  adapters: AdaptersFor<C>;
  /** Aborted on SIGINT/SIGTERM or a stop condition: long waits must honour it. */
  signal: AbortSignal;
  log: Logger;
  /** Put a named instant on the run's timeline: now, or at `atMs` (run-relative) for an instant seen earlier. */
  mark(name: string, atMs?: number): Mark;
  /** Monotonic ms since run start. */
  now(): number;
  load?: LoadView;
  /** What an earlier action of this run returned (undefined if it has not run or failed). */
  resultOf<R>(action: ActionHandle<R>): R | undefined;
  /** Report a long transfer's progress; shown as a live line on a terminal, dropped elsewhere. */
  progress(update: Progress): void;
  /**
   * Hand the engine this run's measured data loss (from the write ledger's read-back, or a restore's
   * newest row), scored against the entry's data class. The last report wins; a scenario that never
   * reports has its RPO recorded as not measured.
   */
  reportRpo(m: RpoMeasurement): void;
}

export interface ProbeResult {
  ok: boolean;
  /** What was seen, in a sentence: `3/3 replicas ready`, `replay lag 12 ms`. */
  detail: string;
  /** Verification probes only: how serious a failure is (default SEV1), e.g. a backup policy check. */
  severity?: Severity;
  /**
   * Recovery probes only: polling again cannot change a failed answer (a restore that failed its
   * checksum will not pass on the next poll), so the observe phase stops waiting.
   */
  final?: boolean;
  /**
   * Recovery probes only: the run time (ms) from which what this check saw already held, when its evidence
   * dates it (the first write acknowledged after the service was repointed at restored data that has not
   * changed since). Recovery then counts from it instead of from this poll; it is kept between the fault and now.
   */
  heldSinceMs?: number;
}

/** A read-only check. Probes never change the world. */
export interface Probe<P = unknown, C extends Capability = never> {
  name: string;
  check(ctx: ScenarioContext<P, C>): Promise<ProbeResult>;
  /**
   * Verification probes only: why this probe does not apply to this run (no write ledger, no database), or
   * null when it does. A skipped probe is neither passed nor failed; the run says it was skipped and why.
   */
  skip?(ctx: ScenarioContext<P, C>): string | null;
}

/** What an action journaled before it ran, and its result if it returned before the run ended. */
export interface Journaled<T, R> {
  selected: T;
  /** Absent when the run crashed or was aborted before the action returned: it may be half done, or not begun. */
  result?: R;
}

/**
 * Whether a rollback's condition is true now. `ok: null` is for a condition nothing can check read-only (a
 * runbook command with no check command of its own): converging is then its own evidence.
 */
export interface HoldResult {
  ok: boolean | null;
  /** What was seen, in a sentence: `n1 primary and takes writes, n2 streaming from it`. */
  detail: string;
}

/**
 * A rollback converges, it does not replay: it states the condition it restores, checks it read-only, and does
 * only what reaching it needs from whatever state it finds. The engine and `drill recover` run it the same way
 * (lib/engine/converge.ts): check; already true, done; else converge and check again; still not true, failed (exit 5).
 * So a rollback copes with an action journaled but never carried out, half done, done twice, or undone by hand.
 */
export interface Rollback<P, T, R, C extends Capability = never> {
  /** How it gets there, in the SRE's words, for `drill plan` (may depend on the parameters). */
  description: string | ((params: P) => string);
  /** The condition it restores, in the SRE's words: shown by `drill plan`, journaled and recorded. */
  restores: string | ((params: P) => string);
  /** What a person should do when converging cannot reach the condition (the message of exit 5). */
  byHand?: string | ((params: P) => string);
  /** Its own time limit: rollbacks run even after an abort, and must not hang the harness forever. */
  timeout?: string;
  /** Read-only: does the condition hold now? */
  holds(ctx: ScenarioContext<P, C>, journaled: Journaled<T, R>): Promise<HoldResult>;
  /**
   * Do what reaching the condition needs from the state found now, and nothing else; safe to run again.
   * Returns what was done, in a sentence.
   */
  converge(ctx: ScenarioContext<P, C>, journaled: Journaled<T, R>): Promise<string>;
}

/** A step that changes the world. It is journaled before it runs, and always carries its rollback. */
export interface Action<P = unknown, T = unknown, R = unknown, C extends Capability = never> {
  /** Also the key its result and rollback are journaled under: `drill recover` finds them by it. */
  name: string;
  /** What this breaks, in the SRE's words, for `drill plan`. */
  description: string;
  /** Read-only: resolve what the action will hit. `drill plan` calls this and nothing else. */
  select(ctx: ScenarioContext<P, C>): Promise<T>;
  /** Human list of what `select` returned, for plans and records. */
  describeTargets(selected: T): string[];
  run(ctx: ScenarioContext<P, C>, selected: T): Promise<R>;
  /** The undo; or `{ none: why }` when the action heals itself (a bounded pause, a read-only check). */
  rollback: Rollback<P, T, R, C> | { none: string };
}

const say = <P>(text: string | ((params: P) => string), params: P): string => (typeof text === 'function' ? text(params) : text);

/** An action's rollback in the SRE's words, as the plan shows it and the record keeps it. */
export function describeRollback<P>(a: Action<P>, params: P): string {
  if ('none' in a.rollback) return `none: ${a.rollback.none}`;
  return say(a.rollback.description, params);
}

/** The condition an action's rollback restores, or null when it has none (the action heals itself). */
export function restoresOf<P>(a: Action<P>, params: P): string | null {
  return 'none' in a.rollback ? null : say(a.rollback.restores, params);
}

/** What a person should do when a rollback cannot reach its condition. */
export function byHandOf<P, T, R, C extends Capability>(r: Rollback<P, T, R, C>, params: P): string {
  return r.byHand
    ? say(r.byHand, params)
    : 'look at the target by hand and put it right; then `drill recover` checks the condition again and closes the run';
}

export interface Recovery<P, C extends Capability = never> {
  /** What "recovered" means for this scenario beyond the SLOs holding again. */
  description: string;
  /** Passes once the system is whole again (replicas back, writes succeed); polled every `pollMs`. */
  until?: Probe<P, C>;
  pollMs?: number;
}

export interface ScenarioDefinition<P = any, C extends Capability = never> {
  name: string;
  description: string;
  tier?: Tier;
  dataClass?: DataClass;
  requires: readonly Capability[];
  /** zod schema of the parameters; defaults live here. */
  params: z.ZodType<P>;
  /**
   * Checks against the target known at validation time (count larger than replicas, ...). Path is relative to params,
   * or `target...` for the drill's target (a field the scenario needs there).
   */
  validate?(params: P, target: Target): { path: string; message: string }[];
  /**
   * Read-only checks against the live target that the file alone cannot settle (no backups, a table that does
   * not exist): run by `drill plan` and before a run sends any load; a problem stops the drill with exit 2.
   * Path is relative to the scenario entry (`params.table`), or `target...` for the drill's target.
   */
  preflight?(ctx: ScenarioContext<P, C>): Promise<{ path: string; message: string }[]>;
  steadyState: Probe<P, C>[];
  actions: Action<P, unknown, unknown, C>[];
  recovery: Recovery<P, C>;
  verify: Probe<P, C>[];
}

export function defineScenario<S extends z.ZodType, const C extends Capability = never>(
  def: ScenarioDefinition<z.output<S>, C> & { params: S; requires: readonly C[] },
): ScenarioDefinition<z.output<S>, C> {
  return def;
}

export function probe<P = unknown, C extends Capability = never>(
  name: string,
  check: (ctx: ScenarioContext<P, C>) => Promise<ProbeResult>,
): Probe<P, C> {
  return { name, check };
}

export function action<P, T, R, C extends Capability = never>(def: Action<P, T, R, C>): Action<P, T, R, C> {
  return def;
}

/**
 * The authoring kit of one scenario: its parameters and the capabilities it requires type every probe and
 * action made with it (`ctx.params` is the parsed parameters, `ctx.adapters.database` is there when it
 * requires `database`). Actions made first are the handles later steps read their results by:
 *
 *     const { probe, action, define } = scenario({ params, requires: ['replicas', 'load'] });
 *     const kill = action<Replica[], Killed[]>({ name: 'kill replicas', ... });
 *     export default define({ name: 'pod-kill', ..., actions: [kill],
 *       recovery: { until: probe('replaced', async (ctx) => { const killed = ctx.resultOf(kill) ?? []; ... }) } });
 */
export function scenario<P, const C extends Capability>(spec: { params: z.ZodType<P>; requires: readonly C[] }) {
  return {
    probe: (name: string, check: (ctx: ScenarioContext<P, C>) => Promise<ProbeResult>): Probe<P, C> => ({ name, check }),
    action: <T, R>(def: Action<P, T, R, C>): Action<P, T, R, C> => def,
    define: (def: Omit<ScenarioDefinition<P, C>, 'params' | 'requires'>): ScenarioDefinition<P, C> => ({
      ...def,
      params: spec.params,
      requires: spec.requires,
    }),
  };
}
