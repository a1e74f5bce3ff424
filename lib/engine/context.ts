import type { RpoMeasurement } from '../score/objectives.ts';
import type { Drill, ScenarioEntry } from '../config/types.ts';
import type { Clock } from '../measure/clock.ts';
import type { ActionHandle, Adapters, LoadView, Logger, Mark, Progress, ScenarioContext } from '../scenario/define.ts';
import type { Journal } from './journal.ts';

/** The timeline of one run: marks in run-relative monotonic ms, sorted when read. */
export class Timeline {
  private readonly marks: Mark[] = [];

  constructor(private readonly clock: Clock) {}

  mark(name: string, ms = this.clock.now()): Mark {
    const m = { name, at: this.clock.iso(ms), ms: Math.round(ms * 1000) / 1000 };
    this.marks.push(m);
    return m;
  }

  get(name: string): Mark | undefined {
    return this.marks.find((m) => m.name === name);
  }

  all(): Mark[] {
    return [...this.marks].sort((a, b) => a.ms - b.ms);
  }
}

/** Logs go to the journal (so a runbook command's output survives a crash) and to the live UI. */
export function journalLogger(journal: Journal, clock: Clock, echo: (line: string) => void): Logger {
  const write = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => {
    const ms = clock.now();
    journal.append({ type: 'log', at: clock.iso(ms), ms, level, message, ...(fields ? { fields } : {}) });
    echo(level === 'warn' ? `warning: ${message}` : message);
  };
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
    mark: (name) => parts.timeline.mark(name),
    now: () => parts.clock.now(),
    load: parts.load,
    resultOf: <R>(action: ActionHandle<R>) => parts.results.get(action.name) as R | undefined,
    reportRpo: (m) => parts.onRpo?.(m),
    progress: (update) => parts.progress?.(update),
  };
}

/** Resolves after ms, or rejects with the signal's reason when aborted first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
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
