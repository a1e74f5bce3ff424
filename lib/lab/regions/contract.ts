/**
 * What the two halves of a region loss share on disk: the secondary region's database, restored there from
 * the secondary's copy of the backups (written by the restore, read by `drill lab status` and `drill lab
 * down`), and the global front's state (which region the load reaches). Files, not memory: a harness killed
 * mid-drill leaves them for `drill recover` and `drill lab down` to read.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRunning, stopCluster } from '../../adapters/postgres/cluster.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';

export type RegionName = 'primary' | 'secondary';

/** The secondary region's PostgreSQL, restored from the secondary account's base backup and WAL. */
export interface SecondaryDb {
  port: number;
  dataDir: string;
  logFile: string;
  /** When the restored cluster was promoted and took writes. */
  restoredAt: string;
  /** The base backup it was restored from (folder in the secondary's backup container). */
  backupFolder: string;
  /** The last WAL position replayed before promotion, and the new timeline. */
  reachedLsn: string;
  timeline: number;
}

/** The global front the load hits, as Front Door sits before both regions. */
export interface GlobalFrontState {
  pid: number;
  /** Where the load connects: stable for the life of the lab. */
  port: number;
  /** Loopback port of its control API (GET /state, PUT /active). */
  controlPort: number;
  /** The region requests go to. */
  active: RegionName;
  /** That region's front; null when the active region has none running. */
  upstreamPort: number | null;
  /** When the front last switched region; null while it has never switched. */
  switchedAt: string | null;
  updatedAt: string;
}

export function regionPaths(labDir: string) {
  const secondary = join(labDir, 'secondary');
  return {
    secondaryDir: secondary,
    /** The restored cluster's folder: data/ and postgres.log inside. */
    secondaryPg: join(secondary, 'pg'),
    secondaryDb: join(secondary, 'pg', 'db.json'),
    globalFront: join(labDir, 'global-front.json'),
    globalFrontLog: join(labDir, 'logs', 'global-front.log'),
  };
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
}

export const readSecondaryDb = (labDir: string) => readJson<SecondaryDb>(regionPaths(labDir).secondaryDb);
export const writeSecondaryDb = (labDir: string, db: SecondaryDb) => writeJsonAtomic(regionPaths(labDir).secondaryDb, db);
export const readGlobalFront = (labDir: string) => readJson<GlobalFrontState>(regionPaths(labDir).globalFront);

/** Whether the secondary's database runs (its postmaster alive on its data directory). */
export async function secondaryDbRunning(labDir: string): Promise<boolean> {
  const db = await readSecondaryDb(labDir);
  return db !== null && (await isRunning(db.dataDir));
}

/** Stops the secondary's database if it runs; its data stays until `drill lab down --purge`. Returns whether it ran. */
export async function stopSecondaryDb(labDir: string): Promise<boolean> {
  const db = await readSecondaryDb(labDir);
  if (!db || !(await isRunning(db.dataDir))) return false;
  await stopCluster(db.dataDir, 'fast');
  return true;
}
