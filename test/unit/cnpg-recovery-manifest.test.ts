/**
 * The recovery Cluster a data-loss drill asks CloudNativePG for, and the drill-file settings behind it: Secret
 * references only (an inline credential is refused at validation, and none can reach the manifest), the
 * recovery target right for an LSN (exclusive) and for latest (no target), the destination path read as
 * barman-cloud reads it, and the kubernetes target's bad inputs named by file:line and field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseDestinationPath,
  recoveryClusterManifest,
  recoveryClusterName,
  type CnpgRestoreSettings,
} from '../../lib/adapters/kubernetes/cnpg-manifest.ts';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';
import dataLoss from '../../scenarios/data-loss.ts';

const settings: CnpgRestoreSettings = {
  destinationPath: 'https://acct.blob.core.windows.net/pg-backups/prod',
  serverName: 'orders-db',
  azureCredentials: {
    storageAccount: { name: 'pg-backup-creds', key: 'ACCOUNT' },
    storageSasToken: { name: 'pg-backup-creds', key: 'SAS' },
  },
  service: 'orders-db',
};
const source = {
  name: 'orders-db',
  spec: { instances: 3, storage: { size: '10Gi' }, imageName: 'ghcr.io/cloudnative-pg/postgresql:15.8' },
};

test('an LSN target: recoveryTarget.targetLSN with exclusive: true, the source an externalClusters entry, credentials as Secret references', () => {
  const m = recoveryClusterManifest({
    name: 'orders-db-restore-abc',
    namespace: 'prod',
    source,
    settings,
    target: { lsn: '0/3000148', inclusive: false },
    runId: 'run-1',
  }) as any;
  assert.equal(m.apiVersion, 'postgresql.cnpg.io/v1');
  assert.equal(m.kind, 'Cluster');
  assert.deepEqual(m.spec.bootstrap, {
    recovery: { source: 'orders-db-backup', recoveryTarget: { targetLSN: '0/3000148', exclusive: true } },
  });
  assert.deepEqual(m.spec.externalClusters, [
    {
      name: 'orders-db-backup',
      barmanObjectStore: {
        destinationPath: 'https://acct.blob.core.windows.net/pg-backups/prod',
        serverName: 'orders-db',
        azureCredentials: {
          storageAccount: { name: 'pg-backup-creds', key: 'ACCOUNT' },
          storageSasToken: { name: 'pg-backup-creds', key: 'SAS' },
        },
      },
    },
  ]);
  assert.equal(m.spec.instances, 3, "the damaged cluster's instances");
  assert.deepEqual(m.spec.storage, { size: '10Gi' });
  assert.equal(m.metadata.annotations['drill.dev/run-id'], 'run-1');
});

test("the source's own archiving carried over under the recovery cluster's serverName, never the damaged cluster's", () => {
  const backup = {
    retentionPolicy: '30d',
    barmanObjectStore: { destinationPath: settings.destinationPath, serverName: 'orders-db', azureCredentials: settings.azureCredentials },
  };
  const m = recoveryClusterManifest({
    name: 'orders-db-restore-x',
    namespace: 'p',
    source: { name: 'orders-db', spec: { ...source.spec, backup } },
    settings,
    target: 'latest',
    runId: 'r',
  }) as any;
  assert.deepEqual(m.spec.backup, { ...backup, barmanObjectStore: { ...backup.barmanObjectStore, serverName: 'orders-db-restore-x' } });
  assert.equal(backup.barmanObjectStore.serverName, 'orders-db', 'the source spec is not changed');
  const none = recoveryClusterManifest({ name: 'x', namespace: 'p', source, settings, target: 'latest', runId: 'r' }) as any;
  assert.equal(none.spec.backup, undefined);
});

test('latest: no recoveryTarget at all (recovery to the end of the archived WAL)', () => {
  const m = recoveryClusterManifest({
    name: 'x',
    namespace: 'prod',
    source,
    settings: { ...settings, instances: 1 },
    target: 'latest',
    runId: 'r',
  }) as any;
  assert.deepEqual(m.spec.bootstrap, { recovery: { source: 'orders-db-backup' } });
  assert.equal(m.spec.instances, 1);
});

test('no credential value can reach the manifest: only name and key of each reference are copied', () => {
  const sneaky = {
    ...settings,
    azureCredentials: { connectionString: { name: 's', key: 'k', value: 'DefaultEndpointsProtocol=https;AccountKey=SECRET' } as any },
  };
  const text = JSON.stringify(
    recoveryClusterManifest({ name: 'x', namespace: 'p', source, settings: sneaky, target: 'latest', runId: 'r' }),
  );
  assert.doesNotMatch(text, /SECRET|AccountKey/);
  assert.match(text, /"connectionString":\{"name":"s","key":"k"\}/);
});

test('recovery cluster names: stable per run, distinct across runs, never the source, short enough for pod names', () => {
  const a = recoveryClusterName('orders-db', 'data-loss-20261204T1200-abc');
  assert.equal(a, recoveryClusterName('orders-db', 'data-loss-20261204T1200-abc'));
  assert.notEqual(a, recoveryClusterName('orders-db', 'data-loss-20261204T1200-abd'));
  assert.notEqual(a, 'orders-db');
  assert.match(a, /^orders-db-restore-[a-z0-9]{7}$/);
  assert.ok(recoveryClusterName('x'.repeat(63), 'r').length <= 56);
});

test('destinationPath: Azure account URL, and an emulator whose first path segment is the account', () => {
  assert.deepEqual(parseDestinationPath('https://acct.blob.core.windows.net/pg-backups/prod/eu'), {
    accountUrl: 'https://acct.blob.core.windows.net',
    container: 'pg-backups',
    prefix: 'prod/eu',
  });
  assert.deepEqual(parseDestinationPath('http://127.0.0.1:10000/devstoreaccount1/pg-backups'), {
    accountUrl: 'http://127.0.0.1:10000/devstoreaccount1',
    container: 'pg-backups',
    prefix: '',
  });
  assert.throws(() => parseDestinationPath('https://acct.blob.core.windows.net/'), /names no container/);
});

const catalog = new Map([[dataLoss.name, dataLoss]]);
function drill(
  database: string,
  params = '{ fault: drop-table }',
  guard = '  allowDataLoss: true\n  dataLossReason: staging data',
): string {
  return `name: kube-data-loss
kind: adhoc
service: { name: orders, tier: critical, dataClass: database }
target:
  kind: kubernetes
  context: test
  namespaces: [db]
  url: http://127.0.0.1:8080
${guard}
${database}
load:
  rate: 10
  requests:
    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' } }
scenarios:
  - scenario: data-loss
    name: drop
    params: ${params}
    timeout: 5m
`;
}
const problems = (text: string) => {
  const r = validateDrillText('drill.yaml', text, catalog, { capabilitiesOf });
  return 'problems' in r ? r.problems.map(formatProblem) : [];
};
const DB = '  database: { provider: cnpg, cluster: pg, host: 127.0.0.1, port: 5432, user: app, database: app';
const RESTORE = `restore: { destinationPath: 'https://acct.blob.core.windows.net/pg-backups', azureCredentials: { connectionString: { name: creds, key: CS } }, service: orders-db }`;

test('a kubernetes target with its restore settings: valid, normalised with serverName defaulting to the Cluster', () => {
  const r = validateDrillText('drill.yaml', drill(`${DB}, ${RESTORE} }`), catalog, { capabilitiesOf });
  if ('problems' in r) assert.fail(r.problems.map(formatProblem).join('\n'));
  const t = r.drill.target;
  assert.ok(t.kind === 'kubernetes');
  assert.deepEqual(t.dataLoss, { reason: 'staging data' });
  assert.deepEqual(t.database?.restore, {
    destinationPath: 'https://acct.blob.core.windows.net/pg-backups',
    serverName: 'pg',
    azureCredentials: { connectionString: { name: 'creds', key: 'CS' } },
    service: 'orders-db',
  });
});

test('bad inputs on a kubernetes target: each named by file:line and field', () => {
  const inline = problems(
    drill(
      `${DB}, restore: { destinationPath: 'https://a.blob.core.windows.net/c', azureCredentials: { connectionString: 'DefaultEndpointsProtocol=https;AccountKey=abc' }, service: s } }`,
    ),
  );
  assert.equal(inline.length, 1, inline.join('\n'));
  assert.match(
    inline[0]!,
    /^drill\.yaml:\d+:\d+: target\.database\.restore\.azureCredentials\.connectionString: expected a Secret reference \{ name, key \}, got a value written inline/,
  );

  const missing = problems(drill(`${DB} }`));
  assert.equal(missing.length, 1, missing.join('\n'));
  assert.match(
    missing[0]!,
    /^drill\.yaml:\d+:\d+: scenarios\[0\]\.params\.fault: the live restore needs target\.database\.restore \(destinationPath/,
  );

  assert.deepEqual(
    problems(drill(`${DB}, ${RESTORE} }`, '{ fault: lose-cluster }')),
    [],
    'lose-cluster fences the cluster: allowed with the guard',
  );
  const loseUnguarded = problems(drill(`${DB}, ${RESTORE} }`, '{ fault: lose-cluster }', ''));
  assert.equal(loseUnguarded.length, 1, loseUnguarded.join('\n'));
  assert.match(loseUnguarded[0]!, /params\.fault: fault lose-cluster fences every instance of the CloudNativePG cluster/);

  const unguarded = problems(drill(`${DB}, ${RESTORE} }`, '{ fault: drop-table }', ''));
  assert.match(unguarded.join('\n'), /target\.allowDataLoss: true and target\.dataLossReason/);

  const noCreds = problems(
    drill(
      `${DB}, restore: { destinationPath: 'https://a.blob.core.windows.net/c', azureCredentials: { storageAccount: { name: s, key: a } }, service: s } }`,
    ),
  );
  assert.match(
    noCreds.join('\n'),
    /target\.database\.restore\.azureCredentials: expected connectionString, or storageAccount with storageKey or storageSasToken/,
  );
});
