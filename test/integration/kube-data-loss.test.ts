/**
 * data-loss on a Kubernetes target whose database is a CloudNativePG cluster, end to end through `drill run`.
 *
 * Real: PostgreSQL 15 behind the stand-in operator's instance pods (a primary and a streaming replica), Azurite
 * holding a physical base backup of that cluster and its continuously archived WAL, the lab's orders service
 * writing through the `orders-db` Service (a TCP proxy that follows the Service's selector), the drill's open
 * load, kubectl reading the objects back. The stand-in (test/support/kube-api) is the API server and the
 * operator: it validates the recovery Cluster as the CRD and webhook would, reads the Secret it names, and
 * restores a real PostgreSQL with the project's own pitr.ts. Continuous archiving, which CloudNativePG does with
 * barman-cloud from `spec.backup`, is the project's WAL shipper run here beside the cluster (same Blob path).
 *
 * drop-table, delete-rows and lose-cluster (the Cluster fenced) through `drill run`, the bad inputs `drill plan` refuses (exit 2), the rollback run
 * again and a broken recovery Cluster made again, `drill recover` after a SIGKILL mid-restore, and the CRD/webhook
 * refusals of the stand-in through kubectl.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { startAzurite } from '../../lib/adapters/blob/index.ts';
import { backupStoreFromEnv, parseSourceUrl, takePhysicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { runWalShipper } from '../../lib/adapters/postgres/backup/wal-shipper.ts';
import { createCnpgLiveRestore } from '../../lib/adapters/kubernetes/cnpg-restore.ts';
import { recoveryClusterManifest, recoveryClusterName } from '../../lib/adapters/kubernetes/cnpg-manifest.ts';
import { kubeConfigFromFile } from '../../lib/adapters/kubernetes/config.ts';
import { startKubeApi, type KubeApi, type KubeObject } from '../support/kube-api/index.ts';
import { startOrdersService } from '../support/orders-service.ts';
import { sqlRows } from '../support/sql.ts';
import { startCnpgPostgres, type CnpgPostgres } from '../support/kube-api/cnpg-postgres.ts';
import { drillCli, readEvents, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';
import { kubeDrillHead, writeKubeconfig } from '../support/kube-drill.ts';

const PASSWORD = `s3cret-${process.pid}-restore`;
const CREDS = 'pg-backup-creds';

interface Setup {
  api: KubeApi;
  db: CnpgPostgres;
  dir: string;
  kubeconfig: string;
  env: Record<string, string>;
  connectionString: string;
  destinationPath: string;
  drill(name: string, o?: { restore?: string; params?: string; guard?: boolean }): string;
}

function teardown(t: TestContext): (fn: () => unknown) => void {
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of stack.reverse())
      await Promise.resolve()
        .then(fn)
        .catch((e: Error) => t.diagnostic(`teardown: ${e.message}`));
  });
  return (fn) => stack.push(fn);
}

async function warm(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let i = 0, streak = 0; streak < 30; i++) {
    if (Date.now() > deadline) throw new Error(`orders service at ${url} did not answer 30 requests in a row within 60 s`);
    const res = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'warm-up', token: `warm-${i}` }),
    }).then(
      (r) => r.status,
      () => 0,
    );
    streak = res === 201 ? streak + 1 : 0;
  }
}

const query = <T extends pg.QueryResultRow>(port: number, sql: string, params: unknown[] = []) => sqlRows<T>(port, sql, params, 'app');

/** Asynchronous: the API server runs in this process, and a synchronous child would block it. */
async function kubectl(s: Setup, ...args: string[]): Promise<any> {
  const r = await promisify(execFile)('kubectl', ['--kubeconfig', s.kubeconfig, '-n', 'db', ...args, '-o', 'json'], { encoding: 'utf8' });
  return JSON.parse(r.stdout);
}

async function setup(t: TestContext): Promise<Setup> {
  const later = teardown(t);
  const dir = scratchDir('kube-dl');
  later(() => rmSync(dir, { recursive: true, force: true }));
  const az = await startAzurite({ dir: join(dir, 'azurite') });
  later(() => az.stop());
  const db = await startCnpgPostgres({
    root: join(dir, 'pg'),
    instances: ['pg-1', 'pg-2'],
    appPassword: PASSWORD,
    service: { namespace: 'db', name: 'orders-db' },
  });
  later(() => db.stop());
  const destinationPath = `${az.blobEndpoint}/pg-backups`;
  const objects: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CREDS, namespace: 'db' },
      stringData: { AZURE_CONNECTION_STRING: az.connectionString },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'orders-db', namespace: 'db' },
      spec: { selector: { 'cnpg.io/cluster': 'pg', 'cnpg.io/instanceRole': 'primary' }, ports: [{ name: 'postgres', port: 5432 }] },
    },
    {
      apiVersion: 'postgresql.cnpg.io/v1',
      kind: 'Cluster',
      metadata: { name: 'pg', namespace: 'db' },
      spec: {
        instances: 2,
        storage: { size: '1Gi' },
        backup: {
          barmanObjectStore: {
            destinationPath,
            serverName: 'pg',
            azureCredentials: { connectionString: { name: CREDS, key: 'AZURE_CONNECTION_STRING' } },
          },
        },
      },
    },
  ];
  const api = await startKubeApi({ objects, cnpgRuntime: db.runtime, replaceDelayMs: 500, readyDelayMs: 300, shutdownMs: 100 });
  later(() => api.stop());
  await api.state.waitFor(() => api.state.get('clusters', 'db', 'pg')?.status?.readyInstances === 2, 'pg-1 and pg-2 Ready', 120_000);
  const serviceUrl = await startOrdersService(later, db.rw.port, PASSWORD);
  await warm(serviceUrl);

  // The base backup and continuous WAL archiving of cluster pg, under serverName pg at destinationPath.
  const env = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
  const store = backupStoreFromEnv('pg-backups', '', env);
  const src = parseSourceUrl(`postgres://postgres@127.0.0.1:${db.instances.get('pg-1')!.port}/app`);
  await takePhysicalBackup(src, store, { cluster: 'pg' });
  const shipping = new AbortController();
  const shipper = runWalShipper(
    {
      src,
      store,
      cluster: 'pg',
      spoolDir: join(dir, 'wal-spool'),
      stateFile: join(dir, 'wal-state.json'),
      archiveLagMs: 4000,
      firstConnect: 'fail',
    },
    shipping.signal,
  ).catch((e: Error) => t.diagnostic(`WAL shipper: ${e.message}`));
  later(async () => {
    shipping.abort();
    await shipper;
  });

  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), { server: api.url, namespace: 'db' });
  const restore = `restore: { destinationPath: '${destinationPath}', serverName: pg, azureCredentials: { connectionString: { name: ${CREDS}, key: AZURE_CONNECTION_STRING } }, service: orders-db }`;
  const drill: Setup['drill'] = (name, o = {}) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        ...kubeDrillHead({ name, kubeconfig, url: serviceUrl }),
        '  namespaces: [db]',
        ...(o.guard === false ? [] : ['  allowDataLoss: true', '  dataLossReason: the stand-in cluster holds test data']),
        `  database: { provider: cnpg, cluster: pg, host: 127.0.0.1, port: ${db.rw.port}, user: app, database: app, passwordEnv: ORDERS_DB_PASSWORD${o.restore ?? `, ${restore}`} }`,
        "policy: { recoveryWindow: 2s, slo: { latency: ['p(95)<5s'], availability: ['rate>=50%'], errors: ['rate<50%'] } }",
        'load:',
        '  rate: 20',
        '  baseline: 3s',
        '  cooldown: 1s',
        '  timeout: 3s',
        '  requests:',
        "    - { method: GET, path: '/orders?limit=5', weight: 1 }",
        "    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' }, weight: 1 }",
        'scenarios:',
        '  - scenario: data-loss',
        `    name: ${name}`,
        `    params: ${o.params ?? '{ fault: drop-table, restoreTimeout: 5m }'}`,
        '    timeout: 8m',
        '',
      ].join('\n'),
    );
    return file;
  };
  return {
    api,
    db,
    dir,
    kubeconfig,
    env: { ...env, ORDERS_DB_PASSWORD: PASSWORD },
    connectionString: az.connectionString,
    destinationPath,
    drill,
  };
}

/** `drill run` of one drill file on the setup: its run folder and record, failing with the run's words unless exit 0. */
async function runPassing(s: Setup, name: string, params?: string): Promise<{ runDir: string; rec: any }> {
  const results = join(s.dir, 'results');
  const r = await drillCli(['run', s.drill(name, params ? { params } : {}), '--results', results, '--yes'], s.env).done;
  const [runDir] = runFolders(results);
  assert.ok(runDir, r.stderr + r.stdout);
  const rec = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
  assert.equal(
    r.code,
    0,
    `${(r.stderr + r.stdout).slice(-5000)}\n${JSON.stringify({ objectives: rec.objectives, findings: rec.findings }).slice(0, 4000)}`,
  );
  return { runDir, rec };
}

function writesOf(runDir: string) {
  const lines = readFileSync(join(runDir, 'writes.tsv'), 'utf8').trim().split('\n');
  return lines.slice(1).map((line) => {
    const [seq, token, , ack, outcome] = line.split('\t');
    return { seq: Number(seq), token: token!, ackMs: ack === '' ? null : Number(ack), outcome: outcome! };
  });
}

test('drop-table on a CloudNativePG target: a recovery Cluster from Blob with Secret references, the Service repointed, the damaged cluster untouched, discarded writes counted; the rollback converges twice', {
  timeout: 900_000,
}, async (t) => {
  const s = await setup(t);

  // The plan reads only, shows the guard and what the restore will do; bad input is refused, each exit 2 naming the field.
  const before = s.api.state.resourceVersion();
  const plan = await drillCli(['plan', s.drill('restore-after-drop')], s.env).done;
  assert.equal(plan.code, 0, plan.stderr + plan.stdout);
  assert.match(plan.stdout, /destructive data faults: allowed \(allowDataLoss: true\): the stand-in cluster holds test data/);
  assert.match(plan.stdout, /restore point .* on the primary behind 127\.0\.0\.1:\d+/);
  const noRestore = await drillCli(['plan', s.drill('no-restore', { restore: '' })], s.env).done;
  assert.equal(noRestore.code, 2, noRestore.stderr + noRestore.stdout);
  assert.match(noRestore.stderr + noRestore.stdout, /params\.fault: the live restore needs target\.database\.restore \(destinationPath/);
  const lose = await drillCli(['plan', s.drill('lose', { params: '{ fault: lose-cluster }', guard: false })], s.env).done;
  assert.equal(lose.code, 2, lose.stderr + lose.stdout);
  assert.match(
    lose.stderr + lose.stdout,
    /fault lose-cluster fences every instance of the CloudNativePG cluster .*target\.allowDataLoss: true/,
  );
  const wrongSecret = s.drill('wrong-secret', {
    restore: `, restore: { destinationPath: '${s.destinationPath}', azureCredentials: { connectionString: { name: no-such-secret, key: X } }, service: orders-db }`,
  });
  const ws = await drillCli(['plan', wrongSecret], s.env).done;
  assert.equal(ws.code, 2, ws.stderr + ws.stdout);
  assert.match(
    ws.stderr + ws.stdout,
    /Secret no-such-secret is not in namespace db \(target\.database\.restore\.azureCredentials\.connectionString\)/,
  );
  const noBackup = await drillCli(
    [
      'plan',
      s.drill('no-backup', {
        restore: `, restore: { destinationPath: '${s.destinationPath}/elsewhere', azureCredentials: { connectionString: { name: ${CREDS}, key: AZURE_CONNECTION_STRING } }, service: orders-db }`,
      }),
    ],
    s.env,
  ).done;
  assert.equal(noBackup.code, 2, noBackup.stderr + noBackup.stdout);
  assert.match(noBackup.stderr + noBackup.stdout, /no physical base backup of pg under .*\/pg-backups\/elsewhere/);
  assert.equal(s.api.state.resourceVersion(), before, 'the refused plans changed nothing on the server');

  const damagedSpec = structuredClone(s.api.state.get('clusters', 'db', 'pg')!.spec);
  const earlier = await query<{ token: string }>(
    s.db.instances.get('pg-1')!.port,
    "SELECT token FROM orders WHERE token LIKE 'warm-%' ORDER BY token",
  );
  assert.ok(earlier.length >= 30);

  const t0 = performance.now();
  const { runDir, rec } = await runPassing(s, 'restore-after-drop');
  t.diagnostic(`drill run (drop-table on CNPG): exit 0 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(rec.status, 'passed');
  assert.ok(rec.objectives.rto.measuredSeconds > 0 && rec.objectives.rto.met, JSON.stringify(rec.objectives.rto));
  assert.ok(rec.phases.fault.errors > 0, 'the table was gone until the restore: requests failed');
  const breakdown = rec.objectives.verification.probes.find((p: { name: string }) => p.name === 'restore breakdown').detail;
  t.diagnostic(`RTO ${rec.objectives.rto.measuredSeconds} s; ${breakdown}`);
  assert.match(
    breakdown,
    /; recovery Job \(download, replay\) [\d.]+ s, primary started \(Job end to pod Ready\) [\d.]+ s, repoint [\d.]+ s, replicas ready [\d.]+ s;.*kept in kube:db\/clusters\.postgresql\.cnpg\.io\/pg/,
  );
  assert.deepEqual(
    rec.actions.map((a: { name: string; status: string; rollback: { status: string } }) => [a.name, a.status, a.rollback.status]),
    [
      ['destroy data', 'done', 'done'],
      ['restore from Blob', 'done', 'none'],
    ],
  );

  // The recovery Cluster, read back through the API with kubectl: bootstrap.recovery from the object store, the
  // recorded LSN exclusive, Secret references and no credential anywhere in the object.
  const destroyed = readEvents(runDir).find((e) => e.type === 'action.done' && e.name === 'destroy data')!.result as {
    runId: string;
    point: { lsn: string };
  };
  const list = await kubectl(s, 'get', 'clusters.postgresql.cnpg.io', '-l', 'drill.dev/restore-of=pg');
  assert.equal(list.items.length, 1, 'one recovery Cluster');
  const rc = list.items[0];
  const name: string = rc.metadata.name;
  assert.match(name, /^pg-restore-[a-z0-9]{7}$/);
  assert.equal(rc.metadata.annotations['drill.dev/run-id'], destroyed.runId);
  assert.deepEqual(rc.spec.bootstrap, {
    recovery: { source: 'pg-backup', recoveryTarget: { targetLSN: destroyed.point.lsn, exclusive: true } },
  });
  assert.deepEqual(rc.spec.externalClusters, [
    {
      name: 'pg-backup',
      barmanObjectStore: {
        destinationPath: s.destinationPath,
        serverName: 'pg',
        azureCredentials: { connectionString: { name: CREDS, key: 'AZURE_CONNECTION_STRING' } },
      },
    },
  ]);
  assert.equal(rc.spec.backup.barmanObjectStore.serverName, name, 'the restored cluster archives under its own serverName');
  assert.ok(!JSON.stringify(rc).includes(s.connectionString) && !/AccountKey/.test(JSON.stringify(rc)), 'no credential inline');
  assert.equal(rc.status.phase, 'Cluster in healthy state');
  assert.equal(rc.status.readyInstances, 2);
  const jobs = await kubectl(s, 'get', 'pods', '-l', `cnpg.io/cluster=${name},cnpg.io/jobRole`);
  assert.deepEqual(jobs.items.map((p: any) => p.metadata.labels['cnpg.io/jobRole']).sort(), ['full-recovery', 'join']);
  // The full-recovery Job's pod ran as long as the restore: the breakdown's first step is read from these times.
  const full = jobs.items.find((p: any) => p.metadata.labels['cnpg.io/jobRole'] === 'full-recovery');
  assert.equal(full.status.phase, 'Succeeded');
  const ran = full.status.containerStatuses[0].state.terminated;
  assert.ok(Date.parse(ran.finishedAt) >= Date.parse(ran.startedAt), JSON.stringify(ran));

  // The application repointed: the Service selects the recovery cluster's primary, and the proxy behind it follows.
  const svc = await kubectl(s, 'get', 'svc', 'orders-db');
  assert.deepEqual(svc.spec.selector, { 'cnpg.io/cluster': name, 'cnpg.io/instanceRole': 'primary' });
  assert.ok(
    s.db.rwLog.some((l) => l.startsWith(`service orders-db -> ${name}-1`)),
    s.db.rwLog.join('\n'),
  );
  const restoredPort = s.db.instances.get(`${name}-1`)!.port;
  assert.ok(
    s.db.rwLog.some((l) => l.startsWith(`${name}-1 restored from `)),
    s.db.rwLog.join('\n'),
  );
  assert.deepEqual(
    await query(restoredPort, "SELECT token FROM orders WHERE token LIKE 'warm-%' ORDER BY token"),
    earlier,
    'earlier orders back',
  );
  assert.deepEqual(await query(s.db.instances.get(`${name}-2`)!.port, 'SELECT pg_is_in_recovery() AS rec'), [{ rec: true }]);

  // The damaged cluster: not patched, not deleted, its pods there and its primary still running without the table.
  const damaged = s.api.state.get('clusters', 'db', 'pg')!;
  assert.deepEqual(damaged.spec, damagedSpec);
  assert.deepEqual(
    s.api.state
      .list('pods', 'db', 'cnpg.io/cluster=pg,cnpg.io/podRole=instance')
      .map((p) => p.metadata.name)
      .sort(),
    ['pg-1', 'pg-2'],
  );
  assert.ok(s.db.pid('pg-1'), 'the damaged primary still runs');
  assert.deepEqual(await query(s.db.instances.get('pg-1')!.port, "SELECT to_regclass('orders')::text AS t"), [{ t: null }]);
  const writes = s.api.state.requests.filter((q) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(q.method));
  assert.deepEqual(
    writes.map((q) => [q.method, q.resource, q.name ?? '']),
    [
      ['POST', 'clusters', ''],
      ['PATCH', 'services', 'orders-db'],
    ],
    'the drill created the recovery Cluster and patched the Service, nothing else',
  );

  // The ledger judged by hand against the restored database: nothing acknowledged before the restore point lost,
  // and the writes acknowledged after it (gone with the point-in-time restore) counted exactly.
  const l = rec.objectives.rpo.ledger;
  const all = writesOf(runDir).slice(0, l.total);
  const tag = all[0]!.token.slice(0, 8);
  const restored = new Set(
    (await query<{ token: string }>(restoredPort, 'SELECT token FROM orders WHERE token LIKE $1', [`${tag}%`])).map((x) => x.token),
  );
  const rp = l.discardedByRestore.restorePointMs;
  let lost = 0;
  let discarded = 0;
  for (const w of all) {
    if (w.outcome !== 'ok' || restored.has(w.token)) continue;
    if (w.ackMs! > rp) discarded++;
    else lost++;
  }
  assert.equal(lost, 0, 'nothing acknowledged before the restore point is missing');
  assert.equal(l.lost, 0);
  assert.equal(l.discardedByRestore.writes, discarded, 'discarded counted exactly');
  t.diagnostic(`ledger: ${l.acknowledged} acknowledged, ${l.survived} survived, ${discarded} discarded by the restore`);

  // The rollback run again (as `drill recover` would): it finds the recovery Cluster healthy and the Service on it,
  // creates nothing, and the condition it restores holds.
  const kc = kubeConfigFromFile(s.kubeconfig);
  const adapter = createCnpgLiveRestore({
    kubeConfig: kc,
    namespace: 'db',
    allowedNamespaces: ['db'],
    cluster: 'pg',
    settings: {
      destinationPath: s.destinationPath,
      serverName: 'pg',
      azureCredentials: { connectionString: { name: CREDS, key: 'AZURE_CONNECTION_STRING' } },
      service: 'orders-db',
    },
    endpoint: { host: '127.0.0.1', port: s.db.rw.port, user: 'app', database: 'app', password: () => PASSWORD },
    env: { AZURE_STORAGE_CONNECTION_STRING: s.connectionString },
  });
  const uid = rc.metadata.uid;
  for (let round = 1; round <= 2; round++) {
    const again = await adapter.restoreLive({
      runId: destroyed.runId,
      target: { lsn: destroyed.point.lsn, inclusive: false },
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(again.ok, true, again.problem ?? '');
    const h = await adapter.restoredAndWhole(destroyed.runId, AbortSignal.timeout(10_000));
    assert.equal(h.ok, true, h.detail);
  }
  assert.equal(s.api.state.get('clusters', 'db', name)!.metadata.uid, uid, 'the same recovery Cluster: nothing made again');
  assert.equal(s.api.state.requests.filter((q) => q.method === 'POST' && q.resource === 'clusters').length, 1);

  // A broken recovery Cluster of a run (the operator cannot read its Secret: it made no instance) is deleted and
  // made again by that run's rollback; the damaged cluster stays as it was.
  const brokenRun = 'restore-after-drop-broken';
  const brokenName = recoveryClusterName('pg', brokenRun);
  s.api.state.create({
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: brokenName, namespace: 'db', annotations: { 'drill.dev/run-id': brokenRun } },
    spec: {
      instances: 1,
      bootstrap: { recovery: { source: 'pg-backup' } },
      externalClusters: [
        {
          name: 'pg-backup',
          barmanObjectStore: {
            destinationPath: s.destinationPath,
            serverName: 'pg',
            azureCredentials: { connectionString: { name: 'gone', key: 'CS' } },
          },
        },
      ],
    },
  });
  await s.api.state.waitFor(
    () => /^Unable to create required cluster objects/.test(s.api.state.get('clusters', 'db', brokenName)?.status?.phase ?? ''),
    'the operator to report the missing Secret',
    10_000,
  );
  const brokenUid = s.api.state.get('clusters', 'db', brokenName)!.metadata.uid;
  const remade = await adapter.restoreLive({
    runId: brokenRun,
    target: 'latest',
    signal: AbortSignal.timeout(240_000),
    log: (l) => t.diagnostic(l),
  });
  assert.equal(remade.ok, true, remade.problem ?? '');
  const now = s.api.state.get('clusters', 'db', brokenName)!;
  assert.notEqual(now.metadata.uid, brokenUid, 'deleted and created again');
  assert.deepEqual(now.spec.externalClusters[0].barmanObjectStore.azureCredentials, {
    connectionString: { name: CREDS, key: 'AZURE_CONNECTION_STRING' },
  });
  assert.equal((await kubectl(s, 'get', 'svc', 'orders-db')).spec.selector['cnpg.io/cluster'], brokenName);
  assert.deepEqual(s.api.state.get('clusters', 'db', 'pg')!.spec, damagedSpec);
  assert.ok(s.api.state.get('clusters', 'db', 'pg'), 'the damaged cluster is still there');
  assert.deepEqual(s.api.state.controllerErrors, []);
});

test("the stand-in refuses a recovery Cluster the CRD or the webhook would (an inline credential, a source not in externalClusters, a bad targetLSN) and accepts the drill's own through kubectl", {
  timeout: 60_000,
}, async (t) => {
  const later = teardown(t);
  const dir = scratchDir('kube-dl-crd');
  later(() => rmSync(dir, { recursive: true, force: true }));
  const api = await startKubeApi({ objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'db' } }] });
  later(() => api.stop());
  const s = { kubeconfig: writeKubeconfig(join(dir, 'kubeconfig'), { server: api.url, namespace: 'db' }) } as Setup;
  const settings = {
    destinationPath: 'https://acct.blob.core.windows.net/pg-backups',
    serverName: 'pg',
    azureCredentials: { connectionString: { name: CREDS, key: 'CS' } },
    service: 'orders-db',
  };
  const good = recoveryClusterManifest({
    name: 'pg-restore-x',
    namespace: 'db',
    source: { name: 'pg', spec: { instances: 1 } },
    settings,
    target: { lsn: '0/3000148', inclusive: false },
    runId: 'r',
  }) as any;
  // --validate=false: this server publishes no OpenAPI schema; the checks are the server's own (a 422), as for a CRD.
  const apply = async (o: unknown) => {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify(o));
    return promisify(execFile)('kubectl', ['--kubeconfig', s.kubeconfig, 'create', '--validate=false', '-f', file]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
  };
  const inline = structuredClone(good);
  inline.metadata.name = 'inline';
  inline.spec.externalClusters[0].barmanObjectStore.azureCredentials = {
    storageAccount: { name: CREDS, key: 'A' },
    storageKey: 'plain-key',
  };
  const r1 = await apply(inline);
  assert.notEqual(r1.code, 0);
  assert.match(r1.out, /spec\.externalClusters\[0\]\.barmanObjectStore\.azureCredentials\.storageKey in body must be of type object/);
  const elsewhere = structuredClone(good);
  elsewhere.metadata.name = 'elsewhere';
  elsewhere.spec.bootstrap.recovery.source = 'not-listed';
  const r2 = await apply(elsewhere);
  assert.notEqual(r2.code, 0);
  assert.match(r2.out, /spec\.bootstrap\.recovery\.source: Invalid value: "not-listed": External cluster not-listed not found/);
  const badLsn = structuredClone(good);
  badLsn.metadata.name = 'bad-lsn';
  badLsn.spec.bootstrap.recovery.recoveryTarget.targetLSN = 'yesterday';
  assert.match((await apply(badLsn)).out, /Invalid targetLSN/);
  assert.equal(api.state.list('clusters', 'db').length, 0, 'nothing refused was stored');

  // The drill's own manifest: accepted; without its Secret the operator makes no instance and says why.
  const r3 = await apply(good);
  assert.equal(r3.code, 0, r3.out);
  assert.match(r3.out, /cluster\.postgresql\.cnpg\.io\/pg-restore-x created/);
  await api.state.waitFor(() => !!api.state.get('clusters', 'db', 'pg-restore-x')?.status?.phase, 'the operator to report');
  const c = await kubectl(s, 'get', 'clusters.postgresql.cnpg.io', 'pg-restore-x');
  assert.equal(c.status.phase, 'Unable to create required cluster objects');
  assert.match(c.status.phaseReason, /secret "pg-backup-creds" not found/);
  assert.equal(api.state.list('pods', 'db').length, 0);
});

test('drill recover after SIGKILL while the recovery Cluster restores: the same Cluster is waited for, the Service repointed, the damaged cluster untouched', {
  timeout: 600_000,
}, async (t) => {
  const s = await setup(t);
  const damagedSpec = structuredClone(s.api.state.get('clusters', 'db', 'pg')!.spec);
  const earlier = await query<{ token: string }>(
    s.db.instances.get('pg-1')!.port,
    "SELECT token FROM orders WHERE token LIKE 'warm-%' ORDER BY token",
  );
  const results = join(s.dir, 'results');
  const run = drillCli(['run', s.drill('restore-killed'), '--results', results, '--yes'], s.env);
  const recovering = () => s.api.state.list('clusters', 'db', 'drill.dev/restore-of=pg');
  // Killed once the recovery Cluster was created and before the Service was repointed.
  await s.api.state.waitFor(() => recovering().length === 1, 'the drill to create the recovery Cluster', 240_000);
  run.child.kill('SIGKILL');
  const killed = await run.done;
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal((await kubectl(s, 'get', 'svc', 'orders-db')).spec.selector['cnpg.io/cluster'], 'pg', 'not repointed before the kill');
  const uid = recovering()[0]!.metadata.uid;

  const r = await drillCli(['recover', '--results', results], s.env).done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const name = recovering()[0]!.metadata.name!;
  assert.equal(recovering().length, 1);
  assert.equal(recovering()[0]!.metadata.uid, uid, 'the Cluster the killed run created, waited for, not made again');
  assert.deepEqual((await kubectl(s, 'get', 'svc', 'orders-db')).spec.selector, {
    'cnpg.io/cluster': name,
    'cnpg.io/instanceRole': 'primary',
  });
  const restoredPort = s.db.instances.get(`${name}-1`)!.port;
  assert.deepEqual(await query(restoredPort, "SELECT token FROM orders WHERE token LIKE 'warm-%' ORDER BY token"), earlier);
  assert.deepEqual(s.api.state.get('clusters', 'db', 'pg')!.spec, damagedSpec);
  assert.ok(s.db.pid('pg-1'), 'the damaged primary still runs');
  t.diagnostic(
    `recover: ${r.stdout
      .split('\n')
      .filter((l) => /rollback|restor/i.test(l))
      .slice(0, 6)
      .join(' | ')}`,
  );
});

test('delete-rows on a CloudNativePG target: writes acknowledged on the damaged cluster after the DELETE are discarded, counted exactly against the damaged cluster left running', {
  timeout: 600_000,
}, async (t) => {
  const s = await setup(t);
  const { runDir, rec } = await runPassing(s, 'restore-after-delete', '{ fault: delete-rows, restoreTimeout: 5m }');
  const name: string = s.api.state.list('clusters', 'db', 'drill.dev/restore-of=pg')[0]!.metadata.name!;

  // Independent reads: the restored primary, and the damaged primary the drill left running (its pod and data untouched).
  const l = rec.objectives.rpo.ledger;
  const all = writesOf(runDir).slice(0, l.total);
  const tag = all[0]!.token.slice(0, 8);
  const tokens = async (port: number) =>
    new Set((await query<{ token: string }>(port, 'SELECT token FROM orders WHERE token LIKE $1', [`${tag}%`])).map((x) => x.token));
  const restored = await tokens(s.db.instances.get(`${name}-1`)!.port);
  const damaged = await tokens(s.db.instances.get('pg-1')!.port);
  const rp = l.discardedByRestore.restorePointMs;
  let lost = 0;
  let discarded = 0;
  let seenInDamaged = 0;
  for (const w of all) {
    if (w.outcome !== 'ok' || restored.has(w.token)) continue;
    if (w.ackMs! <= rp) lost++;
    else {
      discarded++;
      if (damaged.has(w.token)) seenInDamaged++;
    }
  }
  assert.equal(lost, 0);
  assert.equal(l.discardedByRestore.writes, discarded, 'discarded counted exactly');
  assert.ok(seenInDamaged > 0, 'the service kept taking writes on the damaged database after the DELETE');
  const f = rec.findings.find((x: { title: string }) => /discarded by the point-in-time restore/.test(x.title));
  assert.equal(f?.title, `${discarded} acknowledged writes discarded by the point-in-time restore`);
  t.diagnostic(`RTO ${rec.objectives.rto.measuredSeconds} s; ${discarded} discarded (${seenInDamaged} found in the damaged cluster pg)`);
});

test('lose-cluster on a CloudNativePG target: the damaged Cluster fenced (pods and volumes kept), the recovery Cluster from Blob to the newest archived WAL, lost writes counted against it', {
  timeout: 600_000,
}, async (t) => {
  const s = await setup(t);
  const { runDir, rec } = await runPassing(s, 'lose-cluster', '{ fault: lose-cluster, restoreTimeout: 5m }');

  // The damaged Cluster: fenced as CloudNativePG fences, its pods kept (not Ready), its PostgreSQL stopped, its data on disk.
  const damaged = await kubectl(s, 'get', 'clusters.postgresql.cnpg.io', 'pg');
  assert.equal(damaged.metadata.annotations?.['cnpg.io/fencedInstances'], '["*"]');
  for (const n of ['pg-1', 'pg-2']) {
    const pod = await kubectl(s, 'get', 'pod', n);
    assert.equal(pod.status.phase, 'Running', `${n} kept running`);
    assert.ok(
      pod.status.conditions.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'False'),
      `${n} not Ready while fenced`,
    );
    assert.equal(s.db.pid(n), null, `${n}'s PostgreSQL stopped`);
  }
  // The restore cannot say how far it replayed: the recovery check passed on a served prefix of the ledger, no hole.
  const check = readEvents(runDir).find((e) => e.type === 'probe' && e.name === 'users served their data again' && e.ok);
  assert.match(
    String(check?.detail),
    /^orders acknowledged before the fault served up to the one acknowledged [\d.]+ s before it, none older missing \((\d+) of \d+ asked/,
  );
  const destroyed = readEvents(runDir).find((e) => e.type === 'log' && /^lose-cluster: /.test(String(e.message)));
  assert.match(String(destroyed?.message), /Cluster pg fenced \(cnpg\.io\/fencedInstances: \["\*"\]\)/);

  // The recovery Cluster serves behind the Service; every acknowledged write missing from it is counted lost.
  const name: string = s.api.state.list('clusters', 'db', 'drill.dev/restore-of=pg')[0]!.metadata.name!;
  const svc = await kubectl(s, 'get', 'service', 'orders-db');
  assert.equal(svc.spec.selector['cnpg.io/cluster'], name);
  const l = rec.objectives.rpo.ledger;
  const all = writesOf(runDir).slice(0, l.total);
  const tag = all[0]!.token.slice(0, 8);
  const restored = new Set(
    (
      await query<{ token: string }>(s.db.instances.get(`${name}-1`)!.port, 'SELECT token FROM orders WHERE token LIKE $1', [`${tag}%`])
    ).map((x) => x.token),
  );
  const faultMs = rec.marks.find((m: { name: string }) => m.name === 'data-destroyed').ms;
  const lost = all.filter((w) => w.outcome === 'ok' && w.ackMs! <= faultMs && !restored.has(w.token));
  assert.equal(rec.objectives.rpo.lostWrites, lost.length);
  // The archive lags at most 4 s (archiveLag of the shipper here) plus a segment's upload: nothing older is lost.
  assert.ok(
    lost.every((w) => faultMs - w.ackMs! <= 10_000),
    `lost writes acknowledged ${lost.map((w) => ((faultMs - w.ackMs!) / 1000).toFixed(1)).join(', ')} s before the fault`,
  );
  t.diagnostic(`RTO ${rec.objectives.rto.measuredSeconds} s; ${lost.length} writes lost (RPO ${rec.objectives.rpo.measuredSeconds} s)`);
});
