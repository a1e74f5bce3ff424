import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { ActionIntent, JournaledEvent, JournalLine } from './events.ts';

/**
 * Fault injection for the harness's own crash tests: with `DRILL_CRASH_AFTER_EVENT=N`, the process SIGKILLs
 * itself right after the Nth line this journal wrote is fsynced, the exact state `drill recover` must handle
 * when the machine or the harness dies between two steps. Unset, nothing changes.
 */
function crashAfterEvent(): number | null {
  const raw = process.env.DRILL_CRASH_AFTER_EVENT;
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new UserError(`DRILL_CRASH_AFTER_EVENT=${raw} is not a line number (1, 2, ...)`, {
      untouched: 'nothing: the run did not start',
      next: 'unset DRILL_CRASH_AFTER_EVENT, or set it to the journal line after which the harness should SIGKILL itself',
    });
  return n;
}

/**
 * events.jsonl: the run's write-ahead journal. Every line is fsynced before the step it describes runs,
 * so after a crash `drill recover` knows which actions began and what their rollbacks need.
 */
export class Journal {
  private fd: number | null;
  private written = 0;
  private readonly crashAfter = crashAfterEvent();

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  /** Writes `{type, at, ms, [recovered], ...fields}`: the key order every journal so far has. */
  append(event: JournaledEvent, at: string, ms: number, recovered?: true): void {
    if (this.fd === null) throw new Error(`journal ${this.path} is closed`);
    const { type, ...fields } = event;
    writeSync(this.fd, JSON.stringify({ type, at, ms, ...(recovered ? { recovered } : {}), ...fields }) + '\n');
    fsyncSync(this.fd);
    this.written += 1;
    if (this.written === this.crashAfter) process.kill(process.pid, 'SIGKILL');
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** Reads a journal back; a torn last line (a crash mid-write) is dropped, as a database drops a torn WAL record. */
export function readJournal(path: string): JournalLine[] {
  const out: JournalLine[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      // The journal is ours, written by Journal.append from the same union.
      out.push(JSON.parse(line) as JournalLine);
    } catch {
      break;
    }
  }
  return out;
}

/**
 * Actions that began (intent journaled) but whose rollback did not finish, newest first: exactly what
 * `drill recover` must undo.
 */
export function pendingRollbacks(events: JournalLine[]): (ActionIntent & JournalLine)[] {
  const settled = new Set<number>();
  const begun: (ActionIntent & JournalLine)[] = [];
  for (const e of events) {
    if (e.type === 'action.intent') begun.push(e);
    else if (e.type === 'rollback.done' || e.type === 'rollback.none') settled.add(e.action);
  }
  return begun.filter((e) => !settled.has(e.action)).reverse();
}
