import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { labDatabaseOf } from '../../lib/targets/lab/index.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';

/** target.database on the lab: replication mode and failover provider, validated, defaulted, and refused when unavailable. */
const drill = (database: string) =>
  `name: db\nkind: adhoc\ntarget:\n  kind: lab\n  replicas: 1${database ? `\n  database: ${database}` : ''}\nload: { rate: 10 }\nscenarios:\n  - scenario: pod-kill\n`;

test('a lab target without database settings leaves them to the defaults: async, pg-promote', () => {
  const r = validateDrillText('d.yaml', drill(''), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in r, 'problems' in r ? r.problems.map(formatProblem).join('\n') : '');
  assert.deepEqual(r.drill.target, { kind: 'lab', replicas: 1 });
  assert.deepEqual(labDatabaseOf(r.drill.target as never), { replication: 'async', provider: 'pg-promote' });
});

test('sync replication is kept and the provider defaults to pg-promote', () => {
  const r = validateDrillText('d.yaml', drill('{ replication: sync }'), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in r);
  assert.deepEqual(r.drill.target, { kind: 'lab', replicas: 1, database: { replication: 'sync', provider: 'pg-promote' } });
});

test('an unknown replication mode or provider is a problem at its line, and an unknown key too', () => {
  const r = validateDrillText('d.yaml', drill('{ replication: semi, provider: rds, standbys: 2 }'), testCatalog(), { capabilitiesOf });
  assert.ok('problems' in r);
  const lines = r.problems.map(formatProblem);
  assert.ok(
    lines.some((l) => /target\.database\.replication: .*async.*sync/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /target\.database\.provider: .*pg-promote.*patroni/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /target\.database.*standbys/.test(l)),
    lines.join('\n'),
  );
});

test('provider patroni on the lab is kept: the lab runs its pair under Patroni and etcd (refused only where they are not installed)', () => {
  const r = validateDrillText('d.yaml', drill('{ provider: patroni }'), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in r);
  assert.deepEqual(labDatabaseOf(r.drill.target as never), { replication: 'async', provider: 'patroni' });
});
