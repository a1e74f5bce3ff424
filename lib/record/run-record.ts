import type { DataClass, Drill, ScenarioEntry, Tier } from '../config/types.ts';
import type { Mark } from '../measure/timeline.ts';
import type { PhaseName } from '../measure/phases.ts';
import type { ErrorBudget } from '../score/budget.ts';
import type { Finding } from '../score/findings.ts';
import type { AbortKind, RunStatus } from '../score/verdict.ts';
import {
  scoreRun,
  type LoadRecord,
  type Objectives,
  type PhaseRecord,
  type RecoveryRecord,
  type RunFactsToScore,
  type ScoredRun,
} from '../score/score-run.ts';
import { redact, redactSecrets } from '../util/secrets.ts';

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
    /** The condition the rollback restores, in the SRE's words (none for an action that heals itself). */
    restores?: string;
    /** The condition already held when the rollback checked it: nothing was done. */
    alreadyHeld?: boolean;
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
 * that write data, the write ledger's RPO measurement). The score is derived from the facts alone, so
 * a run can be re-scored offline from run.json's marks and requests.tsv.
 */
export interface RunRecordInput extends RunFactsToScore {
  id: string;
  drill: Pick<Drill, 'name' | 'policy' | 'target'>;
  entry: Pick<ScenarioEntry, 'name' | 'scenario' | 'tier' | 'dataClass' | 'timeoutMs'>;
  /** The opened target's details (kind, URLs, lab dir...); secrets are removed here. */
  targetDetails: Record<string, unknown>;
  startedAt: string;
  actions: ActionInput[];
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
    restores: string | null;
    alreadyHeld: boolean;
    detail: string | null;
    error: string | null;
    startedAt: string | null;
    endedAt: string | null;
  };
}

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
  objectives: Objectives;
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

/**
 * Shapes run.json from the run's facts and its score; secrets in what the engine observed (action
 * errors, target details, the environment) are removed here.
 */
export function buildRunRecord(input: RunRecordInput, scored: ScoredRun = scoreRun(input)): RunRecord {
  const { drill, entry } = input;
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
        restores: a.rollback.restores ?? null,
        alreadyHeld: a.rollback.alreadyHeld ?? false,
        detail: a.rollback.detail ?? null,
        error: a.rollback.error ?? null,
        startedAt: a.rollback.startedAt ?? null,
        endedAt: a.rollback.endedAt ?? null,
      },
    })),
  );

  return {
    schemaVersion: 1,
    id: input.id,
    drill: drill.name,
    scenario: entry.name,
    scenarioModule: entry.scenario,
    target: targetLabel(drill.target, input.targetDetails),
    startedAt: input.startedAt,
    endedAt: input.endedAt,
    status: scored.status,
    tier: entry.tier,
    dataClass: entry.dataClass,
    marks: input.marks.map((m) => ({ name: m.name, at: m.at, ms: m.ms })),
    objectives: scored.objectives,
    load: scored.load,
    errorBudget: scored.errorBudget,
    actions,
    findings: scored.findings,
    environment: redact({ ...input.environment, target: input.targetDetails }),
    phases: scored.phases,
    recovery: scored.recovery,
    abort: input.abort
      ? { kind: input.abort.kind, reason: redactSecrets(input.abort.message) }
      : input.harnessError
        ? { kind: 'harness-error', reason: redactSecrets(input.harnessError.message) }
        : null,
    exitCode: scored.exitCode,
  };
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
    const context =
      typeof details.context === 'string' ? details.context : (target.context ?? (target.inCluster ? 'in-cluster' : 'current-context'));
    return `kubernetes:${target.inCluster ? 'in-cluster' : context}/${target.namespace}`;
  }
  return redactSecrets(target.url);
}
