import type { Drill, ScenarioEntry } from '../config/types.ts';
import { ExitCode, UserError } from '../errors.ts';
import { formatDuration } from '../config/duration.ts';
import { createClock } from '../measure/clock.ts';
import { describeRollback, restoresOf, type Adapters, type ScenarioDefinition } from '../scenario/define.ts';
import { scenarioContext } from '../scenario/context.ts';
import { Timeline } from '../measure/timeline.ts';
import { peekTarget } from '../targets/index.ts';
import { plannedDuration, type PlannedDuration } from './duration.ts';
import { formatProblem } from '../config/load.ts';

export interface PlannedAction {
  name: string;
  breaks: string;
  /** What a run now would hit; null when the target is not there to ask. */
  targets: string[] | null;
  rollback: string;
  /** The condition the rollback restores and checks before and after it acts; null when the action heals itself. */
  restores: string | null;
  /** Why the selection cannot be made (impossible selection); a run would stop before touching anything. */
  problem?: string;
  /** The workloads whose controllers replace what the action kills (`deployment/orders`), when it kills replicas. */
  replacedBy?: string;
}

export interface Plan {
  drill: { name: string; kind: string; file: string };
  /**
   * dataLoss: the guard on destructive data faults (target.allowDataLoss and its reason), shown when the target
   * sets it or an entry needs it; absent otherwise.
   */
  target: { kind: string; note: string; dataLoss?: { allowed: boolean; reason: string | null } };
  /** Null when the target has no service to load (blob). */
  load: { rate: number; requests: string[]; timeout: string; maxInFlight: number; baseline: string; cooldown: string } | null;
  stopConditions: string[];
  /** How long the drill may take at most, by the limits the harness enforces: what a maintenance window must hold. */
  plannedDuration: PlannedDuration;
  scenarios: {
    name: string;
    scenario: string;
    description: string;
    tier: string;
    dataClass: string;
    rto: string;
    rpo: string;
    slos: string[];
    recoveryWindow: string;
    timeout: string;
    params: Record<string, unknown>;
    steadyState: string[];
    actions: PlannedAction[];
    recovery: string;
    verify: string[];
  }[];
  problems: string[];
  /** Allowed but against the objectives (a lag longer than an RPO target), as `file:line:col: field: message`; a run records each as a finding. */
  warnings: string[];
}

/** A scenario context for read-only work (select, describe): no timeline that matters, no results, a bounded wait. */
function readOnlyContext(drill: Drill, entry: ScenarioEntry, adapters: Adapters) {
  const clock = createClock();
  const notes: string[] = [];
  return scenarioContext({
    params: entry.params,
    drill,
    entry,
    adapters,
    signal: AbortSignal.timeout(15_000),
    log: { info: (m) => notes.push(m), warn: (m) => notes.push(m) },
    timeline: new Timeline(clock),
    clock,
    results: new Map(),
  });
}

/**
 * Before a run on a real cluster: every action's selection is resolved read-only, as `drill plan` does, and
 * the first that cannot be made (a selector matching nothing, more pods than the blast radius, a namespace
 * outside the allowlist) stops the drill as invalid input, before any load is sent or anything is touched.
 */
export async function checkSelections(
  drill: Drill,
  catalog: Map<string, ScenarioDefinition>,
  entries: ScenarioEntry[],
  adapters: Adapters,
): Promise<void> {
  for (const entry of entries) {
    const s = catalog.get(entry.scenario)!;
    const ctx = readOnlyContext(drill, entry, adapters);
    for (const a of s.actions) {
      try {
        const tooMany = overBlastRadius(await a.select(ctx), adapters);
        if (tooMany) {
          throw new UserError(tooMany, {
            untouched: 'nothing: no load was sent and no pod was deleted',
            next: 'lower the count in the scenario params, or raise target.blastRadius in the drill file if that larger outage is intended',
          });
        }
      } catch (e) {
        const base = e instanceof UserError ? e : null;
        throw new UserError(`${entry.name}: ${a.name}: ${(e as Error).message}`, {
          exitCode: base?.exitCode ?? ExitCode.invalidInput,
          untouched: base?.untouched ?? 'nothing: no load was sent and no action ran',
          next: base?.next ?? 'run `drill plan` on this drill to see what each action would hit',
        });
      }
    }
  }
}

/** Where an entry's preflight problem points, as validation names fields: `scenarios[2].params.table`, or `target.allowDataLoss`. */
function preflightPath(drill: Drill, entry: ScenarioEntry, path: string): string {
  if (path === 'target' || path.startsWith('target.')) return path;
  return `scenarios[${drill.scenarios.indexOf(entry)}]${path ? `.${path}` : ''}`;
}

/** Every entry's read-only preflight against the live target, as `entry: field: problem` lines. */
async function preflightProblems(
  drill: Drill,
  catalog: Map<string, ScenarioDefinition>,
  entries: ScenarioEntry[],
  adapters: Adapters,
): Promise<string[]> {
  const out: string[] = [];
  for (const entry of entries) {
    const s = catalog.get(entry.scenario)!;
    if (!s.preflight) continue;
    try {
      for (const p of await s.preflight(readOnlyContext(drill, entry, adapters)))
        out.push(`${entry.name}: ${preflightPath(drill, entry, p.path)}: ${p.message}`);
    } catch (e) {
      out.push(`${entry.name}: the target could not be checked before the run: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Before any run, on every target: what the entries need of the live target (backups, WAL archiving, the
 * table a fault names) is checked read-only; a problem stops the drill as invalid input before any load.
 */
export async function checkPreflights(
  drill: Drill,
  catalog: Map<string, ScenarioDefinition>,
  entries: ScenarioEntry[],
  adapters: Adapters,
): Promise<void> {
  const problems = await preflightProblems(drill, catalog, entries, adapters);
  if (problems.length === 0) return;
  throw new UserError(`${drill.file}: ${problems.join('; ')}`, {
    exitCode: ExitCode.invalidInput,
    untouched: 'nothing: no load was sent and no action ran',
    next: 'fix what is named (or the target), then run `drill plan` on this drill to check again',
  });
}

const withGuard = (g: Plan['target']['dataLoss']) => (g ? { dataLoss: g } : {});

/** The data-loss guard as the plan shows it, when the target sets it or an entry needs the live restore. */
function dataLossGuardOf(drill: Drill, catalog: Map<string, ScenarioDefinition>, entries: ScenarioEntry[]): Plan['target']['dataLoss'] {
  const t = drill.target;
  const set = t.kind === 'lab' || t.kind === 'kubernetes' ? t.dataLoss : undefined;
  const needed = entries.some((e) => catalog.get(e.scenario)!.requires.includes('live-restore'));
  if (!set && !needed) return undefined;
  return { allowed: set !== undefined, reason: set?.reason ?? null };
}

/** The replicas of a selection that is a list of them (what pod kills select); empty for anything else. */
function replicasIn(selected: unknown): { name: string; owner: string }[] {
  if (!Array.isArray(selected)) return [];
  return selected.every((r) => r && typeof r === 'object' && typeof r.name === 'string' && typeof r.owner === 'string')
    ? (selected as { name: string; owner: string }[])
    : [];
}

/** Why a selection breaks the target's blast radius, or null. The adapter refuses such a kill too; this says so before anything runs. */
function overBlastRadius(selected: unknown, adapters: Adapters): string | null {
  const cap = adapters.kube?.blastRadius;
  const pods = replicasIn(selected).map((r) => r.name);
  if (cap === undefined || pods.length <= cap) return null;
  return `the selection is ${pods.length} pods (${pods.join(', ')}), more than the target's blast radius of ${cap} pod${cap === 1 ? '' : 's'} per action`;
}

/** The resolved plan. Selections are made read-only against the target if it is there; nothing is started or changed. */
export async function buildPlan(drill: Drill, catalog: Map<string, ScenarioDefinition>, only: string[]): Promise<Plan> {
  const peek = await peekTarget(drill.target);
  const entries = only.length ? drill.scenarios.filter((e) => only.includes(e.name)) : drill.scenarios;
  const p = drill.policy;
  // Without load (a blob target) no SLO is judged: the plan must not promise them.
  const slos = drill.load === null ? [] : [...p.slo.availability, ...p.slo.latency, ...p.slo.errors].map((t) => t.source);
  const problems: string[] = [];
  const scenarios: Plan['scenarios'] = [];
  for (const entry of entries) {
    const s = catalog.get(entry.scenario)!;
    const ctx = readOnlyContext(
      drill,
      entry,
      peek.adapters ?? { exec: { run: async () => Promise.reject(new Error('plan runs no commands')) } },
    );
    const actions: PlannedAction[] = [];
    for (const a of s.actions) {
      const planned: PlannedAction = {
        name: a.name,
        breaks: a.description,
        targets: null,
        rollback: describeRollback(a, entry.params),
        restores: restoresOf(a, entry.params),
      };
      if (peek.adapters) {
        try {
          const selected = await a.select(ctx);
          planned.targets = a.describeTargets(selected);
          const owners = [...new Set(replicasIn(selected).map((r) => r.owner))];
          if (owners.length > 0) planned.replacedBy = owners.join(', ');
          const tooMany = overBlastRadius(selected, peek.adapters);
          if (tooMany) throw new Error(tooMany);
        } catch (e) {
          planned.problem = (e as Error).message;
          problems.push(`${entry.name}: ${a.name}: ${planned.problem}`);
        }
      }
      actions.push(planned);
    }
    if (peek.adapters) problems.push(...(await preflightProblems(drill, catalog, [entry], peek.adapters)));
    scenarios.push({
      name: entry.name,
      scenario: s.name,
      description: s.description,
      tier: entry.tier,
      dataClass: entry.dataClass,
      rto: formatDuration(p.rtoMs[entry.tier]),
      rpo: formatDuration(p.rpoMs[entry.dataClass]),
      slos,
      recoveryWindow: formatDuration(p.recoveryWindowMs),
      timeout: formatDuration(entry.timeoutMs),
      params: entry.params,
      steadyState: [...slos.map((x) => `SLO ${x} over the baseline`), ...s.steadyState.map((x) => x.name)],
      actions,
      recovery:
        drill.load === null
          ? s.recovery.description
          : `${s.recovery.description}; and every SLO holds for ${formatDuration(p.recoveryWindowMs)} without a break`,
      verify: s.verify.map((x) => x.name),
    });
  }
  return {
    drill: { name: drill.name, kind: drill.kind, file: drill.file },
    target: { kind: drill.target.kind, note: peek.note, ...withGuard(dataLossGuardOf(drill, catalog, entries)) },
    load: drill.load && {
      rate: drill.load.rate,
      requests: drill.load.requests.map((r) => `${r.method} ${r.path} (weight ${r.weight})`),
      timeout: formatDuration(drill.load.timeoutMs),
      maxInFlight: drill.load.maxInFlight,
      baseline: formatDuration(drill.load.baselineMs),
      cooldown: formatDuration(drill.load.cooldownMs),
    },
    stopConditions: drill.stopConditions.map((c) => c.source),
    plannedDuration: plannedDuration(drill, catalog, entries),
    scenarios,
    problems,
    warnings: (drill.warnings ?? []).map(formatProblem),
  };
}
