import type { Drill } from '../config/types.ts';
import type { ScenarioDefinition } from '../scenario/define.ts';
import { ExitCode } from '../errors.ts';
import { openTarget } from '../targets/index.ts';
import { checkSelections } from '../plan/plan.ts';
import { runScenario, type RunHooks } from './run.ts';
import { finalizeRun, type FinalizedRun } from './finalize.ts';

export interface DrillRunOptions {
  resultsDir: string;
  /** Entry names to run (`--scenario`); empty = all, in file order. */
  only: string[];
  signal: AbortSignal;
  hooks: RunHooks & { stop?(): void };
}

export interface DrillOutcome {
  runs: FinalizedRun[];
  exitCode: number;
}

/**
 * When several scenarios run, the drill exits with the most serious of their codes, in the order
 * score/verdict.ts uses within one run: a failed rollback outranks even a harness error, because
 * it is the one that leaves something broken for a person to fix.
 */
const SERIOUSNESS = [
  ExitCode.ok,
  ExitCode.objectiveMissed,
  ExitCode.steadyStateNotMet,
  ExitCode.aborted,
  ExitCode.internal,
  ExitCode.rollbackFailed,
];
export function worstExitCode(codes: number[]): number {
  return codes.reduce((worst, c) => (SERIOUSNESS.indexOf(c as never) > SERIOUSNESS.indexOf(worst as never) ? c : worst), 0);
}

/**
 * Runs the selected scenarios of a validated drill one after another on one target. The target is
 * opened once (the lab started once) and closed at the end, also after an abort or a harness error.
 */
export async function runDrill(drill: Drill, catalog: Map<string, ScenarioDefinition>, options: DrillRunOptions): Promise<DrillOutcome> {
  const entries = options.only.length === 0 ? drill.scenarios : drill.scenarios.filter((e) => options.only.includes(e.name));
  const { hooks } = options;
  hooks.event({ type: 'drill.start', drill: drill.name, kind: drill.kind, file: drill.file, entries: entries.map((e) => e.name) });
  const target = await openTarget(drill.target, (line) => hooks.event({ type: 'target.note', line }));
  const runs: FinalizedRun[] = [];
  try {
    if (target.checkSelections) await checkSelections(drill, catalog, entries, target.adapters);
    for (const entry of entries) {
      if (options.signal.aborted) break;
      const scenario = catalog.get(entry.scenario)!;
      hooks.event({ type: 'scenario.start', entry: entry.name, scenario: scenario.name, tier: entry.tier, dataClass: entry.dataClass });
      const facts = await runScenario({
        drill,
        entry,
        scenario,
        adapters: target.adapters,
        serviceUrl: target.serviceUrl,
        resultsDir: options.resultsDir,
        targetDetails: target.details,
        signal: options.signal,
        hooks,
      });
      hooks.stop?.();
      runs.push(finalizeRun(facts));
    }
  } finally {
    hooks.stop?.();
    await target.close();
  }
  return { runs, exitCode: worstExitCode(runs.map((r) => r.exitCode)) };
}
