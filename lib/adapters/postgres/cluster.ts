/**
 * PostgreSQL 15 cluster control: initdb, pg_ctl start/stop, liveness by PID, readiness by query.
 * When the harness runs as root (CI containers, these machines), every server binary runs as the
 * `postgres` user, because initdb and postgres refuse root.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { chmod, chown, lstat, mkdir, readFile, realpath, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { serverUserEnv } from '../../util/child-env.ts';
import { childrenOf, cmdlineOf, isProcessUnder, procState, signal, waitGone } from '../../util/proc.ts';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
/** The file postgresql.conf includes last: settings that differ per node (port, socket). */
export const NODE_CONF = 'drill-node.conf';

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface PgConn {
  host: string;
  port: number;
  user: string;
  database: string;
}

export interface NodeSettings {
  port: number;
  /** Directory of the unix socket; its path plus `/.s.PGSQL.<port>` must stay under 107 bytes. */
  socketDir: string;
}

export interface InitOptions extends NodeSettings {
  /** Superuser created by initdb. */
  superuser?: string;
  /** Extra cluster-wide settings, written after the defaults (last one wins). */
  settings?: Record<string, string | number | boolean>;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let postgresIds: { uid: number; gid: number } | null = null;

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  if (postgresIds) return postgresIds;
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'));
  const f = line?.split(':');
  if (!f || f.length < 4) throw new Error('running as root needs a `postgres` user to run PostgreSQL, and /etc/passwd has none');
  postgresIds = { uid: Number(f[2]), gid: Number(f[3]) };
  return postgresIds;
}

/** Makes path belong to the user that runs the server (postgres when we are root, else ourselves). */
export async function giveToServerUser(path: string): Promise<void> {
  if (!isRoot()) return;
  const { uid, gid } = await postgresUser();
  await chown(path, uid, gid);
}

/** uid/gid the server runs as: needed by callers that check whether it can reach a directory. */
export async function serverUser(): Promise<{ uid: number; gid: number }> {
  if (isRoot()) return postgresUser();
  return { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
}

/**
 * runuser keeps the environment it is given (an exported PGPASSWORD or PGPORT would leak in, and root's
 * PATH has folders postgres cannot enter): runuser itself gets only PATH and LC_ALL, and the server
 * binary starts from an empty environment below it.
 */
function serverCommand(bin: string, args: string[]): [string, string[]] {
  const env = ['env', '-i', 'PATH=/usr/bin:/bin', 'LC_ALL=C.UTF-8', join(PG_BIN, bin), ...args];
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', ...env]] : [env[0]!, env.slice(1)];
}

/**
 * A server binary inherits our working directory, which postgres may not be allowed to enter (a checkout
 * under /root or in a 0700 temp folder): pg_rewind then fails "could not change directory". The folder
 * holding the data directory it works on is one postgres reaches; `/` when there is none yet.
 */
function serverCwd(args: string[]): string {
  const i = args.findIndex((a) => a === '-D' || a === '--pgdata' || a === '--target-pgdata');
  const eq = args.find((a) => /^--(pgdata|target-pgdata)=/.test(a));
  const data = i >= 0 ? args[i + 1] : eq?.slice(eq.indexOf('=') + 1);
  const dir = data ? dirname(resolve(data)) : '/';
  return existsSync(dir) ? dir : '/';
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runServerBinary(bin: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  const [file, argv] = serverCommand(bin, args);
  return new Promise((resolve) => {
    // No detached session needed: pg_ctl puts the postmaster in a session of its own (setsid), so a Ctrl-C
    // meant for the harness does not reach the database.
    const options = { timeout: Math.max(1, Math.floor(timeoutMs)), maxBuffer: 4 << 20, env: serverUserEnv(), cwd: serverCwd(args) };
    execFile(file, argv, options, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (err && !stdout ? err.message : '')) });
    });
  });
}

function confValue(v: string | number | boolean): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return `'${v.replace(/'/g, "''")}'`;
}

function confLines(settings: Record<string, string | number | boolean>): string {
  return (
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${confValue(v)}`)
      .join('\n') + '\n'
  );
}

/**
 * Settings shared by every node of a lab cluster. wal_level, wal_log_hints, senders and hot_standby are
 * there for a streaming standby and pg_rewind; fsync stays on because RPO drills measure what survives a crash.
 */
const CLUSTER_SETTINGS: Record<string, string | number | boolean> = {
  listen_addresses: '127.0.0.1',
  wal_level: 'replica',
  wal_log_hints: true,
  max_wal_senders: 10,
  max_replication_slots: 10,
  hot_standby: true,
  fsync: true,
  synchronous_commit: 'on',
  full_page_writes: true,
  // With the 5 s default a promoted standby sometimes waits 5 s before retrying WAL (FIELD-NOTES).
  wal_retrieve_retry_interval: '100ms',
  // The WAL archiver closes a segment every archiveLag/2 under writes, so segments fill fast; a former primary
  // rejoining after a failover still needs the new primary's WAL from the point they parted, and the standby has no slot.
  wal_keep_size: '512MB',
  // A base backup or a crashed node starts with a sync of its whole data directory before recovery; file by
  // file (the default) that took 3.3 s of a standby's start on a loaded 2-core machine, syncfs one call.
  recovery_init_sync_method: 'syncfs',
  logging_collector: false,
  log_line_prefix: '%m [%p] %q%u@%d ',
};

/**
 * Loopback-only trust: the lab listens on 127.0.0.1 and a socket inside its own directory, holds throwaway
 * data, and a password would only be one more secret to leak into logs and run records.
 */
const LAB_HBA = `# drill lab: loopback only, throwaway data: trust (see lib/adapters/postgres/cluster.ts)
local   all           all                  trust
host    all           all   127.0.0.1/32   trust
local   replication   all                  trust
host    replication   all   127.0.0.1/32   trust
`;

export async function initCluster(dataDir: string, options: InitOptions): Promise<void> {
  const exists = await stat(join(dataDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  );
  if (exists) throw new Error(`${dataDir} already holds a PostgreSQL cluster`);
  // A recursive mkdir would give the parents 0700 too, and postgres could not reach the data dir through them.
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  await giveToServerUser(dataDir);
  // --no-sync: a lab cluster that loses its fresh files to an OS crash is re-created; the server itself runs with fsync on.
  const args = [
    '-D',
    dataDir,
    '-U',
    options.superuser ?? 'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    '--no-instructions',
    '--no-sync',
  ];
  const r = await runServerBinary('initdb', args);
  if (r.code !== 0) throw new Error(`initdb ${dataDir} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  const confPath = join(dataDir, 'postgresql.conf');
  const conf = await readFile(confPath, 'utf8');
  const ours = `\n# --- drill lab ---\n${confLines({ ...CLUSTER_SETTINGS, ...options.settings })}include '${NODE_CONF}'\n`;
  await writeServerFile(confPath, conf + ours);
  await writeServerFile(join(dataDir, 'pg_hba.conf'), LAB_HBA);
  await writeNodeConf(dataDir, options);
}

/**
 * Port and socket live in their own file because pg_basebackup and pg_rewind copy a node's config from
 * another node: after either, call this again to give the node back its own identity.
 */
export async function writeNodeConf(dataDir: string, node: NodeSettings): Promise<void> {
  const problem = socketPathProblem(node.socketDir);
  if (problem) throw new Error(problem);
  await mkdir(node.socketDir, { recursive: true, mode: 0o755 });
  await giveToServerUser(node.socketDir);
  // mmap: dynamic shared memory in the data dir's pg_dynshmem, not /dev/shm. A SIGKILLed postmaster (the
  // failover drill's fault) never unlinks its posix segments, and /dev/shm filled with them. Here, so nodes
  // initialised before this line get it at their next start too.
  await writeServerFile(
    join(dataDir, NODE_CONF),
    confLines({ port: node.port, unix_socket_directories: node.socketDir, dynamic_shared_memory_type: 'mmap' }),
  );
}

/** Linux caps a unix socket path at 107 bytes; PostgreSQL appends `/.s.PGSQL.<port>.lock` to the directory. */
export function socketPathProblem(socketDir: string): string | null {
  const longest = join(socketDir, '.s.PGSQL.65535.lock');
  return Buffer.byteLength(longest) > 107
    ? `unix socket path ${longest} is longer than the 107 bytes Linux allows: use a shorter directory`
    : null;
}

export async function readNodeConf(dataDir: string): Promise<NodeSettings | null> {
  const text = await readFile(join(dataDir, NODE_CONF), 'utf8').catch(() => null);
  if (text === null) return null;
  const port = /^port = (\d+)/m.exec(text)?.[1];
  const socketDir = /^unix_socket_directories = '(.*)'/m.exec(text)?.[1];
  return port && socketDir ? { port: Number(port), socketDir: socketDir.replace(/''/g, "'") } : null;
}

async function writeServerFile(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  await giveToServerUser(path);
}

export async function postmasterPid(dataDir: string): Promise<number | null> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => null);
  const pid = Number(text?.split('\n', 1)[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * PID is a postmaster of this data directory: its command line names the directory, by the path given or, when
 * that is a symlink (a lab node whose restored copy was started where it was made), by the path it points to.
 */
async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  if (await isProcessUnder(pid, dataDir)) return true;
  const real = await realpath(dataDir).catch(() => dataDir);
  return real !== resolve(dataDir) && (await isProcessUnder(pid, real));
}

/** Running = postmaster.pid names a live process whose command line has this data directory (not a reused PID). */
export async function isRunning(dataDir: string): Promise<boolean> {
  const pid = await postmasterPid(dataDir);
  return pid !== null && (await isPostmasterOf(pid, dataDir));
}

/**
 * Removes a data directory that is stopped: a symlink goes with the directory it points to, so a node rebuilt
 * where a restored copy was linked in leaves no orphan behind.
 */
export async function removeDataDir(dataDir: string): Promise<void> {
  const st = await lstat(dataDir).catch(() => null);
  if (st?.isSymbolicLink()) {
    const real = await realpath(dataDir).catch(() => null);
    if (real) await rm(real, { recursive: true, force: true });
    await unlink(dataDir).catch(() => undefined);
    return;
  }
  await rm(dataDir, { recursive: true, force: true });
}

/**
 * A killed postmaster leaves two lock files behind, postmaster.pid in the data directory and
 * `.s.PGSQL.<port>.lock` beside its socket, and PostgreSQL refuses to start (pg_rewind's crash recovery
 * too) while the PID in either "exists": a zombie not yet reaped by init, or the PID reused by an unrelated
 * process, both do (seen here right after a kill under load, and on CI where init reaps late). Removes each
 * file whose PID is not a running postmaster of this data directory; a running one is left alone.
 */
export async function clearStaleLock(dataDir: string): Promise<void> {
  const pid = await postmasterPid(dataDir);
  if (pid !== null && (await isPostmasterOf(pid, dataDir))) return;
  await rm(join(dataDir, 'postmaster.pid'), { force: true });
  const node = await readNodeConf(dataDir);
  if (!node) return;
  const socketLock = join(node.socketDir, `.s.PGSQL.${node.port}.lock`);
  const holder = Number((await readFile(socketLock, 'utf8').catch(() => '')).split('\n', 1)[0]);
  // A live postmaster (of another data directory on the same port) keeps its lock: starting then fails
  // with PostgreSQL's own message. A backend's command line reads "postgres: ...", a postmaster's "postgres -D".
  if (Number.isInteger(holder) && holder > 0 && (await procState(holder)) === 'alive') {
    const args = await cmdlineOf(holder);
    if (args && /(^|\/)postgres$/.test(args[0] ?? '') && args.includes('-D')) return;
  }
  await rm(socketLock, { force: true });
}

/** Starts the server and resolves with the postmaster PID once it accepts connections. */
export async function startCluster(dataDir: string, options: { logFile: string; timeoutMs?: number }): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  await clearStaleLock(dataDir);
  // pg_ctl opens the log as postgres: it must exist and belong to postgres first.
  await writeFile(options.logFile, '', { flag: 'a', mode: 0o640 });
  await giveToServerUser(options.logFile);
  const args = ['start', '-D', dataDir, '-l', options.logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s'];
  const r = await runServerBinary('pg_ctl', args, timeoutMs + 5000);
  const pid = await postmasterPid(dataDir);
  if (r.code !== 0 || pid === null) {
    const log = await readFile(options.logFile, 'utf8').catch(() => '');
    const tail = log.trim().split('\n').slice(-8).join('\n');
    throw new Error(
      `PostgreSQL in ${dataDir} did not start (pg_ctl exit ${r.code}): ${r.stderr.trim()}\n--- ${options.logFile} (tail) ---\n${tail}`,
    );
  }
  return pid;
}

/**
 * Stops the server with pg_ctl; when that fails or times out, escalates to immediate and finally to
 * SIGKILL of the postmaster and its children (a postmaster killed alone leaves backends that still answer).
 */
export async function stopCluster(dataDir: string, mode: StopMode = 'fast', options: { timeoutMs?: number } = {}): Promise<void> {
  const pid = await postmasterPid(dataDir);
  if (pid === null || !(await isPostmasterOf(pid, dataDir))) return;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const r = await runServerBinary(
    'pg_ctl',
    ['stop', '-D', dataDir, '-m', mode, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-s'],
    timeoutMs + 5000,
  );
  if (r.code === 0 && (await waitGone(pid, 2000))) return;
  if (mode !== 'immediate') {
    await runServerBinary('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10', '-s'], 15_000);
    if (await waitGone(pid, 2000)) return;
  }
  const children = await childrenOf(pid);
  signal(pid, 'SIGKILL');
  for (const c of children) signal(c, 'SIGKILL');
  if (!(await waitGone(pid, 5000))) throw new Error(`PostgreSQL postmaster ${pid} (${dataDir}) survived SIGKILL`);
}

/**
 * The host dies: SIGKILL of the postmaster and every child at once. The postmaster is stopped first so it
 * can neither fork a new backend nor react to its children dying between the listing and the kill; a
 * backend left alive would still acknowledge writes that the failover then loses. Null when not running.
 */
export async function crashCluster(dataDir: string): Promise<{ pid: number; children: number[] } | null> {
  const pid = await postmasterPid(dataDir);
  if (pid === null || !(await isPostmasterOf(pid, dataDir))) return null;
  signal(pid, 'SIGSTOP');
  const children = await childrenOf(pid);
  for (const c of children) signal(c, 'SIGKILL');
  signal(pid, 'SIGKILL');
  const gone = await Promise.all([pid, ...children].map((p) => waitGone(p, 5000)));
  if (gone.some((g) => !g)) throw new Error(`PostgreSQL postmaster ${pid} (${dataDir}) or a child survived SIGKILL`);
  return { pid, children };
}

/** Resolves once a query succeeds; rejects with the last connection error after timeoutMs. */
export async function waitReady(conn: PgConn, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  const deadline = performance.now() + (options.timeoutMs ?? 30_000);
  let last: unknown;
  while (performance.now() < deadline) {
    options.signal?.throwIfAborted();
    const client = new pg.Client({ ...conn, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (e) {
      last = e;
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(25);
  }
  throw new Error(
    `PostgreSQL at ${conn.host}:${conn.port} not ready after ${options.timeoutMs ?? 30_000} ms: ${(last as Error)?.message ?? 'no attempt'}`,
  );
}

/** Idempotent: creates the login role and the database it owns when they are missing. */
export async function ensureRoleAndDatabase(admin: PgConn, names: { role: string; database: string }): Promise<void> {
  const client = new pg.Client({ ...admin, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const role = client.escapeIdentifier(names.role);
    const hasRole = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [names.role]);
    if (hasRole.rowCount === 0) await client.query(`CREATE ROLE ${role} LOGIN`);
    const hasDb = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [names.database]);
    if (hasDb.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(names.database)} OWNER ${role}`);
  } finally {
    await client.end();
  }
}
