/** The lab's state files: lab.json (what the lab should be) and daemon.json (what runs, by PID). */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { DaemonState, LabConfig } from './types.ts';

export async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // A torn or hand-edited file is reported, not guessed at.
    throw new Error(`cannot read lab state ${path}: ${(e as Error).message}`);
  }
}

/** Write-then-rename, so a reader (or a crash) never sees half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

/**
 * Synchronous on purpose: the daemon records a replica's PID before anything else can happen, so a daemon
 * SIGKILLed right after a spawn still leaves every PID it started on disk for `lab down`.
 */
export function writeJsonAtomicSync(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

export function readJsonSync<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

export const readConfig = (path: string) => readJson<LabConfig>(path);
export const readDaemonState = (path: string) => readJson<DaemonState>(path);
export const removeFile = (path: string) => rm(path, { force: true });
