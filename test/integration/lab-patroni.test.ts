/**
 * The lab on Patroni: etcd and two Patroni members (the Debian packages) manage the lab's PostgreSQL pair; the
 * lab's DB endpoint follows GET /primary as HAProxy would. db-failover runs through `drill run` as a person runs
 * it: the primary's host dies (Patroni, postmaster and children SIGKILLed), Patroni elects once the leader key
 * expires, the service writes again through the same endpoint, the write ledger is read back, and the rollback
 * rejoins the old member through Patroni (pg_rewind). Async with a stall loses writes, sync loses none, a second
 * failover in a row works, a failover that times out is a missed RTO (exit 1), and `lab down` leaves nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { childrenOf, cmdlineOf, isProcessUnder, procState } from '../../lib/util/proc.ts';
import { UserError } from '../../lib/errors.ts';
import { labDown, labPaths, labStatus, labUp } from '../../lib/lab/index.ts';
import { drillCli, readEvents, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';
import { assertRto } from '../support/rto.ts';
import type { LedgerVerdict } from '../../lib/measure/ledger.ts';

async function query<T extends pg.QueryResultRow>(port: number, sql: string): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'orders', connectionTimeoutMillis: 3000 });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

/** A drill on the Patroni lab; loose SLOs: the test judges failover, data loss and rollback on a shared machine. */
function drillFile(dir: string, name: string, replication: 'async' | 'sync', entries: string[]): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    [
      `name: ${name}`,
      'kind: adhoc',
      'service: { name: orders, tier: critical, dataClass: database }',
      `target: { kind: lab, replicas: 2, database: { replication: ${replication}, provider: patroni } }`,
      'policy:',
      '  recoveryWindow: 2s',
      "  slo: { availability: ['rate>=50%'], errors: ['rate<50%'], latency: ['p(95)<5s'] }",
      'load:',
      '  rate: 30',
      '  requests:',
      "    - { method: GET, path: '/orders?limit=10', weight: 1 }",
      "    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' }, weight: 3 }",
      '  timeout: 5s',
      '  baseline: 2s',
      '  cooldown: 1s',
      'scenarios:',
      ...entries.map((e) => `  - ${e}`),
      '',
    ].join('\n'),
  );
  return path;
}

/**
 * RTO of a db-failover entry with a 1 s replication stall on the lab's Patroni (ttl 10, loop_wait 1): the stall
 * (1 s, the first action, so the fault mark), then the leader key outliving the kill by ttl less at most loop_wait
 * and one slow HA cycle (≥ 10 − 1 − 2 s), then the election, promotion, first write and the SLOs back. README:
 * 11.8 s median, 12.6 s worst over 10 runs at load average 2-11; the max leaves 7 s over the ttl for a loaded machine.
 */
const PATRONI_STALL_RTO = { min: 1 + 10 - 1 - 2, max: 1 + 10 + 1 + 7, why: '1 s stall + the 10 s leader key + election and first write' };

const record = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));

/**
 * One Patroni leader and one replica that streams from it, as Patroni and PostgreSQL both say. Polled for up
 * to 15 s: Patroni names a rejoined replica in synchronous_standby_names on its next loop, not at once.
 */
async function assertPair(lab: string, mode: 'async' | 'sync') {
  const deadline = performance.now() + 15_000;
  for (;;) {
    try {
      return await pairNow(lab, mode);
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function pairNow(lab: string, mode: 'async' | 'sync') {
  const s = await labStatus({ dir: lab });
  const db = s.database!;
  assert.equal(db.provider, 'patroni');
  const members = db.patroni?.members ?? [];
  assert.equal(members.length, 2, JSON.stringify(db.patroni));
  const leader = members.find((m) => m.role === 'leader');
  const replica = members.find((m) => m.role !== 'leader');
  assert.ok(leader && replica, JSON.stringify(members));
  assert.equal(leader.state, 'running');
  assert.equal(replica.state, 'streaming', JSON.stringify(members));
  const primary = db.nodes.find((n) => n.name === leader.name)!;
  const standby = db.nodes.find((n) => n.name === replica.name)!;
  assert.equal(primary.inRecovery, false);
  assert.equal(standby.inRecovery, true);
  assert.equal(standby.streaming, true);
  assert.equal(standby.syncState, mode, `the replica is ${mode}: ${JSON.stringify(standby)}`);
  assert.equal(db.primary, leader.name, 'status calls the Patroni leader the primary');
  // Under Patroni PostgreSQL logs into its member's log: status points there, at a file that exists.
  for (const n of db.nodes) assert.ok(n.log.endsWith(`patroni-${n.name}.log`) && existsSync(n.log), `log of ${n.name}: ${n.log}`);
  return { primary, standby, status: s };
}

/** Every process of the lab: by cmdline under the lab dir (Patroni, etcd, postmasters, daemon, replicas), plus postmaster children. */
async function labProcesses(lab: string): Promise<number[]> {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    if (await isProcessUnder(pid, lab)) pids.push(pid, ...(await childrenOf(pid)));
  }
  return [...new Set(pids)];
}

function ledgerOf(rec: any): LedgerVerdict {
  return rec.objectives.rpo.ledger;
}

describe('the lab on Patroni', { timeout: 600_000 }, () => {
  const lab = scratchDir('lab-patroni');
  const work = scratchDir('lab-patroni-work');
  const results = join(work, 'results');
  const env = { DRILL_LAB_DIR: lab };
  const seen = new Set<number>();

  before(async () => {
    const t0 = performance.now();
    const phases: string[] = [];
    await labUp({
      dir: lab,
      replicas: 2,
      replication: 'async',
      provider: 'patroni',
      onPhase: (p, ms) => phases.push(`${p} ${(ms / 1000).toFixed(1)}s`),
    });
    for (const pid of await labProcesses(lab)) seen.add(pid);
    process.stderr.write(`# lab up on Patroni in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${phases.join(', ')}\n`);
  });

  after(async () => {
    try {
      await labDown({ dir: lab });
    } finally {
      // Safety net for a failed test: whatever of this lab still runs, by PID, under this lab dir only.
      for (const pid of [...seen, ...(await labProcesses(lab))]) if (await isProcessUnder(pid, lab)) process.kill(pid, 'SIGKILL');
      rmSync(lab, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('lab up: etcd and two Patroni members run the pair; status names the provider and members; the other provider is refused while it runs', async () => {
    const { primary, status } = await assertPair(lab, 'async');
    assert.equal(status.up, true);
    assert.equal(status.info?.db.provider, 'patroni');
    assert.deepEqual(status.problems, []);
    const parts = status.components.filter((c) => c.name === 'etcd' || c.name === 'patroni');
    assert.deepEqual(
      parts.map((c) => [c.name, c.alive]),
      [
        ['etcd', true],
        ['patroni', true],
        ['patroni', true],
      ],
    );
    for (const c of parts)
      assert.match((await cmdlineOf(c.pid!))!.join(' '), c.name === 'etcd' ? /\/usr\/bin\/etcd/ : /\/usr\/bin\/patroni/);
    const s = status.database!.patroni!;
    assert.deepEqual([s.ttl, s.loopWait, s.retryTimeout], [10, 1, 4]);

    // Dynamic shared memory lives in the data dir: a SIGKILLed postmaster leaves nothing in /dev/shm.
    assert.deepEqual(await query(primary.port, 'SHOW dynamic_shared_memory_type'), [{ dynamic_shared_memory_type: 'mmap' }]);
    const maps = readFileSync(`/proc/${primary.pid}/maps`, 'utf8');
    assert.ok(!maps.includes('/dev/shm/PostgreSQL'), 'the postmaster maps no posix segment in /dev/shm');

    const pidBefore = primary.pid;
    await assert.rejects(
      labUp({ dir: lab, replicas: 2, provider: 'pg-promote' }),
      (e: unknown) => e instanceof UserError && /runs on patroni, not pg-promote/.test(e.message) && /drill lab down/.test(e.next ?? ''),
    );
    assert.equal(
      (await labStatus({ dir: lab })).database!.nodes.find((n) => n.name === primary.name)!.pid,
      pidBefore,
      'nothing was touched',
    );
  });

  let first = '';
  test('async: a 1 s stall then the kill loses acknowledged writes; RTO measured, Patroni settings recorded, the old primary rejoins', async (t) => {
    const before = await assertPair(lab, 'async');
    first = before.primary.name;
    const file = drillFile(work, 'patroni-async', 'async', [
      '{ scenario: db-failover, name: async-stall, params: { replicationStall: 1s }, timeout: 1m }',
    ]);
    const r = await drillCli(['run', file, '--results', results, '--json'], env).done;
    const dirs = runFolders(results);
    assert.equal(dirs.length, 1, r.stderr.slice(-3000));
    for (const [i, dir] of dirs.entries()) {
      const rec = record(dir);
      assert.equal(rec.objectives.rto.met, true, `${rec.scenario}: ${JSON.stringify(rec.objectives.rto)}; ${r.stderr.slice(-2000)}`);
      assert.equal(rec.objectives.rpo.met, true, JSON.stringify(rec.objectives.rpo));
      assert.equal(rec.objectives.verification.met, true, JSON.stringify(rec.objectives.verification));
      assert.deepEqual(
        rec.actions.map((a: { status: string }) => a.status),
        ['done', 'done', 'done'],
      );
      assert.deepEqual(
        rec.actions.map((a: { rollback: { status: string } }) => a.rollback.status),
        ['done', 'done', 'none'],
      );
      const l = ledgerOf(rec);
      assert.equal(
        l.survived + l.lost + l.unknownPresent + l.unknownAbsent + l.failedPresent + l.failedAbsent,
        l.total,
        'every write in exactly one class',
      );
      // The leader key outlives the dead host by up to ttl (10 s): RTO is about that, plus the election.
      const killed = rec.marks.find((m: { name: string }) => m.name === 'primary-killed').ms;
      const writable = rec.marks.find((m: { name: string }) => m.name === 'failover-writable').ms;
      const killToWritable = (writable - killed) / 1000;
      assert.ok(killToWritable > 5 && killToWritable < 30, `kill to writable ${killToWritable} s with ttl 10 s`);
      // RTO counts from the first action, the 1 s stall, then the kill and Patroni's election once the key expired.
      assertRto(rec, PATRONI_STALL_RTO);
      const done = readEvents(dir).find((e) => e.type === 'action.done' && e.name === 'fail over') as unknown as {
        result: { settings: Record<string, unknown>; detail: string };
      };
      assert.equal(done.result.settings.provider, 'patroni');
      assert.deepEqual([done.result.settings.ttl, done.result.settings.loop_wait, done.result.settings.retry_timeout], [10, 1, 4]);
      assert.match(String(done.result.settings.lab), /lab defaults for a drill/);
      const killLine = readEvents(dir).find(
        (e) => e.type === 'log' && /host died: Patroni \d+, postmaster \d+ and \d+ children SIGKILLed/.test(String(e.message)),
      );
      assert.ok(killLine, 'the kill took Patroni down with PostgreSQL, as a host dies');
      const rollback = rec.actions[1].rollback.detail as string;
      assert.match(rollback, /rejoined as a streaming replica/);
      t.diagnostic(
        `${rec.scenario}: RTO ${rec.objectives.rto.measuredSeconds} s, kill→writable ${killToWritable.toFixed(2)} s, RPO ${rec.objectives.rpo.measuredSeconds} s, ledger ${JSON.stringify({ total: l.total, acknowledged: l.acknowledged, lost: l.lost, unknownAbsent: l.unknownAbsent })}; ${done.result.detail}; rollback: ${rollback}`,
      );
      if (i === 0) assert.ok(l.lost > 0, `a stalled async replica loses acknowledged writes: ${JSON.stringify(l)}`);
    }
    // The roles swapped: the old primary streams from the promoted replica, its PostgreSQL started again by Patroni.
    const afterRun = await assertPair(lab, 'async');
    assert.equal(afterRun.primary.name, before.standby.name);
    assert.equal(afterRun.standby.name, before.primary.name);
    assert.notEqual(afterRun.standby.pid, before.primary.pid, 'its PostgreSQL was killed and started again by Patroni');
    const daemonLog = readFileSync(join(lab, 'logs', 'daemon.log'), 'utf8');
    assert.ok((daemonLog.match(/db endpoint \d+ -> \d+/g) ?? []).length >= 1, 'the endpoint followed the leader by itself');
    for (const pid of await labProcesses(lab)) seen.add(pid);
  });

  test('sync, the second failover in a row: a 1 s stall then the kill loses no acknowledged write; a failover that times out is a missed RTO (exit 1) and the rollback still rejoins', async (t) => {
    // The running lab switches mode: synchronous_mode in Patroni's DCS.
    await labUp({ dir: lab, replicas: 2, replication: 'sync', provider: 'patroni' });
    await assertPair(lab, 'sync');
    const before = runFolders(results).length;
    const file = drillFile(work, 'patroni-sync', 'sync', [
      '{ scenario: db-failover, name: sync-stall, params: { replicationStall: 1s }, timeout: 1m }',
    ]);
    const r = await drillCli(['run', file, '--results', results, '--json'], env).done;
    const [dir] = runFolders(results).slice(before);
    assert.ok(dir, r.stderr.slice(-3000));
    const rec = record(dir);
    assert.equal(rec.objectives.rto.met, true, `${JSON.stringify(rec.objectives.rto)}; ${r.stderr.slice(-2000)}`);
    assert.equal(rec.objectives.verification.met, true, JSON.stringify(rec.objectives.verification));
    const l = ledgerOf(rec);
    assert.ok(l.acknowledged > 0);
    assert.equal(l.lost, 0, `sync loses no acknowledged write: ${JSON.stringify(l)}`);
    assert.equal(rec.objectives.rpo.measuredSeconds, 0);
    assertRto(rec, PATRONI_STALL_RTO);
    t.diagnostic(
      `sync-stall: RTO ${rec.objectives.rto.measuredSeconds} s, ledger ${JSON.stringify({ total: l.total, acknowledged: l.acknowledged, lost: l.lost, unknownPresent: l.unknownPresent, unknownAbsent: l.unknownAbsent })}; rollback: ${rec.actions[1].rollback.detail}`,
    );
    assert.deepEqual(
      rec.actions.map((a: { rollback: { status: string } }) => a.rollback.status),
      ['done', 'done', 'none'],
    );
    // Failed over back: the first primary leads again, the pair whole after two failovers in a row.
    assert.equal((await assertPair(lab, 'sync')).primary.name, first);

    // failoverTimeout shorter than the leader key's ttl: Patroni cannot elect in time. That is the system missing
    // its RTO (exit 1), not an abort or a harness error; the rollback waits for Patroni's election and rejoins.
    const tf = drillFile(work, 'patroni-timeout', 'sync', [
      '{ scenario: db-failover, name: too-short, params: { failoverTimeout: 2s }, timeout: 1m }',
    ]);
    const rt = await drillCli(['run', tf, '--results', results, '--json'], env).done;
    const [tdir] = runFolders(results).slice(before + 1);
    assert.ok(tdir, rt.stderr.slice(-3000));
    const trec = record(tdir);
    assert.equal(rt.code, 1, rt.stderr.slice(-3000));
    assert.equal(trec.status, 'failed');
    assert.equal(trec.objectives.rto.met, false);
    assert.match(trec.objectives.rto.reason, /the failover did not complete: Patroni elected no new leader within 2 s/);
    assert.deepEqual(
      trec.actions.map((a: { status: string }) => a.status),
      ['done', 'done', 'done'],
    );
    assert.deepEqual(
      trec.actions.map((a: { rollback: { status: string } }) => a.rollback.status),
      ['done', 'done', 'none'],
    );
    t.diagnostic(`timeout: exit ${rt.code}, RTO ${JSON.stringify(trec.objectives.rto)}; rollback: ${trec.actions[1].rollback.detail}`);
    await assertPair(lab, 'sync');
    for (const pid of await labProcesses(lab)) seen.add(pid);
  });

  test('lab down stops Patroni, PostgreSQL and etcd by PID: no process of the lab is left', async () => {
    const s = await labStatus({ dir: lab });
    const running = await labProcesses(lab);
    for (const n of s.database!.nodes) if (n.pid) running.push(n.pid, ...(await childrenOf(n.pid)));
    running.forEach((p) => seen.add(p));
    const down = await labDown({ dir: lab });
    const names = down.stopped.map((x) => x.name).sort();
    for (const want of ['etcd', 'patroni:n1', 'patroni:n2', 'postgres:n1', 'postgres:n2'])
      assert.ok(names.includes(want), `${want} stopped: ${names.join(', ')}`);
    for (const pid of running) assert.notEqual(await procState(pid), 'alive', `pid ${pid} (${(await cmdlineOf(pid))?.join(' ')}) is gone`);
    assert.deepEqual(await labProcesses(lab), [], 'nothing runs under the lab dir');
    assert.equal((await labStatus({ dir: lab })).up, false);
  });

  test('a stopped Patroni lab brought up on pg-promote starts over: a fresh pair the harness runs, no etcd, no Patroni', async () => {
    const n1 = labPaths(lab).node('n1').data;
    // What Patroni left behind: its cached DCS configuration in the data directory, and etcd's data.
    assert.ok(existsSync(join(n1, 'patroni.dynamic.json')), 'the stopped lab is a Patroni one');
    assert.ok(existsSync(join(lab, 'etcd')));
    const upAt = Date.now();
    const info = await labUp({ dir: lab, replicas: 1, provider: 'pg-promote' });
    for (const pid of await labProcesses(lab)) seen.add(pid);
    assert.equal(info.db.provider, 'pg-promote');
    assert.equal(JSON.parse(readFileSync(join(lab, 'lab.json'), 'utf8')).provider ?? 'pg-promote', 'pg-promote');
    assert.equal(existsSync(join(n1, 'patroni.dynamic.json')), false, 'a fresh data directory');
    assert.equal(existsSync(join(lab, 'etcd')), false);
    assert.equal(existsSync(join(lab, 'patroni.json')), false);
    const programs = await Promise.all((await labProcesses(lab)).map(async (pid) => (await cmdlineOf(pid))?.slice(0, 2) ?? []));
    assert.deepEqual(
      programs.filter((argv) => argv.some((a) => /\/(patroni|etcd)$/.test(a))),
      [],
      'no Patroni or etcd runs',
    );
    assert.equal(programs.filter((argv) => /\/postgres$/.test(argv[0] ?? '')).length, 2, 'the harness runs both postmasters');
    // The orders the Patroni drills wrote went with the old cluster; the new pair streams.
    const c = new pg.Client({ host: '127.0.0.1', port: info.db.port, user: 'postgres', database: 'orders' });
    await c.connect();
    try {
      // The replicas create the table when they start and lab up warms them with orders: none may be older than this lab up.
      const [{ old }] = (await c.query('SELECT count(*)::int AS old FROM orders WHERE created_at < $1', [new Date(upAt)])).rows as [
        { old: number },
      ];
      assert.equal(old, 0, 'no order of the Patroni lab is left');
      assert.deepEqual((await c.query('SELECT application_name, state FROM pg_stat_replication')).rows, [
        { application_name: 'n2', state: 'streaming' },
      ]);
    } finally {
      await c.end();
    }
    await labDown({ dir: lab });
    assert.deepEqual(await labProcesses(lab), [], 'nothing runs under the lab dir');
  });
});
