/**
 * The CloudNativePG failover provider against the test API server, whose miniature operator keeps instance
 * pods labelled by role and flips the primary as the real one does: a switchover through the Cluster's
 * status (as `kubectl cnpg promote`), a failover after the primary pod is deleted, the former primary
 * rejoining as a replica, and the errors a drill identity or a drill file can cause.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { kubeConfigFor, KubeError, KubeGuardrailError } from '../../lib/adapters/kubernetes/index.ts';
import { createCnpgProvider, type CnpgOptions } from '../../lib/adapters/postgres/failover/cnpg.ts';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { openCnpgDatabase } from '../../lib/adapters/kubernetes/cnpg-database.ts';
import { startCluster, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { judgeReplayLag } from '../../lib/scenario/probes/replication.ts';
import { startKubeApi, type KubeApi, type KubeObject, type KubeApiOptions } from '../support/kube-api/index.ts';
import { startCnpgPostgres } from '../support/kube-api/cnpg-postgres.ts';
import { makeTempDir } from '../support/tmp.ts';
import { alive } from '../support/cli.ts';

function pgCluster(name: string, namespace: string, instances = 3): KubeObject {
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name, namespace },
    spec: { instances, storage: { size: '1Gi' }, failoverDelay: 0 },
  };
}

async function server(t: TestContext, options: KubeApiOptions = {}): Promise<KubeApi> {
  const api = await startKubeApi({ objects: [pgCluster('pg', 'db')], replaceDelayMs: 200, readyDelayMs: 300, ...options });
  t.after(() => api.stop());
  await api.state.waitFor(() => api.state.get('clusters', 'db', 'pg')?.status?.readyInstances === 3, 'pg to have 3 ready instances');
  return api;
}

function provider(api: KubeApi, o: Partial<CnpgOptions> & { token?: string } = {}) {
  const { token, ...rest } = o;
  return createCnpgProvider({
    kubeConfig: kubeConfigFor({ url: api.url, token }),
    namespace: 'db',
    allowedNamespaces: ['db'],
    cluster: 'pg',
    mode: 'promote',
    ...rest,
  });
}

const roles = (api: KubeApi) =>
  Object.fromEntries(
    api.state
      .list('pods', 'db', 'cnpg.io/cluster=pg')
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => [p.metadata.name, p.metadata.labels!['cnpg.io/instanceRole']]),
  );

const never = new AbortController().signal;

test('topology reads the Cluster and its instance pods; settings name the operator knobs', async (t) => {
  const api = await server(t);
  const p = provider(api);
  const topo = await p.topology();
  assert.deepEqual(topo.primary, { name: 'pg-1', host: 'pg-rw.db.svc', port: 5432, role: 'primary' });
  assert.deepEqual(topo.standbys.map((s) => [s.name, s.replication.streaming, s.replication.replayLagMs]).sort(), [
    ['pg-2', true, null],
    ['pg-3', true, null],
  ]);
  const settings = await p.settings();
  assert.deepEqual([settings.mode, settings.instances, settings.failoverDelay, settings.switchoverDelay], ['promote', 3, 0, 3600]);
  assert.equal((settings.synchronous as { mode: string }).mode, 'async');

  // Priority-based synchronous replication in the 1.24+ stanza: without PostgreSQL's view, the spec says the mode.
  const first = {
    ...pgCluster('pg', 'db'),
    spec: { ...pgCluster('pg', 'db').spec, postgresql: { synchronous: { method: 'first', number: 1, dataDurability: 'required' } } },
  };
  const sp = provider(await server(t, { objects: [first] }));
  assert.deepEqual(
    (await sp.topology()).standbys.map((s) => s.replication.mode),
    ['sync', 'sync'],
  );
  assert.deepEqual((await sp.settings()).synchronous, {
    mode: 'sync',
    number: 1,
    dataDurability: 'required',
    source: '.spec.postgresql.synchronous (method first, number 1)',
  });
});

test('promote: a switchover through status.targetPrimary, watched until the operator reports the new primary Ready', async (t) => {
  const api = await server(t);
  const p = provider(api);
  const t0 = performance.now();
  const r = await p.failover({ candidate: 'pg-2', timeoutMs: 10_000, signal: never });
  const ms = performance.now() - t0;
  assert.equal(r.newPrimary.name, 'pg-2');
  assert.equal(r.newPrimary.host, 'pg-rw.db.svc');
  assert.match(
    r.detail,
    /asked the operator to promote pg-2 \(status\.targetPrimary, as kubectl cnpg promote\); pg-2 is primary \(was pg-1\)/,
  );
  assert.ok(Date.parse(r.writableAt) >= Date.parse(r.startedAt));
  // The operator takes readyDelayMs (300) to flip; the watch sees it without polling.
  assert.ok(ms >= 250 && ms < 8000, `switchover took ${ms} ms`);
  t.diagnostic(`switchover observed in ${ms.toFixed(0)} ms`);
  const c = api.state.get('clusters', 'db', 'pg')!;
  assert.deepEqual([c.status.currentPrimary, c.status.targetPrimary, c.status.phase], ['pg-2', 'pg-2', 'Cluster in healthy state']);
  await api.state.waitFor(() => roles(api)['pg-2'] === 'primary' && roles(api)['pg-1'] === 'replica', 'pod labels to follow');
  const patch = api.state.requests.find((q) => q.method === 'PATCH');
  assert.deepEqual(
    [patch?.resource, patch?.path.endsWith('/clusters/pg/status'), patch?.contentType, patch?.status],
    ['clusters', true, 'application/merge-patch+json', 200],
  );
  // Informer-style: list the one Cluster, then watch from there (the watch is only needed if the flip came after the list).
  assert.ok(
    api.state.requests.some((q) => q.verb === 'list' && q.resource === 'clusters' && q.query.includes('fieldSelector=metadata.name%3Dpg')),
    'the Cluster was listed by name',
  );

  // Rejoin: the former primary is already a Ready replica.
  assert.match(
    await p.rejoin({ name: 'pg-1', host: 'x', port: 5432, role: 'unknown' }, { timeoutMs: 5000, signal: never }),
    /pg-1 is back as a Ready replica of pg-2/,
  );
  await assert.rejects(
    p.failover({ candidate: 'pg-9', timeoutMs: 5000, signal: never }),
    /no Ready standby named "pg-9" to promote in CloudNativePG cluster "pg" \(standbys: pg-1, pg-3\)/,
  );
});

test('delete-pod: the primary pod is deleted, the operator fails over, the old one comes back as a replica', async (t) => {
  const api = await server(t);
  const p = provider(api, { mode: 'delete-pod' });
  const oldUid = api.state.get('pods', 'db', 'pg-1')!.metadata.uid;
  const r = await p.failover({ timeoutMs: 10_000, signal: never });
  assert.equal(r.newPrimary.name, 'pg-2', 'the first Ready replica is elected');
  assert.match(r.detail, /deleted the primary pod pg-1 \(grace 0\); the operator elects; pg-2 is primary/);
  const deletes = api.state.requests.filter((q) => q.method === 'DELETE');
  assert.deepEqual(
    deletes.map((q) => [q.resource, q.name, q.status]),
    [['pods', 'pg-1', 200]],
  );
  const back = await p.rejoin({ name: 'pg-1', host: 'pg-r.db.svc', port: 5432, role: 'unknown' }, { timeoutMs: 10_000, signal: never });
  assert.match(back, /pg-1 is back as a Ready replica of pg-2/);
  assert.notEqual(api.state.get('pods', 'db', 'pg-1')!.metadata.uid, oldUid, 'a new pod for the old instance');
  assert.equal(roles(api)['pg-1'], 'replica');
});

test('guardrails and errors: namespace outside the allowlist, kube-system, RBAC 403 naming the status rule, a timeout that says what it saw', async (t) => {
  const api = await server(t, {
    tokens: {
      reader: {
        user: 'system:serviceaccount:drill:drill',
        rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: ['', 'postgresql.cnpg.io'], resources: ['pods', 'clusters'] }],
      },
    },
  });
  assert.throws(
    () => provider(api, { namespace: 'payments' }),
    (e: unknown) =>
      e instanceof KubeGuardrailError && /namespace "payments" is not in the target's allowed namespaces \(db\)/.test(e.message),
  );
  assert.throws(
    () => provider(api, { namespace: 'kube-system', allowedNamespaces: ['kube-system'] }),
    /kube-system" is never a drill target/,
  );

  const p = provider(api, { token: 'reader' });
  await assert.rejects(
    p.failover({ candidate: 'pg-2', timeoutMs: 5000, signal: never }),
    (e: unknown) =>
      e instanceof KubeError &&
      e.status === 403 &&
      /not allowed to patch clusters\/status "pg" in namespace "db" \(403 Forbidden/.test(e.message) &&
      e.message.includes('- apiGroups: ["postgresql.cnpg.io"]\n  resources: ["clusters/status"]\n  verbs: ["patch"]'),
  );
  assert.equal(api.state.get('clusters', 'db', 'pg')!.status.currentPrimary, 'pg-1', 'nothing changed');
});

test('with real PostgreSQL behind the pods: topology carries pg_stat_replication, a switchover demotes and rejoins the old primary, a second kill before the cluster is whole is refused', {
  timeout: 240_000,
}, async (t) => {
  // node:test runs `after` hooks in the order they were added: the operator stops first, PostgreSQL next, the folder last.
  const stack: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const fn of stack.reverse()) await fn().catch(() => undefined);
  });
  const dir = await makeTempDir('cnpg-real');
  stack.push(() => dir.remove());
  const db = await startCnpgPostgres({ root: join(dir.path, 'pg'), instances: ['pg-1', 'pg-2'] });
  stack.push(() => db.stop());
  const api = await startKubeApi({ objects: [pgCluster('pg', 'db', 2)], cnpgRuntime: db.runtime, replaceDelayMs: 500, readyDelayMs: 200 });
  stack.push(() => api.stop());
  await api.state.waitFor(() => api.state.get('clusters', 'db', 'pg')?.status?.readyInstances === 2, 'pg-1 and pg-2 Ready', 120_000);
  const d = await openCnpgDatabase({
    kubeConfig: kubeConfigFor({ url: api.url }),
    namespace: 'db',
    allowedNamespaces: ['db'],
    blastRadius: 1,
    cluster: 'pg',
    mode: 'promote',
    host: '127.0.0.1',
    port: db.rw.port,
    database: 'app',
    user: 'app',
    passwordEnv: 'PGPASSWORD',
  });
  assert.equal(d.replication, 'async');

  // Replication as PostgreSQL reports it, through the -rw Service: the primary's address is the -rw one.
  // A pod turns Ready before its walreceiver's first reply reaches the primary (replay_lsn is null until then,
  // CI saw it twice): that lag is unknown, and becomes a number once the standby reports.
  const sql = async (instance: string, text: string) => {
    const x = new pg.Client(db.conn(instance, 'app'));
    await x.connect();
    try {
      return (await x.query(text)).rows;
    } finally {
      await x.end();
    }
  };
  const reported = async () => {
    let topo = await d.provider.topology();
    for (
      const until = performance.now() + 15_000;
      typeof topo.standbys[0]?.replication.lagBytes !== 'number' && performance.now() < until;
    ) {
      await new Promise((r) => setTimeout(r, 200));
      topo = await d.provider.topology();
    }
    return topo;
  };
  const topo = await reported();
  assert.deepEqual(topo.primary, { name: 'pg-1', host: '127.0.0.1', port: db.rw.port, role: 'primary' });
  let [standby] = topo.standbys;
  assert.equal(standby?.name, 'pg-2');
  assert.equal(standby?.replication.streaming, true);
  assert.equal(standby?.replication.mode, 'async');
  assert.equal(typeof standby?.replication.replayLagMs, 'number', JSON.stringify(standby));
  assert.equal(typeof standby?.replication.lagBytes, 'number', JSON.stringify(standby));

  // A walsender whose receiver has not reported a replay position yet, as in the moment before a standby's
  // first reply: pg_receivewal streams as "pg-2" while pg-2's PostgreSQL is stopped. It reports where it wrote
  // and flushed, never a replay position (it is no standby), so replay_lsn stays null. The lag is unknown, not a
  // figure made up from a sample that could not see it. (Turning the standby's replies off is no way to get
  // here: PostgreSQL's walreceiver still replies now and then, and CI caught the test that relied on it.)
  const pg2 = db.instances.get('pg-2')!;
  await stopCluster(pg2.dataDir, 'fast');
  const walDir = join(dir.path, 'receivewal');
  await mkdir(walDir);
  const p1 = db.conn('pg-1');
  const receiver = spawn(
    '/usr/lib/postgresql/15/bin/pg_receivewal',
    ['-D', walDir, '-n', '-d', `host=127.0.0.1 port=${p1.port} user=${p1.user} application_name=pg-2`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const receiverExit = once(receiver, 'exit');
  stack.push(async () => {
    receiver.kill('SIGKILL');
    await receiverExit;
  });
  let receiverErr = '';
  receiver.stderr!.on('data', (b) => (receiverErr += b));
  for (const until = performance.now() + 30_000; ; ) {
    const rows = await sql('pg-1', "SELECT state, replay_lsn FROM pg_stat_replication WHERE application_name = 'pg-2'");
    if (rows.length === 1 && rows[0].state === 'streaming') break;
    assert.ok(performance.now() < until, `pg_receivewal streams as pg-2: ${JSON.stringify(rows)}; ${receiverErr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const silent = await d.provider.topology();
  [standby] = silent.standbys;
  const because =
    'it has not reported a replay position since its walsender started (it does within wal_receiver_status_interval, 10 s by default)';
  assert.deepEqual(standby?.replication, { streaming: true, replayLagMs: null, lagBytes: null, mode: 'async', unknownBecause: because });
  // A steady-state lag limit fails on it, and says why.
  const judged = judgeReplayLag(silent, 5000);
  assert.equal(judged.ok, false);
  assert.equal(judged.detail, `pg-2 streaming (async), replay lag unknown: ${because}; limit 5000 ms: pg-2 not measurable`);
  receiver.kill('SIGTERM');
  await receiverExit;
  // pg-2 back: it streams again and reports, and its lag is a number again.
  await startCluster(pg2.dataDir, { logFile: pg2.logFile });
  [standby] = (await reported()).standbys;
  assert.equal(typeof standby?.replication.replayLagMs, 'number', JSON.stringify(standby));
  assert.equal(standby?.replication.unknownBecause, undefined);

  // A switchover with the primary alive: rows written before it are all on the promoted node.
  const rw = { host: '127.0.0.1', port: db.rw.port, user: 'app', database: 'app' };
  const c = new pg.Client(rw);
  await c.connect();
  await c.query('CREATE TABLE marks (n int PRIMARY KEY)');
  await c.query('INSERT INTO marks SELECT generate_series(1, 500)');
  await c.end();
  const r = await d.provider.failover({ timeoutMs: 60_000, signal: never });
  assert.match(r.detail, /asked the operator to promote pg-2 .*; pg-2 is primary \(was pg-1\): a write through the -rw Service succeeded/);
  assert.deepEqual(await sql('pg-2', 'SELECT pg_is_in_recovery() AS rec, (SELECT count(*)::int FROM marks) AS n'), [
    { rec: false, n: 500 },
  ]);
  assert.match(
    await d.provider.rejoin({ name: 'pg-1', host: 'x', port: 5432, role: 'unknown' }, { timeoutMs: 60_000, signal: never }),
    /pg-1 is back as a Ready replica of pg-2/,
  );
  assert.deepEqual(await sql('pg-2', 'SELECT application_name, state FROM pg_stat_replication'), [
    { application_name: 'pg-1', state: 'streaming' },
  ]);
  assert.deepEqual(await sql('pg-1', 'SELECT pg_is_in_recovery() AS rec'), [{ rec: true }]);
  assert.ok(db.rwLog.includes('pg-2 promoted (was pg-1)'), db.rwLog.join('; '));

  // The host of the new primary dies: its processes are SIGKILLed before the delete is answered. A second kill while the
  // operator is still failing over would exceed the blast radius of 1: refused, nothing deleted.
  const primaryNow = (await d.nodes())[0]!;
  assert.equal(primaryNow.name, 'pg-2');
  const pid = db.pid('pg-2');
  const k = await d.crash(primaryNow, 'kill');
  assert.match(k.detail ?? '', /deleted pod pg-2 \(uid .*\) with grace period 0/);
  assert.equal(db.kills.at(-1)?.pid, pid);
  // SIGKILL is sent before the DELETE is answered; the kernel finishes the processes moments later.
  const gone = Date.now() + 5000;
  while ((db.pid('pg-2') !== null || db.kills.at(-1)!.children.some(alive)) && Date.now() < gone)
    await new Promise((res) => setTimeout(res, 10));
  assert.equal(db.pid('pg-2'), null, 'pg-2 postmaster is gone');
  for (const c of db.kills.at(-1)!.children) assert.ok(!alive(c), `child ${c} of pg-2 is gone`);
  await assert.rejects(
    d.crash({ name: 'pg-1', host: 'x', port: 5432, role: 'standby' }, 'kill'),
    (e: unknown) =>
      e instanceof KubeGuardrailError &&
      /blast radius is 1 and 1 instance pod was already deleted since cluster "pg" was last whole/.test(e.message),
  );
  assert.deepEqual(
    api.state.requests.filter((q) => q.method === 'DELETE').map((q) => q.name),
    ['pg-2'],
  );
  t.diagnostic(`runtime: ${db.rwLog.filter((l) => !l.startsWith('db endpoint')).join('; ')}`);
  assert.deepEqual(api.state.controllerErrors, []);
});

test('promote: a Cluster changed between the read and the patch is a 409 (the resourceVersion guards the switch), read again and patched once more', {
  timeout: 60_000,
}, async (t) => {
  const api = await server(t);
  const p = provider(api);
  // Every response held 400 ms: the Cluster is read at ~400 ms, pods at ~800, the status patch lands at ~1600 ms
  // or later; a label change sent at 600 ms lands at ~1000 ms, in between, and moves the resourceVersion on.
  api.faults.delay(400);
  const failover = p.failover({ candidate: 'pg-2', timeoutMs: 20_000, signal: never });
  await new Promise((r) => setTimeout(r, 600));
  const custom = kubeConfigFor({ url: api.url }).makeApiClient(CustomObjectsApi);
  await custom.patchNamespacedCustomObject(
    {
      group: 'postgresql.cnpg.io',
      version: 'v1',
      namespace: 'db',
      plural: 'clusters',
      name: 'pg',
      body: { metadata: { labels: { touched: 'yes' } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const r = await failover;
  api.faults.delay(0);
  assert.equal(r.newPrimary.name, 'pg-2');
  const statusPatches = api.state.requests.filter((q) => q.method === 'PATCH' && q.path.endsWith('/status')).map((q) => q.status);
  assert.deepEqual(statusPatches, [409, 200], 'the first patch was refused for its stale resourceVersion, the second went through');
});
