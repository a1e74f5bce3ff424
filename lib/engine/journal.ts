import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { ActionIntent, JournaledEvent, JournalLine } from './events.ts';

/** Which journal line the harness dies after: the Nth line, or the Kth line of a type (and name). */
type CrashPoint = { line: number } | { type: string; name: string | null; occurrence: number };

/**
 * Fault injection for the harness's own crash tests: with `DRILL_CRASH_AFTER_EVENT`, the process SIGKILLs
 * itself right after a journal line is fsynced, the exact state `drill recover` must handle when the machine
 * or the harness dies between two steps. `N`: after the Nth line. `TYPE[:NAME][#K]` (`action.done:kill primary`,
 * `log#2`): after the Kth line (default the first) of that type and step name, the same step in every run
 * even when a probe polled a different number of times before it. `DRILL_CRASH_SIGNAL=SIGINT` sends SIGINT
 * instead, once: an operator's Ctrl-C at that exact step, which the run must answer with its rollbacks (exit 4).
 * Unset, nothing changes.
 */
function crashPoint(): CrashPoint | null {
  const raw = process.env.DRILL_CRASH_AFTER_EVENT;
  if (raw === undefined || raw === '') return null;
  if (/^\d+$/.test(raw) && Number(raw) >= 1) return { line: Number(raw) };
  const m = /^([a-z.-]+)(?::([^#]+))?(?:#(\d+))?$/.exec(raw);
  if (!m || (m[3] !== undefined && Number(m[3]) < 1))
    throw new UserError(`DRILL_CRASH_AFTER_EVENT=${raw} is neither a line number (1, 2, ...) nor TYPE[:NAME][#K]`, {
      untouched: 'nothing: the run did not start',
      next: 'unset DRILL_CRASH_AFTER_EVENT, or set it to e.g. 7 or action.done:kill primary',
    });
  return { type: m[1]!, name: m[2] ?? null, occurrence: Number(m[3] ?? 1) };
}

/**
 * events.jsonl: the run's write-ahead journal. Every line is fsynced before the step it describes runs,
 * so after a crash `drill recover` knows which actions began and what their rollbacks need.
 */
export class Journal {
  private fd: number | null;
  private written = 0;
  private matched = 0;
  private readonly crashAt = crashPoint();
  private readonly crashSignal: NodeJS.Signals = process.env.DRILL_CRASH_SIGNAL === 'SIGINT' ? 'SIGINT' : 'SIGKILL';

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
    if (this.crashAt && this.isCrashPoint(event)) process.kill(process.pid, this.crashSignal);
  }

  private isCrashPoint(event: JournaledEvent): boolean {
    const at = this.crashAt!;
    if ('line' in at) return this.written === at.line;
    if (event.type !== at.type || (at.name !== null && (event as { name?: unknown }).name !== at.name)) return false;
    this.matched += 1;
    return this.matched === at.occurrence;
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
