/**
 * The one way this harness replaces a file: write aside, flush, rename over. A reader (or a crash) sees
 * the old file or the new one, never half of either. Records, lab state and quarterly records all use it.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Synchronous on purpose: the lab daemon records a replica's PID before anything else can happen, so a
 * daemon SIGKILLed right after a spawn still leaves every PID it started on disk for `lab down`.
 */
export function writeFileAtomic(path: string, text: string): void {
  // A random suffix, not the PID alone: two writers in one process (the daemon's timers) must not share a temp file.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename itself must survive a crash too; some filesystems refuse to fsync a directory, and then it is best effort.
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* best effort */
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
