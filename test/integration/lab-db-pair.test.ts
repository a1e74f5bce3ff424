import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { childrenOf } from '../../lib/util/proc.ts';
import { labDown, labStatus, labUp, type LabInfo } from '../../lib/lab/index.ts';
import { labFixture, livePids } from '../support/lab.ts';

/**
 * The lab's PostgreSQL pair against real servers: a primary and a streaming hot standby in async and sync
 * mode, data flowing from one to the other, and nothing of either left running after `lab down`.
 */

async function query<T extends pg.QueryResultRow>(port: number, sql: string, params: unknown[] = [], database = 'orders'): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database, connectionTimeoutMillis: 3000 });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Every PostgreSQL process of the lab: both postmasters and all their children. */
async function postgresPids(info: LabInfo): Promise<number[]> {
  const out: number[] = [];
  for (const n of info.db.nodes) {
    if (n.pid === null) continue;
    out.push(n.pid, ...(await childrenOf(n.pid)));
  }
  return out;
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
}

describe('lab PostgreSQL pair', { timeout: 180_000 }, () => {
  const lab = labFixture('labpair');
  const seen = lab.seen;
  let info: LabInfo;

  test('a fresh lab has a primary and an async streaming hot standby', async (t) => {
    const phases: string[] = [];
    const t0 = performance.now();
    info = await labUp({ dir: lab.dir, replicas: 1, onPhase: (name, ms) => phases.push(`${name} ${ms.toFixed(0)}`) });
    t.diagnostic(`labUp fresh took ${(performance.now() - t0).toFixed(0)} ms: ${phases.join(', ')}`);
    (await postgresPids(info)).forEach((p) => seen.add(p));

    assert.equal(info.db.replication, 'async');
    assert.deepEqual(
      info.db.nodes.map((n) => [n.name, n.role]),
      [
        ['n1', 'primary'],
        ['n2', 'standby'],
      ],
    );
    const [primary, standby] = info.db.nodes;
    assert.equal(info.db.port, primary!.port);
    assert.notEqual(primary!.port, standby!.port);
    assert.ok(standby!.dataDir.startsWith(lab.dir + '/'), 'the standby lives in the lab directory');

    const senders = await query<{ application_name: string; state: string; sync_state: string }>(
      primary!.port,
      `SELECT application_name, state, sync_state FROM pg_stat_replication
        WHERE pid IS DISTINCT FROM (SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'drill_wal_archive')`,
    );
    // The lab's WAL archiver streams from the primary too, from its own slot; it is no standby.
    assert.deepEqual(senders, [{ application_name: 'n2', state: 'streaming', sync_state: 'async' }]);
    const [rec] = await query<{ rec: boolean; hot: string }>(
      standby!.port,
      "SELECT pg_is_in_recovery() AS rec, current_setting('hot_standby') AS hot",
    );
    assert.deepEqual(rec, { rec: true, hot: 'on' });
    const slots = await query<{ slot_name: string; active: boolean }>(primary!.port, 'SELECT slot_name, active FROM pg_replication_slots');
    assert.deepEqual(slots, [{ slot_name: 'drill_n2', active: true }], 'the primary keeps WAL for the standby in a slot');
    const [hints] = await query<{ v: string }>(primary!.port, "SELECT current_setting('wal_log_hints') AS v");
    assert.equal(hints!.v, 'on', 'pg_rewind needs wal_log_hints');

    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.up, true);
    assert.deepEqual(s.problems, []);
    assert.deepEqual(
      s.components.filter((c) => c.name.startsWith('postgres')).map((c) => [c.name, c.pid, c.alive]),
      [
        ['postgres', primary!.pid, true],
        ['postgres-standby', standby!.pid, true],
      ],
    );
    const n2 = s.database!.nodes.find((n) => n.name === 'n2')!;
    assert.equal(n2.inRecovery, true);
    assert.equal(n2.streaming, true);
    assert.equal(n2.syncState, 'async');
  });

  test('a write on the primary is visible on the standby', async (t) => {
    const [primary, standby] = info.db.nodes;
    const token = `pair-${Date.now()}`;
    await query(primary!.port, 'CREATE TABLE IF NOT EXISTS pair_check (token text PRIMARY KEY)');
    const t0 = performance.now();
    await query(primary!.port, 'INSERT INTO pair_check VALUES ($1)', [token]);
    await until(
      'row on the standby',
      async () => (await query(standby!.port, 'SELECT 1 FROM pair_check WHERE token = $1', [token])).length === 1,
    );
    t.diagnostic(`visible on the standby ${(performance.now() - t0).toFixed(1)} ms after the insert returned`);
    await assert.rejects(
      query(standby!.port, 'INSERT INTO pair_check VALUES ($1)', [`${token}-2`]),
      /read-only transaction/,
      'a hot standby refuses writes',
    );
  });

  test('down stops both nodes and every PostgreSQL process, by PID', async (t) => {
    const pids = await postgresPids(info);
    pids.forEach((p) => seen.add(p));
    assert.ok(pids.length >= 2 + 4, `two postmasters and their helpers: ${pids.length}`);
    const t0 = performance.now();
    const down = await labDown({ dir: lab.dir });
    t.diagnostic(`labDown took ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(new Set(down.stopped.map((s) => s.name)), new Set(['daemon', 'postgres:n1', 'postgres:n2', 'azurite']));
    assert.deepEqual(await livePids(pids), [], 'no PostgreSQL process of the lab is left');
  });

  test('up again reuses both data directories; sync mode makes the standby synchronous', async (t) => {
    const t0 = performance.now();
    const again = await labUp({ dir: lab.dir, replicas: 1, replication: 'sync' });
    t.diagnostic(`labUp on existing dirs (sync) took ${(performance.now() - t0).toFixed(0)} ms`);
    (await postgresPids(again)).forEach((p) => seen.add(p));
    assert.equal(again.db.replication, 'sync');
    assert.deepEqual(
      again.db.nodes.map((n) => [n.name, n.port]),
      info.db.nodes.map((n) => [n.name, n.port]),
      'same nodes, same ports',
    );
    const [primary, standby] = again.db.nodes;
    const senders = await query<{ application_name: string; sync_state: string }>(
      primary!.port,
      'SELECT application_name, sync_state FROM pg_stat_replication',
    );
    assert.deepEqual(senders, [{ application_name: 'n2', sync_state: 'sync' }]);
    const [conf] = await query<{ names: string; commit: string }>(
      primary!.port,
      "SELECT current_setting('synchronous_standby_names') AS names, current_setting('synchronous_commit') AS commit",
    );
    assert.match(conf!.names, /n2/);
    assert.equal(conf!.commit, 'on');
    // The standby must not inherit the primary's synchronous_standby_names (FIELD-NOTES): promoted, it would hang every commit.
    const [inherited] = await query<{ names: string }>(standby!.port, "SELECT current_setting('synchronous_standby_names') AS names");
    assert.equal(inherited!.names, '');
    const rows = await query<{ n: number }>(standby!.port, 'SELECT count(*)::int AS n FROM pair_check');
    assert.ok(rows[0]!.n >= 1, 'the data written before the restart is there');

    // A sync commit returns only after the standby flushed it; with the standby stopped it would wait.
    const token = `sync-${Date.now()}`;
    await query(primary!.port, 'INSERT INTO pair_check VALUES ($1)', [token]);
    await until(
      'sync row on the standby',
      async () => (await query(standby!.port, 'SELECT 1 FROM pair_check WHERE token = $1', [token])).length === 1,
      5000,
    );
    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.database!.nodes.find((n) => n.name === 'n2')!.syncState, 'sync');
    info = again;
  });

  test('a running lab switches back to async without restarting PostgreSQL', async () => {
    const again = await labUp({ dir: lab.dir, replicas: 1, replication: 'async' });
    assert.equal(again.alreadyRunning, true);
    assert.deepEqual(
      again.db.nodes.map((n) => n.pid),
      info.db.nodes.map((n) => n.pid),
      'no node restarted',
    );
    const senders = await query<{ sync_state: string }>(again.db.nodes[0]!.port, 'SELECT sync_state FROM pg_stat_replication');
    assert.deepEqual(senders, [{ sync_state: 'async' }]);
    assert.equal(again.db.replication, 'async');
  });

  test('after a harness crash (daemon SIGKILLed), down still stops both nodes by PID', async () => {
    const pids = await postgresPids(info);
    pids.forEach((p) => seen.add(p));
    process.kill(info.pids.daemon, 'SIGKILL');
    const down = await labDown({ dir: lab.dir });
    assert.equal(down.wasStale, true);
    assert.deepEqual(
      new Set(down.stopped.filter((s) => s.name.startsWith('postgres:')).map((s) => s.pid)),
      new Set(info.db.nodes.map((n) => n.pid)),
    );
    assert.deepEqual(await livePids(pids), [], 'no PostgreSQL process of the lab is left');
    const s = await labStatus({ dir: lab.dir });
    assert.equal(s.stale, false);
  });
});
