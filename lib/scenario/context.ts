import type { RpoMeasurement } from '../score/objectives.ts';
import type { Drill, ScenarioEntry } from '../config/types.ts';
import type { Clock } from '../measure/clock.ts';
import type { Timeline } from '../measure/timeline.ts';
import type { ActionHandle, Adapters, LoadView, Logger, Progress, ScenarioContext } from './define.ts';

/**
 * The context every probe, action and rollback receives. The engine builds one per run, `drill plan` one to
 * resolve selections read-only, and `drill recover` one from the journal: all three the same way.
 */
export function scenarioContext<P>(parts: {
  params: P;
  drill: Drill;
  entry: ScenarioEntry;
  adapters: Adapters;
  signal: AbortSignal;
  log: Logger;
  timeline: Timeline;
  clock: Clock;
  load?: LoadView;
  results: Map<string, unknown>;
  onRpo?: (m: RpoMeasurement) => void;
  /** Where a scenario's transfer progress goes (the terminal's live line); absent: nowhere. */
  progress?: (update: Progress) => void;
}): ScenarioContext<P> {
  return {
    params: parts.params,
    drill: parts.drill,
    entry: parts.entry,
    adapters: parts.adapters,
    signal: parts.signal,
    log: parts.log,
    mark: (name, atMs) => parts.timeline.mark(name, atMs),
    now: () => parts.clock.now(),
    load: parts.load,
    resultOf: <R>(action: ActionHandle<R>) => parts.results.get(action.name) as R | undefined,
    reportRpo: (m) => parts.onRpo?.(m),
    progress: (update) => parts.progress?.(update),
  };
}
