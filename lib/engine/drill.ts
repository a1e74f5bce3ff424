import type { Drill } from '../config/types.ts';
import type { ScenarioDefinition } from '../scenario/define.ts';
import { ExitCode } from '../errors.ts';
import { openTarget } from '../targets/index.ts';
import { checkPreflights, checkSelections } from '../plan/plan.ts';
import { runScenario, type RunHooks } from './run.ts';
import { finalizeRun, type FinalizedRun } from './finalize.ts';
import { assertNotHalted, haltReaders, watchHalt } from './halt.ts';
import type { WindowRecord } from '../record/run-record.ts';

export interface DrillRunOptions {
  resultsDir: string;
  /** Entry names to run (`--scenario`); empty = all, in file order. */
  only: string[];
  signal: AbortSignal;
  hooks: RunHooks & { stop?(): void };
  /** The maintenance window and notice as `drill run` judged them; null on the lab, where no window applies. */
  window?: WindowRecord | null;
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
  const note = (line: string) => hooks.event({ type: 'target.note', line });
  // The file switch is read before the target opens (the lab would come up otherwise), the target's own after.
  await assertNotHalted(haltReaders(null));
  hooks.event({ type: 'drill.start', drill: drill.name, kind: drill.kind, file: drill.file, entries: entries.map((e) => e.name) });
  const target = await openTarget(drill.target, note);
  const runs: FinalizedRun[] = [];
  // SIGINT or the halt switch: either aborts the scenario running now, and no further one starts.
  const drillAbort = new AbortController();
  const onSignal = () => drillAbort.abort(options.signal.reason);
  if (options.signal.aborted) onSignal();
  else options.signal.addEventListener('abort', onSignal, { once: true });
  let stopWatchingHalt = () => {};
  try {
    const halt = haltReaders(target);
    await assertNotHalted(halt);
    stopWatchingHalt = watchHalt(halt, (reason) => drillAbort.abort(reason), note);
    if (target.checkSelections) await checkSelections(drill, catalog, entries, target.adapters);
    await checkPreflights(drill, catalog, entries, target.adapters);
    for (const entry of entries) {
      if (drillAbort.signal.aborted) break;
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
        signal: drillAbort.signal,
        hooks,
        window: options.window ?? null,
      });
      hooks.stop?.();
      runs.push(finalizeRun(facts));
    }
  } finally {
    stopWatchingHalt();
    options.signal.removeEventListener('abort', onSignal);
    hooks.stop?.();
    await target.close();
  }
  // Entries never started because the drill was stopped (a signal, the halt switch) make it aborted, not passed.
  const cut = drillAbort.signal.aborted && runs.length < entries.length ? [ExitCode.aborted] : [];
  if (cut.length > 0) note(`stopped before ${entries.length - runs.length} of ${entries.length} scenario entries ran`);
  return { runs, exitCode: worstExitCode([...runs.map((r) => r.exitCode), ...cut]) };
}
