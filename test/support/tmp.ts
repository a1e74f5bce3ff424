import { chmodSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

/**
 * A fresh directory `<tmp>/drill-<name>-XXXXXX` that the `postgres` user can traverse: mkdtemp makes it 0700,
 * which would stop PostgreSQL (run as postgres when we are root) from reaching a data dir inside it.
 */
export function scratchDir(name: string): string {
  const path = mkdtempSync(join(tmpdir(), `drill-${name}-`));
  chmodSync(path, 0o755);
  return path;
}

/** A scratchDir that knows how to remove itself, for tests that clean up after each case. */
export async function makeTempDir(name: string): Promise<TempDir> {
  const path = scratchDir(name);
  return { path, remove: () => rm(path, { recursive: true, force: true, maxRetries: 3 }) };
}
