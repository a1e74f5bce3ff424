import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { isProcessUnder, procState } from '../../lib/util/proc.ts';
import { labDown } from '../../lib/lab/index.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import type { LabConfig } from '../../lib/lab/types.ts';
import { makeTempDir, type TempDir } from './tmp.ts';

export interface LabFixture {
  /** The temp folder the lab lives in, for a test's other paths (set once `before` ran). */
  readonly root: string;
  /** The lab's directory, `<root>/lab`. */
  readonly dir: string;
  /** PIDs a test saw the lab run: any of them still running from the lab's directory afterwards is killed. */
  readonly seen: Set<number>;
}

/**
 * A lab directory for one describe block. Afterwards, also when a test failed, the lab is brought down,
 * whatever process it left that still runs from its directory is killed (only those: a PID may have been
 * reused by then), and the folder is removed.
 */
export function labFixture(name: string): LabFixture {
  let tmp: TempDir | undefined;
  let dir = '';
  const seen = new Set<number>();
  before(async () => {
    tmp = await makeTempDir(name);
    dir = join(tmp.path, 'lab');
  });
  after(async () => {
    if (!tmp) return;
    try {
      await labDown({ dir });
    } finally {
      for (const pid of seen) if (await isProcessUnder(pid, dir)) process.kill(pid, 'SIGKILL');
      await tmp.remove();
    }
  });
  return {
    get root() {
      return tmp?.path ?? '';
    },
    get dir() {
      return dir;
    },
    seen,
  };
}

/** lab.json as it is now. */
export const labConfigNow = (dir: string) => JSON.parse(readFileSync(labPaths(dir).config, 'utf8')) as LabConfig;

/** The primary's own port as lab.json has it now: a live restore moves it to the restored copy's port. */
export function labPrimaryPort(dir: string): number {
  const c = labConfigNow(dir);
  return c.nodes[c.primary]!.port;
}

/** A node's port as lab.json has it now: a live restore starts each node from its copy on a port of its own. */
export const labNodePort = (dir: string, node: string) => labConfigNow(dir).nodes[node]!.port;

/** The ones of `pids` that are still running (a zombie is not). */
export async function livePids(pids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of pids) if ((await procState(p)) === 'alive') out.push(p);
  return out;
}

/**
 * Makes this process forget the Blob storage this machine may have configured, so what it reads and writes goes to
 * the lab's own Azurite (the rule in lib/adapters/postgres/backup/resolve.ts: the environment wins when set).
 */
export function forgetConfiguredBlobStorage(): void {
  for (const k of [
    'AZURE_STORAGE_CONNECTION_STRING',
    'AZURE_STORAGE_ACCOUNT_URL',
    'AZURE_STORAGE_SAS_TOKEN',
    'AZURE_STORAGE_ACCOUNT',
    'AZURE_STORAGE_KEY',
    'DRILL_BACKUP_CONTAINER',
  ])
    delete process.env[k];
}
