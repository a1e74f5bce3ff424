import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv as minimalEnv } from '../util/child-env.ts';

/** `$DRILL_LAB_DIR`, else `<os temp dir>/drill-lab-<uid>`: one lab per user by default. */
export function defaultLabDir(): string {
  return process.env.DRILL_LAB_DIR || join(tmpdir(), `drill-lab-${process.getuid?.() ?? 'user'}`);
}

/**
 * A live restore's copy of the primary, made beside its data directory (`pg/<node>/data.<runId>`) and linked in
 * as `data` once checked: lab down drops the ones never linked in.
 */
export const RESTORED_COPY_PREFIX = 'data.';

export interface LabPaths {
  dir: string;
  config: string;
  daemonState: string;
  lock: string;
  logs: string;
  daemonLog: string;
  replicasLog: string;
  /** Owned by the server user when root: data dirs, server logs, sockets. */
  pg: string;
  socketDir: string;
  /** The lab's WAL archiver: its spool of received segments, its state file, its log. */
  walArchive: { dir: string; spool: string; state: string; log: string; pendingBaseBackup: string };
  /** Each replica's request log (`<name>.jsonl`, one JSON line per request); the shipper's offsets and its own log. */
  serviceLogs: { dir: string; shipState: string; shipperLog: string };
  /** `log` is PostgreSQL's own log; on a Patroni lab PostgreSQL logs into its member's `patroniLog`. */
  node(name: string): { data: string; log: string; patroniLog: string };
}

export function labPaths(dir: string): LabPaths {
  const d = resolve(dir);
  const pg = join(d, 'pg');
  return {
    dir: d,
    config: join(d, 'lab.json'),
    daemonState: join(d, 'daemon.json'),
    lock: join(d, 'lock'),
    logs: join(d, 'logs'),
    daemonLog: join(d, 'logs', 'daemon.log'),
    replicasLog: join(d, 'logs', 'replicas.log'),
    pg,
    socketDir: join(pg, 'sock'),
    walArchive: {
      dir: join(d, 'wal-archive'),
      spool: join(d, 'wal-archive', 'spool'),
      state: join(d, 'wal-archive', 'state.json'),
      log: join(d, 'logs', 'wal-archiver.log'),
      pendingBaseBackup: join(d, 'wal-archive', 'base-backup-pending.json'),
    },
    serviceLogs: {
      dir: join(d, 'service-logs'),
      shipState: join(d, 'service-logs', 'shipped.json'),
      shipperLog: join(d, 'logs', 'log-shipper.log'),
    },
    node: (name) => ({
      data: join(pg, name, 'data'),
      log: join(pg, name, 'postgres.log'),
      patroniLog: join(d, 'logs', `patroni-${name}.log`),
    }),
  };
}

/** Where a region's compute keeps its state: the primary's is the lab's own; the secondary's is under `<lab>/secondary/`. */
export interface RegionComputePaths {
  daemonState: string;
  daemonLog: string;
  replicasLog: string;
  serviceLogs: LabPaths['serviceLogs'];
}

export function regionComputePaths(dir: string, region: 'primary' | 'secondary'): RegionComputePaths {
  const p = labPaths(dir);
  if (region === 'primary') return p;
  const sec = join(p.dir, 'secondary');
  return {
    daemonState: join(sec, 'daemon.json'),
    daemonLog: join(p.logs, 'secondary-daemon.log'),
    replicasLog: join(p.logs, 'secondary-replicas.log'),
    serviceLogs: {
      dir: join(sec, 'service-logs'),
      shipState: join(sec, 'service-logs', 'shipped.json'),
      shipperLog: join(p.logs, 'secondary-log-shipper.log'),
    },
  };
}

/**
 * Node arguments that run one of the lab's TypeScript entries. tsx is resolved to an absolute URL so the
 * child finds it whatever its working directory (the lab directory, not the repository). Only tsx's ESM
 * hooks: with its CommonJS hooks too, loading `pg` alone took 0.3 s longer per replica start.
 */
export function entryArgv(
  entry: 'daemon.ts' | 'service.ts' | 'wal-archiver.ts' | 'log-shipper.ts' | 'replicator.ts' | 'global-front.ts',
): string[] {
  return ['--import', import.meta.resolve('tsx/esm'), fileURLToPath(new URL(`./daemon/${entry}`, import.meta.url))];
}

/**
 * Environment for the lab's long-lived processes (daemon, replicas): they run for days beside whatever
 * `drill lab up` had exported, so they get none of it, only what a program needs to run.
 */
export function childEnv(): Record<string, string> {
  return minimalEnv();
}
