import type { Logger } from '../scenario/define.ts';
import type { LogLine } from './events.ts';

/** A scenario's log lines become `log` events: the run journals them (so a runbook command's output survives a crash) and shows them. */
export function eventLogger(tell: (e: LogLine) => void): Logger {
  const write = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) =>
    tell({ type: 'log', level, message, ...(fields ? { fields } : {}) });
  return { info: (m, f) => write('info', m, f), warn: (m, f) => write('warn', m, f) };
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
