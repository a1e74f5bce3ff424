/**
 * The patroni failover provider against a real Patroni 3 cluster on a real etcd: three members, the
 * leader killed as a host dies (Patroni, postmaster and every backend at once), Patroni's own election
 * observed and timed, the old leader rewound back in, a forced failover to a named candidate, and the
 * inputs that must be refused before anything is touched.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { postmasterPid } from '../../lib/adapters/postgres/cluster.ts';
import { PatroniProvider, type PatroniTopology } from '../../lib/adapters/postgres/failover/patroni.ts';
import { UserError } from '../../lib/errors.ts';
import { DbEndpoint } from '../../lib/lab/daemon/db-endpoint.ts';
import { startPatroniCluster, type PatroniCluster } from '../support/patroni.ts';
import { alive } from '../support/cli.ts';
import { freePort } from '../support/ports.ts';
import { watchFailover, type FailoverSighting } from '../support/failover-watch.ts';

const AUTH = { username: 'drill-admin', password: `pw-${Math.random().toString(36).slice(2)}` };
const ENV = { DRILL_PATRONI_USER: AUTH.username, DRILL_PATRONI_PASSWORD: AUTH.password };
const AUTH_VARS = { username: 'DRILL_PATRONI_USER', password: 'DRILL_PATRONI_PASSWORD' };

async function sql<T extends pg.QueryResultRow>(port: number, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** Polls the provider's own topology until every other member is a streaming standby of one leader. */
async function waitHealthy(provider: PatroniProvider, standbys: number, timeoutMs: number): Promise<PatroniTopology> {
  const deadline = performance.now() + timeoutMs;
  let last: PatroniTopology | null = null;
  while (performance.now() < deadline) {
    last = await provider.topology().catch(() => null);
    if (
      last?.primary?.role === 'primary' &&
      last.standbys.length === standbys &&
      last.standbys.every((s) => s.role === 'standby' && s.replication.streaming)
    )
      return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`cluster not healthy after ${timeoutMs} ms: ${JSON.stringify(last?.members)}`);
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** The provider stamps its instants on timeOrigin + performance.now(): the test's own sightings use that clock too. */
const perfClock = () => performance.timeOrigin + performance.now();

/**
 * writableAt against what the test saw itself: not before the new leader was last seen in recovery (a replica
 * refuses writes), and at most 500 ms after the test's own first commit at the same address (the provider commits
 * there right after GET /primary and its repoint: one connection and one statement, 0.1-0.2 s measured; 500 ms
 * for a loaded machine).
 */
function assertWritableSeen(r: { writableAt: string; newPrimary: { name: string; port: number } }, seen: FailoverSighting): void {
  const writable = Date.parse(r.writableAt);
  const lastInRecovery = seen.lastInRecoverySentMs.get(r.newPrimary.port);
  assert.ok(lastInRecovery !== undefined, `the test saw ${r.newPrimary.name} in recovery after the kill`);
  assert.ok(writable >= Math.floor(lastInRecovery), `writableAt ${r.writableAt} before ${r.newPrimary.name} was last seen in recovery`);
  assert.ok(seen.firstWriteMs !== null, `the test's own write never went through: ${seen.lastWriteError}`);
  assert.ok(
    writable <= seen.firstWriteMs + 500,
    `writableAt ${r.writableAt} is ${(writable - seen.firstWriteMs).toFixed(0)} ms after the test's own first write`,
  );
}

async function rejects(p: Promise<unknown>, exitCode: number, message: RegExp): Promise<UserError> {
  let caught: unknown;
  await p.then(
    () => assert.fail('expected a UserError'),
    (e) => (caught = e),
  );
  assert.ok(caught instanceof UserError, `expected a UserError, got ${String(caught)}`);
  assert.equal(caught.exitCode, exitCode, caught.message);
  assert.match(caught.message, message);
  assert.ok(caught.untouched, 'the error says what was not touched');
  assert.ok(!caught.message.includes(AUTH.password) && !(caught.next ?? '').includes(AUTH.password), 'no secret in the message');
  return caught;
}

describe('patroni failover provider on a real Patroni + etcd', () => {
  let cluster: PatroniCluster;
  let provider: PatroniProvider;
  let endpoint: DbEndpoint | null = null;
  const signal = new AbortController().signal;

  before(async () => {
    cluster = await startPatroniCluster({ members: 3, timings: { ttl: 10, loopWait: 2, retryTimeout: 4 }, restApiAuth: AUTH });
    provider = new PatroniProvider({
      apiUrls: [cluster.members[0]!.apiUrl],
      env: ENV,
      authVars: AUTH_VARS,
      startMember: (name) => cluster.start(name),
    });
    await waitHealthy(provider, 2, 60_000);
  });

  after(async () => {
    await endpoint?.close();
    await cluster?.stop();
  });

  test('topology and settings come from the REST API', async (t) => {
    const topo = await provider.topology();
    assert.equal(topo.primary?.name, 'm1', 'the bootstrapping member leads');
    assert.equal(topo.primary?.port, cluster.member('m1').pgPort);
    assert.equal(topo.timeline, 1);
    assert.deepEqual(topo.standbys.map((s) => s.name).sort(), ['m2', 'm3']);
    assert.deepEqual(
      topo.members.map((m) => `${m.name} ${m.role} ${m.state} ${m.timeline}`),
      ['m1 leader running 1', 'm2 replica streaming 1', 'm3 replica streaming 1'],
    );
    for (const s of topo.standbys) {
      assert.equal(s.replication.streaming, true);
      assert.equal(s.replication.mode, 'async');
      assert.equal(typeof s.replication.lagBytes, 'number');
    }
    // The standbys really are in recovery and streaming, seen from PostgreSQL itself.
    const senders = await sql<{ application_name: string; state: string }>(
      cluster.member('m1').pgPort,
      'SELECT application_name, state FROM pg_stat_replication ORDER BY 1',
    );
    assert.deepEqual(senders, [
      { application_name: 'm2', state: 'streaming' },
      { application_name: 'm3', state: 'streaming' },
    ]);

    const s = await provider.settings();
    assert.equal(s.ttl, 10);
    assert.equal(s.loop_wait, 2);
    assert.equal(s.retry_timeout, 4);
    assert.equal(s.maximum_lag_on_failover, 1048576);
    assert.equal(s.synchronous_mode, false);
    assert.equal(s.use_pg_rewind, true);
    assert.equal(s.defaulted, undefined);
    t.diagnostic(`settings: ${JSON.stringify(s)}`);
  });

  test('PATCH /config with credentials: synchronous_mode shows in the settings and the topology', async () => {
    const waitMode = async (sync: number) => {
      const deadline = performance.now() + 20_000;
      for (;;) {
        const topo = await provider.topology();
        const modes = topo.standbys.map((x) => x.replication.mode);
        const listed = topo.members.filter((m) => m.role === 'sync_standby').length;
        if (listed === sync && modes.filter((m) => m === 'sync').length === sync && modes.every((m) => m === 'sync' || m === 'async'))
          return topo;
        if (performance.now() > deadline) throw new Error(`standby modes still ${modes.join(', ')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    // GET /config answers from each member's cached view of the DCS: a PATCH shows within a loop_wait.
    const waitSetting = async (value: boolean) => {
      const deadline = performance.now() + 10_000;
      while ((await provider.settings()).synchronous_mode !== value) {
        if (performance.now() > deadline) throw new Error(`synchronous_mode is not ${value} after 10 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const patched = await provider.patchSettings({ synchronous_mode: true });
    assert.equal(patched.synchronous_mode, true, 'PATCH answers with the new configuration');
    assert.equal(patched.ttl, 10, 'and keeps what it was not asked to change');
    await waitSetting(true);
    const topo = await waitMode(1);
    const syncName = topo.members.find((m) => m.role === 'sync_standby')!.name;
    assert.equal(topo.standbys.find((x) => x.name === syncName)!.replication.mode, 'sync', 'the DCS and the walsender agree');
    await provider.patchSettings({ synchronous_mode: false });
    await waitSetting(false);
    await waitMode(0);
  });

  test('bad inputs are refused before anything is touched', async () => {
    const pidBefore = await postmasterPid(cluster.member('m1').dataDir);
    const closedPort = await freePort();
    const down = new PatroniProvider({ apiUrls: [`http://127.0.0.1:${closedPort}`] });
    const e = await rejects(down.topology(), 3, new RegExp(`does not answer.*127\\.0\\.0\\.1:${closedPort}.*ECONNREFUSED`));
    assert.match(e.next ?? '', /apiUrls/);
    await rejects(down.failover({ candidate: 'm2', timeoutMs: 5000, signal }), 3, /does not answer/);
    await rejects(down.settings(), 3, /does not answer/);

    // An address that accepts connections and never answers, and one that answers but is not Patroni.
    const silent = net.createServer(() => {});
    const notPatroni = http.createServer((_req, res) => res.end('{"hello":"world"}'));
    try {
      const silentPort = await listen(silent);
      const otherPort = await listen(notPatroni);
      const slow = new PatroniProvider({ apiUrls: [`http://127.0.0.1:${silentPort}`], requestTimeoutMs: 300 });
      await rejects(slow.topology(), 3, /does not answer: GET http:\/\/127\.0\.0\.1:\d+\/cluster: no answer within 300 ms/);
      const other = new PatroniProvider({ apiUrls: [`http://127.0.0.1:${otherPort}`] });
      await rejects(other.topology(), 3, /did not return a Patroni cluster/);
    } finally {
      silent.close();
      notPatroni.closeAllConnections();
      notPatroni.close();
    }

    // A live leader is never failed over from: that would be a switchover, and the drill's fault has not happened.
    await rejects(provider.failover({ timeoutMs: 5000, signal }), 2, /leader m1 is alive and holds the leader key/);
    await rejects(provider.failover({ candidate: 'm2', force: true, timeoutMs: 5000, signal }), 2, /leader m1 is alive/);
    await rejects(provider.failover({ force: true, timeoutMs: 5000, signal }), 2, /forced Patroni failover needs a candidate/);
    await rejects(
      provider.rejoin({ name: 'm1', host: '127.0.0.1', port: 1, role: 'primary' }, { timeoutMs: 5000, signal }),
      2,
      /m1 is the Patroni leader/,
    );
    await rejects(
      provider.rejoin({ name: 'nope', host: '127.0.0.1', port: 1, role: 'standby' }, { timeoutMs: 5000, signal }),
      2,
      /nope is not a member/,
    );

    // Credentials: a wrong password and no password are both refused by Patroni with 401, and said so.
    const wrong = new PatroniProvider({
      apiUrls: [cluster.members[0]!.apiUrl],
      env: { ...ENV, DRILL_PATRONI_PASSWORD: 'wrong' },
      authVars: AUTH_VARS,
    });
    await rejects(wrong.patchSettings({ maximum_lag_on_failover: 1 }), 2, /HTTP 401.*credentials were rejected/);
    const none = new PatroniProvider({ apiUrls: [cluster.members[0]!.apiUrl], env: {} });
    await rejects(none.patchSettings({ maximum_lag_on_failover: 1 }), 2, /HTTP 401.*none were set/);
    assert.equal((await provider.settings()).maximum_lag_on_failover, 1048576, 'the refused PATCH changed nothing');

    const topo = await provider.topology();
    assert.equal(topo.primary?.name, 'm1');
    assert.equal(topo.timeline, 1);
    assert.equal(await postmasterPid(cluster.member('m1').dataDir), pidBefore, 'the primary was not restarted');
  });

  let firstNewLeader = '';
  test('the leader dies: Patroni elects a replica once the leader key expires, and it takes writes', async (t) => {
    const token = `before-crash-${Date.now()}`;
    await sql(cluster.member('m1').pgPort, 'CREATE TABLE ledger (token text PRIMARY KEY)');
    await sql(cluster.member('m1').pgPort, 'INSERT INTO ledger VALUES ($1)', [token]);
    await waitHealthy(provider, 2, 10_000);
    // A second provider that saw the cluster before the crash and is called only after Patroni acted.
    const late = new PatroniProvider({ apiUrls: [cluster.member('m3').apiUrl], env: ENV, authVars: AUTH_VARS });
    assert.equal((await late.topology()).primary?.name, 'm1');
    // The stable address the application uses, moved by the provider's repoint hook (HAProxy needs none).
    endpoint = new DbEndpoint(cluster.member('m1').pgPort, () => {});
    const endpointPort = await endpoint.listen();
    const repointed: string[] = [];
    const withEndpoint = new PatroniProvider({
      apiUrls: [cluster.member('m1').apiUrl],
      env: ENV,
      authVars: AUTH_VARS,
      repoint: async (node) => {
        repointed.push(node.name);
        endpoint!.repoint(node.port);
      },
      endpoint: { host: '127.0.0.1', port: endpointPort },
    });
    await withEndpoint.topology();

    const watch = watchFailover({
      candidates: ['m2', 'm3'].map((m) => ({ host: '127.0.0.1', port: cluster.member(m).pgPort })),
      writeTo: { host: '127.0.0.1', port: endpointPort },
      database: 'postgres',
      now: perfClock,
    });
    await watch.ready;
    const killed = await cluster.crash('m1');
    const crashedAt = performance.now();
    watch.startWriting();
    assert.ok(killed.length >= 3, `Patroni, postmaster and backends killed: ${killed.join(' ')}`);
    // The key outlives the host: right after the crash the DCS still names the dead member leader.
    assert.equal((await provider.topology()).members.find((m) => m.role === 'leader')?.name, 'm1');

    // A deadline shorter than the key's TTL is a clear failure that names the settings, not a hang.
    await assert.rejects(
      provider.failover({ timeoutMs: 1500, signal }),
      /elected no new leader within 1.5 s after m1 died \(ttl 10 s, loop_wait 2 s, retry_timeout 4 s\); last seen: leader m1/,
    );
    const r = await withEndpoint.failover({ timeoutMs: 60_000, signal });
    const seen = await watch.stop();
    firstNewLeader = r.newPrimary.name;
    const electedS = (Date.parse(r.electedAt) - performance.timeOrigin - crashedAt) / 1000;
    const writableS = (Date.parse(r.writableAt) - performance.timeOrigin - crashedAt) / 1000;
    t.diagnostic(
      `ttl 10 s, loop_wait 2 s, retry_timeout 4 s: elected ${electedS.toFixed(2)} s, writable ${writableS.toFixed(2)} s after the kill; ${r.detail}`,
    );

    assert.equal(r.oldLeader, 'm1');
    assert.equal(r.forced, false);
    assert.ok(['m2', 'm3'].includes(r.newPrimary.name), r.newPrimary.name);
    assert.equal(r.timeline, 2);
    // Bounded by the leader key: at most ttl after its last renewal, plus a loop and a promotion on a busy machine.
    // And not before it can have expired: the leader renewed it at most loop_wait (2 s) plus one HA cycle (up to
    // 2 s on a loaded machine) before the kill, so no replica can take over before ttl − 4 = 6 s (measured 8.9-9.1 s).
    assert.ok(writableS > 10 - 2 - 2 && writableS < 10 + 2 + 8, `writable ${writableS} s after the kill`);
    assertWritableSeen(r, seen);
    assert.ok(Date.parse(r.writableAt) >= Date.parse(r.electedAt));

    const port = cluster.member(firstNewLeader).pgPort;
    assert.equal(r.newPrimary.port, port);
    assert.deepEqual(await sql(port, 'SELECT token FROM ledger'), [{ token }], 'the acknowledged write survived');
    await sql(port, 'INSERT INTO ledger VALUES ($1)', ['after-failover']);
    assert.deepEqual(await sql(port, 'SELECT pg_is_in_recovery() AS rec'), [{ rec: false }]);
    assert.deepEqual(repointed, [firstNewLeader]);
    assert.deepEqual(await sql(endpointPort, 'SELECT count(*)::int AS n FROM ledger'), [{ n: 2 }], 'the endpoint reaches the new leader');
    assert.ok(Date.parse(r.routableAt) >= Date.parse(r.electedAt) && Date.parse(r.routableAt) <= Date.parse(r.writableAt));
    assert.match(r.detail, new RegExp(`first write through 127\\.0\\.0\\.1:${endpointPort}`));

    // Called after the election, the late provider finds the work done and only proves the write.
    const t0 = performance.now();
    const lr = await late.failover({ timeoutMs: 10_000, signal });
    assert.equal(lr.newPrimary.name, firstNewLeader);
    assert.equal(lr.oldLeader, 'm1');
    assert.match(lr.detail, /had already elected/);
    assert.ok(performance.now() - t0 < 5000);
    await rejects(late.failover({ timeoutMs: 5000, signal }), 2, new RegExp(`leader ${firstNewLeader} is alive`));
  });

  test('rejoin: the old leader comes back through pg_rewind as a streaming replica', async (t) => {
    const detail = await provider.rejoin(
      { name: 'm1', host: '127.0.0.1', port: cluster.member('m1').pgPort, role: 'unknown' },
      { timeoutMs: 60_000, signal },
    );
    t.diagnostic(detail);
    assert.match(detail, /m1 rejoined as a streaming replica of m[23] on timeline 2/);
    assert.match(await cluster.log('m1'), /running pg_rewind from[\s\S]*pg_rewind exit code=0/, 'Patroni rewound the old primary');

    const topo = await waitHealthy(provider, 2, 30_000);
    assert.equal(topo.primary?.name, firstNewLeader);
    const m1 = topo.standbys.find((s) => s.name === 'm1')!;
    assert.equal(m1.replication.streaming, true);
    // The write made after the failover reached the rejoined member: it follows the new timeline.
    const deadline = performance.now() + 10_000;
    let rows: Array<{ token: string }> = [];
    while (performance.now() < deadline && rows.length < 2) {
      rows = await sql<{ token: string }>(cluster.member('m1').pgPort, 'SELECT token FROM ledger ORDER BY token');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(rows.length, 2);
    assert.deepEqual(await sql(cluster.member('m1').pgPort, 'SELECT pg_is_in_recovery() AS rec'), [{ rec: true }]);
  });

  test('forced failover to a named candidate, after a refused one with wrong credentials', async (t) => {
    const leader = firstNewLeader;
    const candidate = 'm1';
    // This provider has no endpoint: it proves the write on the new primary itself, and so does the test.
    const watch = watchFailover({
      candidates: [{ host: '127.0.0.1', port: cluster.member(candidate).pgPort }],
      writeTo: { host: '127.0.0.1', port: cluster.member(candidate).pgPort },
      database: 'postgres',
      now: perfClock,
    });
    await watch.ready;
    await cluster.crash(leader);
    const crashedAt = performance.now();
    watch.startWriting();

    // The dead leader still holds its key: it is no candidate, and neither is a name Patroni does not know.
    await rejects(
      provider.failover({ candidate: leader, force: true, timeoutMs: 5000, signal }),
      2,
      new RegExp(`candidate ${leader} is the leader, not a replica`),
    );
    await rejects(
      provider.failover({ candidate: 'nope', force: true, timeoutMs: 5000, signal }),
      2,
      new RegExp(`candidate nope is not a member.*${leader} \\(leader\\)`),
    );
    const wrong = new PatroniProvider({
      apiUrls: [cluster.member(candidate).apiUrl],
      env: { ...ENV, DRILL_PATRONI_PASSWORD: 'wrong' },
      authVars: AUTH_VARS,
    });
    await rejects(wrong.failover({ candidate, force: true, timeoutMs: 20_000, signal }), 2, /HTTP 401/);

    const r = await provider.failover({ candidate, force: true, timeoutMs: 60_000, signal });
    const seen = await watch.stop();
    const writableS = (Date.parse(r.writableAt) - performance.timeOrigin - crashedAt) / 1000;
    t.diagnostic(`forced: writable ${writableS.toFixed(2)} s after the kill; ${r.detail}`);
    assert.equal(r.forced, true);
    assert.equal(r.oldLeader, leader);
    assert.equal(r.newPrimary.name, candidate, 'Patroni promoted the named candidate');
    assert.equal(r.timeline, 3);
    assert.match(r.detail, /POST \/failover to m1/);
    // Patroni acts on the POST only once the dead leader's key expired (8.9 s measured): the same bounds as above.
    assert.ok(writableS > 10 - 2 - 2 && writableS < 10 + 2 + 8, `writable ${writableS} s after the kill`);
    assertWritableSeen(r, seen);
    const rows = await sql<{ token: string }>(cluster.member(candidate).pgPort, 'SELECT count(*)::int AS n FROM ledger');
    assert.deepEqual(rows, [{ n: 2 }]);
    await sql(cluster.member(candidate).pgPort, 'INSERT INTO ledger VALUES ($1)', ['after-forced']);
  });

  test('rejoin fallback: a member whose timeline diverged and that cannot rewind is rebuilt with POST /reinitialize', {
    timeout: 180_000,
  }, async (t) => {
    // m1 leads; the other survivor of the last test streams from it.
    const other = ['m2', 'm3'].find((n) => n !== firstNewLeader)!;
    const m1 = cluster.member('m1').pgPort;
    for (const until = performance.now() + 30_000; ; ) {
      const rows = await sql<{ application_name: string }>(
        m1,
        "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
      );
      if (rows.some((r) => r.application_name === other)) break;
      assert.ok(performance.now() < until, `${other} streams from m1: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // A write only m1 has: m1's walsender to the replica is stopped while m1 commits it (async), then m1's host
    // dies (SIGKILL ends a stopped process too). The replica is elected without the write, so m1's timeline runs
    // past the fork: only a rewind or a fresh clone brings it back, and with use_pg_rewind off Patroni starts it
    // as a replica that cannot stream.
    const [{ pid: sender }] = (await sql<{ pid: number }>(m1, 'SELECT pid FROM pg_stat_replication WHERE application_name = $1', [
      other,
    ])) as [{ pid: number }];
    process.kill(sender, 'SIGSTOP');
    try {
      await sql(m1, 'INSERT INTO ledger VALUES ($1)', ['only-on-m1']);
      await cluster.crash('m1');
    } finally {
      if (alive(sender)) process.kill(sender, 'SIGCONT');
    }
    const r = await provider.failover({ timeoutMs: 60_000, signal });
    assert.equal(r.newPrimary.name, other);
    assert.equal(r.timeline, 4);
    await provider.patchSettings({ postgresql: { use_pg_rewind: false } });
    for (const until = performance.now() + 10_000; (await provider.settings()).use_pg_rewind !== false; ) {
      assert.ok(performance.now() < until, 'use_pg_rewind is off within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    t.after(() => provider.patchSettings({ postgresql: { use_pg_rewind: true } }).catch(() => undefined));

    const rebuilding = new PatroniProvider({
      apiUrls: [cluster.member(other).apiUrl],
      knownMembers: { m1: cluster.member('m1').apiUrl },
      env: ENV,
      authVars: AUTH_VARS,
      startMember: (name) => cluster.start(name),
      reinitializeAfterMs: 5000,
    });
    const logBefore = (await cluster.log('m1')).length;
    const detail = await rebuilding.rejoin({ name: 'm1', host: '127.0.0.1', port: m1, role: 'unknown' }, { timeoutMs: 120_000, signal });
    t.diagnostic(detail);
    assert.match(
      detail,
      new RegExp(
        `m1 rejoined as a streaming replica of ${other} on timeline 4 after [\\d.]+ s: its Patroni was started again, and Patroni rebuilt it from the leader \\(not streaming 5 s after its Patroni started \\(.*\\), so POST /reinitialize: HTTP 200`,
      ),
    );
    assert.doesNotMatch((await cluster.log('m1')).slice(logBefore), /running pg_rewind from/, 'no rewind ran before the rebuild');
    // The clone is the leader's data: the write only the dead leader had is gone, every other row is there.
    const rows = await sql<{ token: string }>(m1, 'SELECT token FROM ledger ORDER BY token');
    assert.deepEqual(rows.map((x) => x.token).includes('only-on-m1'), false);
    assert.equal(rows.length, 3);
    assert.deepEqual(await sql(m1, 'SELECT pg_is_in_recovery() AS rec'), [{ rec: true }]);
  });
});
