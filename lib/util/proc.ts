/**
 * Linux process checks by PID, through /proc. Lab and PostgreSQL cleanup act on PIDs read from state
 * files that may be stale, so every signal is preceded by "is this PID still the process we started?".
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export type ProcState = 'alive' | 'zombie' | 'dead';

/**
 * A killed child stays a zombie until its parent reaps it, and `kill(pid, 0)` still succeeds on a zombie,
 * so the state letter in /proc/PID/stat is the only honest answer to "is it still running". The thread
 * group leader turns zombie before its other threads finish exiting, and the last of them is what closes the
 * process's sockets: a zombie leader with threads left still counts as alive.
 */
export async function procState(pid: number): Promise<ProcState> {
  const state = await stateLetter(pid);
  if (state === null) return 'dead';
  if (state !== 'Z' && state !== 'X') return 'alive';
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [String(pid)]);
  return tasks.some((t) => t !== String(pid)) ? 'alive' : 'zombie';
}

/** The state letter of PID in /proc (R, S, D, T for SIGSTOPped, Z...), or null when it is gone. */
export async function stateLetter(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may itself contain spaces or parentheses: the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

export async function cmdlineOf(pid: number): Promise<string[] | null> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return null;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

/**
 * True when PID is alive and one of its arguments is `path` or lies under it. Every process the lab starts
 * carries its directory in argv, so a PID reused by an unrelated process after a crash is never signalled.
 */
export async function isProcessUnder(pid: number, path: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  if ((await procState(pid)) !== 'alive') return false;
  const argv = await cmdlineOf(pid);
  if (!argv) return false;
  const prefix = path.endsWith('/') ? path : path + '/';
  return argv.some((a) => a === path || a.startsWith(prefix) || a.includes('=' + prefix) || a.endsWith('=' + path));
}

/** Children of PID (one level), from /proc/PID/task/PID/children. */
export async function childrenOf(pid: number): Promise<number[]> {
  try {
    const raw = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return raw.trim() === '' ? [] : raw.trim().split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

/** Resolves true once PID is dead or a zombie, false if it is still running after timeoutMs. */
export async function waitGone(pid: number, timeoutMs: number, pollMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if ((await procState(pid)) !== 'alive') return true;
    if (performance.now() >= deadline) return false;
    await sleep(pollMs);
  }
}

export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/**
 * SIGTERM, then SIGKILL once graceMs has passed; resolves when the process is gone.
 * graceMs 0 goes straight to SIGKILL.
 */
export async function terminate(pid: number, graceMs: number): Promise<void> {
  if (graceMs > 0) {
    if (!signal(pid, 'SIGTERM')) return;
    if (await waitGone(pid, graceMs)) return;
  }
  signal(pid, 'SIGKILL');
  await waitGone(pid, 5000);
}
