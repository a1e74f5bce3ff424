import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cnpgSyncOf } from '../../lib/adapters/postgres/failover/cnpg.ts';

test('CloudNativePG synchronous replication: .spec.postgresql.synchronous (1.24+) wins over the legacy minSyncReplicas', () => {
  assert.deepEqual(cnpgSyncOf(undefined), {
    mode: 'async',
    number: 0,
    dataDurability: null,
    source: 'neither .spec.postgresql.synchronous nor .spec.minSyncReplicas is set',
  });
  assert.deepEqual(cnpgSyncOf({ minSyncReplicas: 1, maxSyncReplicas: 2 }), {
    mode: 'quorum',
    number: 1,
    dataDurability: 'required',
    source: '.spec.minSyncReplicas 1, .spec.maxSyncReplicas 2',
  });
  assert.deepEqual(cnpgSyncOf({ postgresql: { synchronous: { method: 'any', number: 2 } } }), {
    mode: 'quorum',
    number: 2,
    dataDurability: 'required',
    source: '.spec.postgresql.synchronous (method any, number 2)',
  });
  assert.deepEqual(cnpgSyncOf({ postgresql: { synchronous: { method: 'first', number: 1, dataDurability: 'preferred' } } }), {
    mode: 'sync',
    number: 1,
    dataDurability: 'preferred',
    source: '.spec.postgresql.synchronous (method first, number 1)',
  });
  // Both set: the operator follows the new stanza.
  assert.equal(cnpgSyncOf({ minSyncReplicas: 2, postgresql: { synchronous: { method: 'first', number: 1 } } }).mode, 'sync');
  assert.equal(cnpgSyncOf({ minSyncReplicas: 0 }).mode, 'async');
  assert.equal(
    cnpgSyncOf({ postgresql: { synchronous: { method: 'any', number: 0 } } }).source,
    '.spec.postgresql.synchronous with number 0',
  );
});
