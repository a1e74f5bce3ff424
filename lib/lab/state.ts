/** The lab's state files: lab.json (what the lab should be) and daemon.json (what runs, by PID). */
import { readFile, rm } from 'node:fs/promises';
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

export const readConfig = (path: string) => readJson<LabConfig>(path);
export const readDaemonState = (path: string) => readJson<DaemonState>(path);
export const removeFile = (path: string) => rm(path, { force: true });
