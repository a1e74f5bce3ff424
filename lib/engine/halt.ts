/**
 * The halt switch, like AWS FIS's stop lever: a file named by DRILL_HALT_FILE (it exists = halted, its
 * text is the reason) and, on a Kubernetes target, the ConfigMap `drill-halt` in the target namespace.
 * While it is set no drill starts (exit 2); a running drill aborts and rolls back. It is polled every
 * HALT_POLL_MS, so a run is aborted well inside 2 s of someone setting it.
 */
import { readFileSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { HaltSwitchState, OpenTarget } from '../targets/index.ts';
import { RunAbort } from './context.ts';

export const HALT_POLL_MS = 500;

export type HaltReader = (signal?: AbortSignal) => Promise<HaltSwitchState | null>;

/** The file switch; null when DRILL_HALT_FILE is not set. */
export function haltFileReader(path: string | undefined = process.env.DRILL_HALT_FILE): HaltReader | null {
  if (!path) return null;
  return async () => {
    let setAt: string;
    try {
      setAt = statSync(path).mtime.toISOString();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    let text = '';
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch {
      // Exists but unreadable: still halted, the reason is just unknown.
    }
    const owner = statSync(path).uid;
    return { where: `halt file ${path}`, by: `uid ${owner}`, reason: text || '(the file is empty)', setAt };
  };
}

/** Every switch that applies to this target, file first. */
export function haltReaders(target: Pick<OpenTarget, 'halt'> | null): HaltReader[] {
  const file = haltFileReader();
  return [...(file ? [file] : []), ...(target?.halt ? [target.halt.bind(target)] : [])];
}

function describe(h: HaltSwitchState): string {
  return `halt switch set: ${h.where} by ${h.by}${h.setAt ? ` at ${h.setAt}` : ''}: ${h.reason}`;
}

/** Refuses to start (exit 2) while any switch is set, or when one cannot be read. */
export async function assertNotHalted(readers: HaltReader[]): Promise<void> {
  for (const read of readers) {
    let h: HaltSwitchState | null;
    try {
      h = await read(AbortSignal.timeout(5_000));
    } catch (e) {
      throw new UserError(`cannot read the halt switch, so the drill does not start: ${(e as Error).message}`, {
        untouched: 'nothing: no load was sent and no action ran',
        next: 'grant the drill get on configmaps/drill-halt in the target namespace (a Role rule), then run again',
      });
    }
    if (h) {
      throw new UserError(`the drill does not start: ${describe(h)}`, {
        untouched: 'nothing: no load was sent and no action ran',
        next: 'ask whoever set it; once it is cleared (the file removed, or the ConfigMap deleted), run again',
      });
    }
  }
}

/**
 * Polls the switches while a drill runs; the first one found set aborts it as a stop condition. A read
 * that fails mid-run is told once and polling goes on: the run already started under a readable switch.
 */
export function watchHalt(
  readers: HaltReader[],
  abort: (reason: RunAbort) => void,
  say: (line: string) => void,
  pollMs = HALT_POLL_MS,
): () => void {
  if (readers.length === 0) return () => {};
  let stopped = false;
  let busy = false;
  const told = new Set<number>();
  const timer = setInterval(async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      for (const [i, read] of readers.entries()) {
        try {
          const h = await read(AbortSignal.timeout(Math.max(pollMs * 2, 1000)));
          if (h && !stopped) {
            stopped = true;
            clearInterval(timer);
            abort(new RunAbort('stop-condition', describe(h)));
            return;
          }
        } catch (e) {
          if (!told.has(i)) say(`halt switch could not be read (polling goes on): ${(e as Error).message}`);
          told.add(i);
        }
      }
    } finally {
      busy = false;
    }
  }, pollMs);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
