import type { RpoMeasurement } from '../score/objectives.ts';
import type { Drill, ScenarioEntry } from '../config/types.ts';
import type { Clock } from '../measure/clock.ts';
import type { Adapters, LoadView, Logger, ScenarioContext } from '../scenario/define.ts';
import type { Timeline } from '../measure/timeline.ts';
import type { LogLine } from './events.ts';

/** A scenario's log lines become `log` events: the run journals them (so a runbook command's output survives a crash) and shows them. */
export function eventLogger(tell: (e: LogLine) => void): Logger {
  const write = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => tell({ type: 'log', level, message, ...(fields ? { fields } : {}) });
  return { info: (m, f) => write('info', m, f), warn: (m, f) => write('warn', m, f) };
}

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
}): ScenarioContext<P> {
  return {
    params: parts.params,
    drill: parts.drill,
    entry: parts.entry,
    adapters: parts.adapters,
    signal: parts.signal,
    log: parts.log,
    mark: (name) => parts.timeline.mark(name),
    now: () => parts.clock.now(),
    load: parts.load,
    resultOf: <R>(name: string) => parts.results.get(name) as R | undefined,
    reportRpo: (m) => parts.onRpo?.(m),
  };
}

/** Why a run stopped early; carried as the AbortSignal's reason. */
export class RunAbort extends Error {
  constructor(
    readonly kind: 'signal' | 'stop-condition' | 'steady-state' | 'action-failed',
    message: string,
  ) {
    super(message);
    this.name = 'RunAbort';
  }
}
