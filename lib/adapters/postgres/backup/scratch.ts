/**
 * A throwaway PostgreSQL cluster to restore into, in its own folder on a free loopback port. It is
 * never the live database: dropping it (the restore's rollback) stops it and deletes its folder.
 */
import { spawn } from 'node:child_process';
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../blob/index.ts';
import { giveToServerUser, initCluster, isRoot, startCluster, stopCluster, type PgConn } from '../cluster.ts';
import { childEnv } from '../../../util/child-env.ts';

export interface ScratchCluster {
  /** The folder holding everything of this cluster: data, socket, log, downloads. */
  root: string;
  dataDir: string;
  port: number;
  socketDir: string;
  logFile: string;
  conn(database: string): PgConn;
}

export async function scratchRoot(parent: string): Promise<string> {
  await mkdir(parent, { recursive: true, mode: 0o755 });
  const root = await mkdtemp(join(parent, 'restore-'));
  // mkdtemp gives 0700; the postgres user must reach the data directory and the WAL folder through it.
  await chmod(root, 0o755);
  return root;
}

/** A scratch folder at a path chosen up front (journaled before the restore, so the rollback can find it). */
export async function makeScratchRoot(root: string): Promise<string> {
  await mkdir(root, { recursive: true, mode: 0o755 });
  await chmod(root, 0o755);
  return root;
}

function describe(root: string, port: number): ScratchCluster {
  return {
    root,
    dataDir: join(root, 'data'),
    port,
    socketDir: join(root, 's'),
    logFile: join(root, 'postgres.log'),
    conn: (database) => ({ host: '127.0.0.1', port, user: 'postgres', database }),
  };
}

/** An empty cluster for a logical restore. */
export async function initScratch(root: string): Promise<ScratchCluster> {
  const s = describe(root, await freeLoopbackPort());
  await initCluster(s.dataDir, {
    port: s.port,
    socketDir: s.socketDir,
    settings: { wal_level: 'minimal', max_wal_senders: 0, fsync: false, synchronous_commit: 'off', full_page_writes: false },
  });
  await startCluster(s.dataDir, { logFile: s.logFile, timeoutMs: 60_000 });
  return s;
}

/** A system command (tar, chown) that must succeed; its stderr tail in the error. */
export function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv() });
    let err = '';
    c.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    c.once('error', reject);
    c.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${err.trim().slice(-400)}`)),
    );
  });
}

const SCRATCH_HBA = `# drill scratch restore: loopback only, throwaway copy
local all all trust
host all all 127.0.0.1/32 trust
`;

export interface RecoveryTarget {
  /** ISO time: stop replay at the first commit after it. Absent: `immediate` unless `latest`. */
  time?: string;
  /** Replay every archived segment. */
  latest?: boolean;
}

/**
 * A cluster from a base backup tar, recovering from a local WAL folder. Settings of the source that
 * would reach outside (archiving, preloaded libraries, its port) are overridden in postgresql.auto.conf,
 * which PostgreSQL reads last.
 */
export async function startFromBaseBackup(root: string, tarPath: string, walDir: string, target: RecoveryTarget): Promise<ScratchCluster> {
  const s = describe(root, await freeLoopbackPort());
  await mkdir(s.dataDir, { mode: 0o700 });
  await run('tar', ['-xf', tarPath, '-C', s.dataDir]);
  await mkdir(s.socketDir, { recursive: true, mode: 0o755 });
  const hasConf = await stat(join(s.dataDir, 'postgresql.conf')).then(
    () => true,
    () => false,
  );
  if (!hasConf) await writeFile(join(s.dataDir, 'postgresql.conf'), '');
  // A drill-made source includes its per-node file; give the copy its own port and socket there too.
  await writeFile(join(s.dataDir, 'drill-node.conf'), `port = ${s.port}\nunix_socket_directories = '${s.socketDir}'\n`);
  await writeFile(join(s.dataDir, 'pg_hba.conf'), SCRATCH_HBA);
  // PostgreSQL reads `2026-12-02 06:32:50.587+00`, not the ISO `T...Z` form.
  const pgTime = target.time ? new Date(target.time).toISOString().replace('T', ' ').replace('Z', '+00') : '';
  const recovery = target.time
    ? `recovery_target_time = '${pgTime}'\nrecovery_target_action = 'promote'\n`
    : target.latest
      ? ''
      : `recovery_target = 'immediate'\nrecovery_target_action = 'promote'\n`;
  const overrides = [
    `\n# drill scratch restore`,
    `port = ${s.port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${s.socketDir}'`,
    `hba_file = '${join(s.dataDir, 'pg_hba.conf')}'`,
    `archive_mode = off`,
    `shared_preload_libraries = ''`,
    `logging_collector = off`,
    `restore_command = 'cp ${walDir}/%f %p'`,
    recovery,
  ].join('\n');
  await appendFile(join(s.dataDir, 'postgresql.auto.conf'), overrides);
  await rm(join(s.dataDir, 'postmaster.pid'), { force: true });
  await writeFile(join(s.dataDir, 'recovery.signal'), '');
  await chmod(s.dataDir, 0o700);
  if (isRoot()) await run('chown', ['-R', 'postgres:postgres', s.dataDir, s.socketDir, walDir]);
  await startCluster(s.dataDir, { logFile: s.logFile, timeoutMs: 300_000 });
  return s;
}

export async function logTail(s: ScratchCluster, lines = 8): Promise<string> {
  const text = await readFile(s.logFile, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** Stops the scratch cluster and deletes its folder. Safe to call twice or on a half-made one. */
export async function dropScratch(root: string): Promise<void> {
  const dataDir = join(root, 'data');
  await stopCluster(dataDir, 'immediate', { timeoutMs: 30_000 }).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
}

export { giveToServerUser };
