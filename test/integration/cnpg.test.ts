/**
 * The CloudNativePG failover provider against the test API server, whose miniature operator keeps instance
 * pods labelled by role and flips the primary as the real one does: a switchover through the Cluster's
 * status (as `kubectl cnpg promote`), a failover after the primary pod is deleted (through targetPrimary
 * "pending", as the real operator), the former primary rejoining as a replica, and the errors a drill
 * identity or a drill file can cause.
 *
 * Every test but the guardrails one builds the provider as the product does, through openCnpgDatabase with
 * its replication reader and write check, with real PostgreSQL behind the pods (startCnpgPostgres): the
 * provider without those hooks is a configuration the product never runs.
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
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { openCnpgDatabase, type CnpgDatabase } from '../../lib/adapters/kubernetes/cnpg-database.ts';
import { startCluster, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { judgeReplayLag } from '../../lib/scenario/probes/replication.ts';
import { startKubeApi, type KubeApi, type KubeObject, type KubeApiOptions } from '../support/kube-api/index.ts';
import { startCnpgPostgres, type CnpgPostgres } from '../support/kube-api/cnpg-postgres.ts';
import { makeTempDir } from '../support/tmp.ts';
import { alive } from '../support/cli.ts';

function pgCluster(name: string, namespace: string, instances = 3, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name, namespace },
    spec: { instances, storage: { size: '1Gi' }, failoverDelay: 0, ...spec },
  };
}

/** API server only, no PostgreSQL: for the guardrails, which must stop before anything is touched. */
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

interface Real {
  api: KubeApi;
  db: CnpgPostgres;
  d: CnpgDatabase;
  /** A query on one instance directly, as the superuser, in the app database. */
  sql(instance: string, text: string): Promise<any[]>;
}

/**
 * The production configuration: real PostgreSQL behind the pods, the provider built by openCnpgDatabase (with
 * its replication reader and write check through the -rw Service). Torn down in reverse order of start-up.
 */
async function realCluster(
  t: TestContext,
  o: {
    instances?: number;
    spec?: Record<string, unknown>;
    mode?: 'promote' | 'delete-primary';
    api?: KubeApiOptions;
    killDelayMs?: number;
  } = {},
): Promise<Real> {
  const stack: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const fn of stack.reverse()) await fn().catch(() => undefined);
  });
  const instances = o.instances ?? 2;
  const names = Array.from({ length: instances }, (_, i) => `pg-${i + 1}`);
  const dir = await makeTempDir('cnpg-real');
  stack.push(() => dir.remove());
  const db = await startCnpgPostgres({ root: join(dir.path, 'pg'), instances: names, killDelayMs: o.killDelayMs });
  stack.push(() => db.stop());
  const api = await startKubeApi({
    objects: [pgCluster('pg', 'db', instances, o.spec)],
    cnpgRuntime: db.runtime,
    replaceDelayMs: 500,
    readyDelayMs: 200,
    ...o.api,
  });
  stack.push(() => api.stop());
  await api.state.waitFor(
    () => api.state.get('clusters', 'db', 'pg')?.status?.readyInstances === instances,
    `${names.join(', ')} Ready`,
    120_000,
  );
  const d = await openCnpgDatabase({
    kubeConfig: kubeConfigFor({ url: api.url }),
    namespace: 'db',
    allowedNamespaces: ['db'],
    blastRadius: 1,
    cluster: 'pg',
    mode: o.mode ?? 'promote',
    host: '127.0.0.1',
    port: db.rw.port,
    database: 'app',
    user: 'app',
    passwordEnv: 'PGPASSWORD',
  });
  const sql = async (instance: string, text: string) => {
    const x = new pg.Client(db.conn(instance, 'app'));
    await x.connect();
    try {
      return (await x.query(text)).rows;
    } finally {
      await x.end();
    }
  };
  return { api, db, d, sql };
}

/**
 * The topology once every standby has reported a replay position: a pod turns Ready before its walreceiver's
 * first reply reaches the primary (replay_lsn is null until then, CI saw it twice).
 */
async function reported(d: CnpgDatabase) {
  let topo = await d.provider.topology();
  for (
    const until = performance.now() + 15_000;
    topo.standbys.some((s) => typeof s.replication.lagBytes !== 'number') && performance.now() < until;
  ) {
    await new Promise((r) => setTimeout(r, 200));
    topo = await d.provider.topology();
  }
  return topo;
}

const roles = (api: KubeApi) =>
  Object.fromEntries(
    api.state
      .list('pods', 'db', 'cnpg.io/cluster=pg,cnpg.io/podRole=instance')
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => [p.metadata.name, p.metadata.labels!['cnpg.io/instanceRole']]),
  );

/** Every value status.targetPrimary takes from now on until `done()` holds, in order, as the store sees each write. */
function targetPrimaries(api: KubeApi, done: () => boolean): string[] {
  const seen: string[] = [];
  const look = () => {
    const v = api.state.get('clusters', 'db', 'pg')?.status?.targetPrimary;
    if (v !== undefined && seen.at(-1) !== v) seen.push(v);
    return done();
  };
  look();
  void api.state.waitFor(look, 'the watched change', 120_000).catch(() => undefined);
  return seen;
}

const never = new AbortController().signal;

test('topology reads the Cluster, its instance pods and pg_stat_replication; the job pods CloudNativePG leaves are no nodes; settings name the operator knobs', {
  timeout: 240_000,
}, async (t) => {
  const { api, db, d } = await realCluster(t);
  // The operator's initdb and join Jobs left their pods, Completed, labelled cnpg.io/cluster but not podRole=instance
  // (client-node reads them as a real API server serves them).
  const core = kubeConfigFor({ url: api.url }).makeApiClient(CoreV1Api);
  const all = (await core.listNamespacedPod({ namespace: 'db', labelSelector: 'cnpg.io/cluster=pg' })).items;
  const jobs = all.filter((p) => p.metadata?.labels?.['cnpg.io/jobRole']);
  assert.deepEqual(
    jobs.map((p) => [p.metadata!.name!.replace(/-[a-z0-9]{5}$/, '-xxxxx'), p.metadata!.labels!['cnpg.io/jobRole'], p.status?.phase]).sort(),
    [
      ['pg-1-initdb-xxxxx', 'initdb', 'Succeeded'],
      ['pg-2-join-xxxxx', 'join', 'Succeeded'],
    ],
  );
  const instancesOnly = (await core.listNamespacedPod({ namespace: 'db', labelSelector: 'cnpg.io/cluster=pg,cnpg.io/podRole=instance' }))
    .items;
  assert.deepEqual(instancesOnly.map((p) => p.metadata!.name).sort(), ['pg-1', 'pg-2']);

  const topo = await reported(d);
  assert.deepEqual(topo.primary, { name: 'pg-1', host: '127.0.0.1', port: db.rw.port, role: 'primary' });
  assert.deepEqual(
    topo.standbys.map((s) => [s.name, s.role, s.replication.streaming, s.replication.mode, typeof s.replication.replayLagMs]),
    [['pg-2', 'standby', true, 'async', 'number']],
  );
  assert.deepEqual(
    (await d.nodes()).map((n) => [n.name, n.role]),
    [
      ['pg-1', 'primary'],
      ['pg-2', 'standby'],
    ],
  );
  const settings = await d.provider.settings();
  assert.deepEqual([settings.mode, settings.instances, settings.failoverDelay, settings.switchoverDelay], ['promote', 2, 0, 3600]);
  assert.equal((settings.synchronous as { mode: string }).mode, 'async');
  assert.deepEqual(api.state.controllerErrors, []);
});

test('priority-based synchronous replication (.spec.postgresql.synchronous method first): the topology reports it as PostgreSQL does', {
  timeout: 240_000,
}, async (t) => {
  const { d, sql } = await realCluster(t, {
    spec: { postgresql: { synchronous: { method: 'first', number: 1, dataDurability: 'required' } } },
  });
  assert.deepEqual(await sql('pg-1', "SELECT setting AS v FROM pg_settings WHERE name = 'synchronous_standby_names'"), [
    { v: 'FIRST 1 ("pg-2")' },
  ]);
  assert.deepEqual(
    (await reported(d)).standbys.map((s) => [s.name, s.replication.mode]),
    [['pg-2', 'sync']],
  );
  assert.equal(d.replication, 'sync');
  assert.deepEqual((await d.provider.settings()).synchronous, {
    mode: 'sync',
    number: 1,
    dataDurability: 'required',
    source: '.spec.postgresql.synchronous (method first, number 1)',
  });
});

test('promote: a switchover through status.targetPrimary, watched until the operator reports the new primary Ready, proven by a write', {
  timeout: 240_000,
}, async (t) => {
  const { api, db, d, sql } = await realCluster(t);
  const rw = { host: '127.0.0.1', port: db.rw.port, user: 'app', database: 'app' };
  // The test's own clock for the flip: the moment the store holds currentPrimary pg-2 (same process, same clock as writableAt).
  let flipAt = 0;
  void api.state
    .waitFor(() => api.state.get('clusters', 'db', 'pg')?.status?.currentPrimary === 'pg-2', 'the flip', 120_000)
    .then(() => (flipAt = Date.now()));
  // And its own writes through the -rw Service, every 20 ms, as the product's write check does: when they first succeed after the flip.
  const ownWrites: number[] = [];
  let writing = true;
  const writer = (async () => {
    while (writing) {
      const c = new pg.Client({ ...rw, connectionTimeoutMillis: 1000 });
      // The old primary's shutdown can end the session between the query and end() (FATAL 57P01): without a
      // listener that arrives as an uncaught 'error' and fails the test instead of counting as "not yet".
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SELECT txid_current()');
        ownWrites.push(Date.now());
      } catch {
        // The old primary stopping, the -rw repointing: not yet.
      } finally {
        await c.end().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  t.after(() => {
    writing = false;
  });
  const n0 = api.state.requests.length;
  const t0 = performance.now();
  const r = await d.provider.failover({ candidate: 'pg-2', timeoutMs: 60_000, signal: never });
  const ms = performance.now() - t0;
  // Requests complete in order; the watch's own record comes when its stream ends, so only get/list count here.
  const clusterReads = api.state.requests.slice(n0).filter((q) => q.resource === 'clusters' && (q.verb === 'get' || q.verb === 'list'));
  await new Promise((res) => setTimeout(res, 300));
  writing = false;
  await writer;

  assert.equal(r.newPrimary.name, 'pg-2');
  assert.equal(r.newPrimary.host, '127.0.0.1');
  assert.match(
    r.detail,
    /asked the operator to promote pg-2 \(status\.targetPrimary, as kubectl cnpg promote\); pg-2 is primary \(was pg-1\): a write through the -rw Service succeeded/,
  );
  // Watched, not polled: the failover reads the Cluster once, once more to choose (askPromotion's topology), and lists it
  // once to start its watch. A poll would add a read per interval.
  assert.ok(
    clusterReads.length <= 3,
    `get/list of clusters during the switchover: ${clusterReads.map((q) => `${q.verb} ${q.query}`).join(', ')}`,
  );
  // writableAt is the product's: it cannot come before the operator flipped (taken by the test, same clock), and it comes
  // no later than the test's own first write through -rw after the flip plus one watch event, one pods list and one
  // connect (three loopback round trips, ~10 ms idle; 500 ms for a loaded 2-core machine).
  assert.ok(flipAt > 0, 'the test saw the flip');
  const writableAt = Date.parse(r.writableAt);
  const ownFirst = ownWrites.find((w) => w >= flipAt);
  assert.ok(ownFirst !== undefined, `the test wrote through -rw after the flip (${ownWrites.length} writes in all)`);
  assert.ok(writableAt >= flipAt, `writableAt ${r.writableAt} is not before the flip the test saw at ${new Date(flipAt).toISOString()}`);
  assert.ok(
    writableAt <= ownFirst + 500,
    `writableAt ${r.writableAt} within 500 ms of the test's own first write after the flip (${new Date(ownFirst).toISOString()})`,
  );
  // The product's part, from the operator's flip to the write: the same three round trips; 1 s for a loaded machine
  // (a 4 s poll of the Cluster would miss it).
  assert.ok(writableAt - flipAt < 1000, `flip to writable ${writableAt - flipAt} ms`);
  // The whole switchover: the operator's 200 ms, a fast shutdown of pg-1 and pg_promote on pg-2 (each well under 1 s
  // idle), then the above. 5 s leaves a loaded 2-core machine room for two slow PostgreSQL steps.
  assert.ok(ms < 5000, `switchover took ${ms} ms`);
  t.diagnostic(`switchover observed in ${ms.toFixed(0)} ms; flip to writable ${writableAt - flipAt} ms`);

  const c = api.state.get('clusters', 'db', 'pg')!;
  assert.deepEqual([c.status.currentPrimary, c.status.targetPrimary], ['pg-2', 'pg-2']);
  const patch = api.state.requests.find((q) => q.method === 'PATCH');
  assert.deepEqual(
    [patch?.resource, patch?.path.endsWith('/clusters/pg/status'), patch?.contentType, patch?.status],
    ['clusters', true, 'application/merge-patch+json', 200],
  );
  assert.ok(
    api.state.requests.some((q) => q.verb === 'list' && q.resource === 'clusters' && q.query.includes('fieldSelector=metadata.name%3Dpg')),
    'the Cluster was listed by name',
  );

  // Rejoin: the operator's instance manager brings pg-1 back as a replica of pg-2 (a fixture behaviour, the adapter waits).
  assert.match(
    await d.provider.rejoin({ name: 'pg-1', host: 'x', port: 5432, role: 'unknown' }, { timeoutMs: 60_000, signal: never }),
    /pg-1 is back as a Ready replica of pg-2/,
  );
  await api.state.waitFor(() => roles(api)['pg-2'] === 'primary' && roles(api)['pg-1'] === 'replica', 'pod labels to follow');
  assert.deepEqual(await sql('pg-2', 'SELECT pg_is_in_recovery() AS rec'), [{ rec: false }]);
  await assert.rejects(
    d.provider.failover({ candidate: 'pg-9', timeoutMs: 5000, signal: never }),
    /no Ready standby named "pg-9" to promote in CloudNativePG cluster "pg" \(standbys: pg-1\)/,
  );
  assert.deepEqual(api.state.controllerErrors, []);
});

test('delete-pod: the primary pod is deleted, the operator fails over through targetPrimary "pending", the old one comes back as a replica', {
  timeout: 240_000,
}, async (t) => {
  const { api, d } = await realCluster(t, { mode: 'delete-primary' });
  const oldUid = api.state.get('pods', 'db', 'pg-1')!.metadata.uid;
  const targets = targetPrimaries(api, () => api.state.get('clusters', 'db', 'pg')?.status?.currentPrimary === 'pg-2');
  const r = await d.provider.failover({ timeoutMs: 60_000, signal: never });
  assert.equal(r.newPrimary.name, 'pg-2', 'the only Ready replica is elected');
  assert.match(
    r.detail,
    /deleted the primary pod pg-1 \(grace 0\); the operator elects; pg-2 is primary \(was pg-1\): a write through the -rw Service succeeded/,
  );
  // Two steps, as CloudNativePG's failover: "pending" first, then the elected pod (docs failover.md, replicas.go).
  assert.deepEqual(targets, ['pg-1', 'pending', 'pg-2']);
  const deletes = api.state.requests.filter((q) => q.method === 'DELETE');
  assert.deepEqual(
    deletes.map((q) => [q.resource, q.name, q.status]),
    [['pods', 'pg-1', 200]],
  );
  const back = await d.provider.rejoin(
    { name: 'pg-1', host: 'pg-r.db.svc', port: 5432, role: 'unknown' },
    { timeoutMs: 60_000, signal: never },
  );
  assert.match(back, /pg-1 is back as a Ready replica of pg-2/);
  assert.notEqual(api.state.get('pods', 'db', 'pg-1')!.metadata.uid, oldUid, 'a new pod for the old instance');
  await api.state.waitFor(() => roles(api)['pg-1'] === 'replica', 'pg-1 labelled replica');
  assert.deepEqual(api.state.controllerErrors, []);
});

test('a failover the operator has begun (targetPrimary "pending") is left to it: nothing patched, the record names no pod "pending"', {
  timeout: 240_000,
}, async (t) => {
  // failoverDelay 1 s: the operator first reports since when the primary fails; then "pending" for 3 s (the real
  // operator waits there for the WAL receivers to stop), long enough for the drill's two reads of the Cluster.
  // replaceDelayMs 5 s: pg-1's pod is not back before the failover is decided.
  const { api, d } = await realCluster(t, { spec: { failoverDelay: 1 }, api: { cnpgElectDelayMs: 3000, replaceDelayMs: 5000 } });
  const primary = (await d.nodes())[0]!;
  assert.equal(primary.name, 'pg-1');
  await d.crash(primary, 'kill');
  await api.state.waitFor(
    () => !!api.state.get('clusters', 'db', 'pg')?.status?.currentPrimaryFailingSinceTimestamp,
    'currentPrimaryFailingSinceTimestamp',
  );
  assert.equal(api.state.get('clusters', 'db', 'pg')!.status.targetPrimary, 'pg-1', 'failoverDelay: not failing over yet');
  await api.state.waitFor(
    () => api.state.get('clusters', 'db', 'pg')?.status?.targetPrimary === 'pending',
    'targetPrimary pending',
    10_000,
  );
  const r = await d.provider.failover({ timeoutMs: 60_000, signal: never });
  assert.equal(r.newPrimary.name, 'pg-2');
  assert.match(
    r.detail,
    /^the operator was already failing over from pg-1 \(status\.targetPrimary "pending": it elects the new primary itself\) when the drill came to ask \(failoverDelay 1s\), so nothing was patched; pg-2 is primary \(was pg-1\): a write through the -rw Service succeeded$/,
  );
  assert.doesNotMatch(r.detail, /promoting pending/);
  assert.ok(!api.state.requests.some((q) => q.method === 'PATCH'), 'no second target raced the operator');
  const c = api.state.get('clusters', 'db', 'pg')!;
  assert.deepEqual(
    [c.status.currentPrimary, c.status.targetPrimary, c.status.currentPrimaryFailingSinceTimestamp],
    ['pg-2', 'pg-2', undefined],
  );
  assert.deepEqual(api.state.controllerErrors, []);
});

test('job pods are no nodes and no promotion candidates: a running join job pod that sorts before the replicas is never patched in', {
  timeout: 240_000,
}, async (t) => {
  // failoverDelay 3600: the operator does not elect, the drill promotes (as kube-db-failover's promote drill);
  // replaceDelayMs 5 s: pg-1's pod is not back before the drill has chosen.
  const { api, d } = await realCluster(t, { spec: { failoverDelay: 3600 }, api: { replaceDelayMs: 5000 } });
  // A join Job's pod while it runs (a replica's base backup, as after a failover that needs a re-clone): Running and Ready,
  // labelled as CloudNativePG labels it. Named so that it sorts before pg-2: with no lag read yet, a name decides.
  api.state.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'pg-1-join-abcde',
      namespace: 'db',
      labels: { 'cnpg.io/cluster': 'pg', 'cnpg.io/jobRole': 'join', 'cnpg.io/instanceName': 'pg-1', 'job-name': 'pg-1-join' },
    },
    spec: { restartPolicy: 'Never', containers: [{ name: 'join', image: 'ghcr.io/cloudnative-pg/postgresql:16.4' }] },
  });
  await api.state.waitFor(
    () =>
      (api.state.get('pods', 'db', 'pg-1-join-abcde')?.status?.conditions ?? []).some(
        (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
      ),
    'the join pod Ready',
  );
  const primary = (await d.nodes())[0]!;
  await d.crash(primary, 'kill');
  // The operator's one status write for the loss (readyInstances, failing since): after it, the Cluster the drill
  // reads stays as it is until the drill patches it, so the patch is not refused for an operator write (a 409).
  await api.state.waitFor(
    () => !!api.state.get('clusters', 'db', 'pg')?.status?.currentPrimaryFailingSinceTimestamp,
    'the operator to see pg-1 gone',
  );
  const r = await d.provider.failover({ timeoutMs: 20_000, signal: never });
  assert.equal(r.newPrimary.name, 'pg-2');
  assert.match(r.detail, /^asked the operator to promote pg-2 /);
  const patched = api.state.requests.filter((q) => q.method === 'PATCH').map((q) => q.status);
  assert.deepEqual(patched, [200]);
  assert.equal(api.state.get('clusters', 'db', 'pg')!.status.currentPrimary, 'pg-2');
  // Nodes and topology: instances only, never the job pods (the running one, nor the completed initdb/join ones).
  // (pg-1's own pod may be back by now on a slow machine: it is an instance.)
  const nodes = (await d.nodes()).map((n) => n.name);
  assert.ok(nodes.includes('pg-2') && nodes.every((n) => n === 'pg-1' || n === 'pg-2'), `nodes: ${nodes.join(', ')}`);
  const standbys = (await d.provider.topology()).standbys.map((s) => s.name);
  assert.ok(
    standbys.every((n) => n === 'pg-1'),
    `standbys: ${standbys.join(', ')}`,
  );
  assert.ok(api.state.list('pods', 'db', 'cnpg.io/jobRole').length >= 3, 'the job pods are there to be ignored');
  assert.deepEqual(api.state.controllerErrors, []);
});

// API only, built with createCnpgProvider: each of these stops before the provider reads PostgreSQL or writes (the
// namespace checks before any call, the 403 at the patch), so the hooks openCnpgDatabase adds change nothing here.
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
  timeout: 240_000,
}, async (t) => {
  const { api, d } = await realCluster(t);
  // Deterministic: the Cluster's labels change right when the drill's status patch arrives, before the server
  // reads the store for it, so the patch carries a resourceVersion that is stale by then (faults.ts).
  const custom = kubeConfigFor({ url: api.url }).makeApiClient(CustomObjectsApi);
  const order: string[] = [];
  api.faults.beforeNext('PATCH', '/clusters/pg/status', async () => {
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
    order.push('labels changed');
  });
  const r = await d.provider.failover({ candidate: 'pg-2', timeoutMs: 60_000, signal: never });
  assert.equal(api.faults.pendingHooks(), 0, 'the hook fired');
  assert.deepEqual(order, ['labels changed']);
  assert.equal(r.newPrimary.name, 'pg-2');
  const statusPatches = api.state.requests.filter((q) => q.method === 'PATCH' && q.path.endsWith('/status')).map((q) => q.status);
  assert.deepEqual(statusPatches, [409, 200], 'the first patch was refused for its stale resourceVersion, the second went through');
  assert.equal(api.state.get('clusters', 'db', 'pg')!.metadata.labels?.touched, 'yes', 'the change made meanwhile was kept');
});
