import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  ensureRoleAndDatabase,
  initCluster,
  isRoot,
  isRunning,
  postmasterPid,
  readNodeConf,
  serverUser,
  startCluster,
  stopCluster,
  waitReady,
} from '../../lib/adapters/postgres/cluster.ts';
import { childrenOf, procState } from '../../lib/util/proc.ts';
import { freePort } from '../support/ports.ts';
import { makeTempDir, type TempDir } from '../support/tmp.ts';

async function query<T extends pg.QueryResultRow>(conn: pg.ClientConfig, sql: string): Promise<T[]> {
  const c = new pg.Client(conn);
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

async function uidOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

describe('PostgreSQL cluster control', () => {
  let tmp: TempDir;
  let dataDir: string;
  let port: number;
  let pids: number[] = [];

  before(async () => {
    tmp = await makeTempDir('pgc');
    dataDir = join(tmp.path, 'data');
    port = await freePort();
  });

  after(async () => {
    try {
      await stopCluster(dataDir, 'immediate', { timeoutMs: 10_000 });
    } finally {
      // Safety net if stopCluster itself failed: only the PIDs this test saw.
      for (const pid of pids) if ((await procState(pid)) === 'alive') process.kill(pid, 'SIGKILL');
      await tmp.remove();
    }
  });

  test('init writes the lab settings and the node file', async (t) => {
    const t0 = performance.now();
    await initCluster(dataDir, { port, socketDir: join(tmp.path, 'sock') });
    const ms = performance.now() - t0;
    assert.deepEqual(await readNodeConf(dataDir), { port, socketDir: join(tmp.path, 'sock') });
    const hba = await readFile(join(dataDir, 'pg_hba.conf'), 'utf8');
    assert.match(hba, /^host\s+all\s+all\s+127\.0\.0\.1\/32\s+trust$/m);
    assert.doesNotMatch(hba, /0\.0\.0\.0|::/, 'nothing beyond loopback');
    await assert.rejects(initCluster(dataDir, { port, socketDir: join(tmp.path, 'sock') }), /already holds/);
    t.diagnostic(`initCluster took ${ms.toFixed(0)} ms`);
  });

  test('start, query over TCP and the unix socket, running as the server user', async (t) => {
    assert.equal(await isRunning(dataDir), false);
    const t0 = performance.now();
    const pid = await startCluster(dataDir, { logFile: join(tmp.path, 'pg.log') });
    t.diagnostic(`startCluster took ${(performance.now() - t0).toFixed(0)} ms`);
    pids = [pid, ...(await childrenOf(pid))];
    assert.equal(await postmasterPid(dataDir), pid);
    assert.equal(await isRunning(dataDir), true);
    if (isRoot()) assert.equal(await uidOf(pid), (await serverUser()).uid, 'postmaster runs as postgres, not root');

    const admin = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
    await waitReady(admin, { timeoutMs: 5000 });
    await ensureRoleAndDatabase(admin, { role: 'drill', database: 'orders' });
    await ensureRoleAndDatabase(admin, { role: 'drill', database: 'orders' }); // idempotent

    const [row] = await query<Record<string, string>>(
      { host: '127.0.0.1', port, user: 'drill', database: 'orders' },
      `SELECT current_user AS "user", current_database() AS db, inet_server_port()::text AS port,
              current_setting('wal_level') AS wal_level, current_setting('wal_log_hints') AS hints,
              current_setting('hot_standby') AS hot, current_setting('fsync') AS fsync,
              current_setting('listen_addresses') AS listen, current_setting('max_wal_senders') AS senders`,
    );
    assert.deepEqual(row, {
      user: 'drill',
      db: 'orders',
      port: String(port),
      wal_level: 'replica',
      hints: 'on',
      hot: 'on',
      fsync: 'on',
      listen: '127.0.0.1',
      senders: '10',
    });
    const viaSocket = await query<{ n: number }>(
      { host: join(tmp.path, 'sock'), port, user: 'postgres', database: 'orders' },
      'SELECT 1 AS n',
    );
    assert.deepEqual(viaSocket, [{ n: 1 }]);
  });

  test('stop fast ends the postmaster and its children; stopping again is a no-op', async () => {
    const pid = (await postmasterPid(dataDir))!;
    const children = await childrenOf(pid);
    assert.ok(children.length >= 3, `postmaster has its auxiliary processes (${children.length})`);
    await stopCluster(dataDir, 'fast');
    assert.equal(await isRunning(dataDir), false);
    for (const p of [pid, ...children]) assert.notEqual(await procState(p), 'alive', `pid ${p} gone`);
    await stopCluster(dataDir, 'fast');
  });

  test('a restart keeps data', async () => {
    await startCluster(dataDir, { logFile: join(tmp.path, 'pg.log') });
    pids = [(await postmasterPid(dataDir))!];
    const rows = await query<{ datname: string }>(
      { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' },
      "SELECT datname FROM pg_database WHERE datname = 'orders'",
    );
    assert.deepEqual(rows, [{ datname: 'orders' }]);
    await stopCluster(dataDir, 'fast');
    assert.equal(await isRunning(dataDir), false);
  });

  test('a start after a kill clears lock files whose PID is now some other process, and leaves that process alone', async () => {
    // What a SIGKILLed postmaster leaves: postmaster.pid and the socket's lock, naming a PID that a zombie
    // not yet reaped, or an unrelated process reusing it, still holds. A process of the server user stands in.
    const { uid, gid } = await serverUser();
    const sleeper = spawn('sleep', ['60'], isRoot() ? { uid, gid } : {});
    const holder = sleeper.pid!;
    try {
      const socketLock = join(tmp.path, 'sock', `.s.PGSQL.${port}.lock`);
      await writeFile(join(dataDir, 'postmaster.pid'), `${holder}\n${dataDir}\n`);
      await writeFile(socketLock, `${holder}\n${dataDir}\n`);
      const pid = await startCluster(dataDir, { logFile: join(tmp.path, 'pg.log') });
      pids = [pid];
      assert.notEqual(pid, holder);
      assert.equal((await readFile(socketLock, 'utf8')).split('\n')[0], String(pid), "the socket lock is the new postmaster's");
      assert.equal(await procState(holder), 'alive', 'the unrelated process is not touched');
      await stopCluster(dataDir, 'fast');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
