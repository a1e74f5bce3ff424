import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';

/**
 * events.jsonl: the run's write-ahead journal. Every line is fsynced before the step it describes runs,
 * so after a crash `drill recover` knows which actions began and what their rollbacks need.
 */
export type JournalEvent = { type: string; at: string; ms: number } & Record<string, unknown>;

export class Journal {
  private fd: number | null;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  append(event: JournalEvent): void {
    if (this.fd === null) throw new Error(`journal ${this.path} is closed`);
    writeSync(this.fd, JSON.stringify(event) + '\n');
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** Reads a journal back; a torn last line (a crash mid-write) is dropped, as a database drops a torn WAL record. */
export function readJournal(path: string): JournalEvent[] {
  const out: JournalEvent[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as JournalEvent);
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
export function pendingRollbacks(events: JournalEvent[]): JournalEvent[] {
  const begun = events.filter((e) => e.type === 'action.intent');
  const settled = new Set(events.filter((e) => e.type === 'rollback.done' || e.type === 'rollback.none').map((e) => e.action as number));
  return begun.filter((e) => !settled.has(e.action as number)).reverse();
}
