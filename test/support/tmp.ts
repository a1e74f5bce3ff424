import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

/**
 * A fresh directory under the OS temp dir that the `postgres` user can traverse: mkdtemp makes it 0700,
 * which would stop PostgreSQL (run as postgres when we are root) from reaching a data dir inside it.
 */
export async function makeTempDir(prefix = 'drill-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  await chmod(path, 0o755);
  return { path, remove: () => rm(path, { recursive: true, force: true, maxRetries: 3 }) };
}
