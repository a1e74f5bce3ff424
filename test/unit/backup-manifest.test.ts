import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupFolder, normalisePrefix, parseBackupBlob, stampOf, stampToIso, walFolder } from '../../lib/backup/naming.ts';
import { compareTables, parseManifest } from '../../lib/backup/manifest.ts';

test('blob names: one folder per backup, stamps sort in time order and read back to the same instant', () => {
  const at = '2026-12-02T06:01:02.345Z';
  assert.equal(stampOf(at), '20261202T060102345Z');
  assert.equal(stampToIso('20261202T060102345Z'), at);
  assert.equal(stampToIso('2026-12-02'), null);
  assert.equal(normalisePrefix('/orders'), 'orders/');
  assert.equal(normalisePrefix(''), '');
  const logical = backupFolder({ prefix: 'orders', cluster: '7714', kind: 'logical', database: 'orders', startedAt: at });
  assert.equal(logical, 'orders/postgres/7714/logical/orders/20261202T060102345Z/');
  assert.equal(
    backupFolder({ prefix: '', cluster: 'c', kind: 'physical', database: 'x', startedAt: at }),
    'postgres/c/physical/20261202T060102345Z/',
  );
  assert.equal(walFolder('orders/', 'c'), 'orders/postgres/c/wal/');
  assert.deepEqual(parseBackupBlob('orders', `${logical}dump.pgc`), {
    folder: logical,
    cluster: '7714',
    kind: 'logical',
    database: 'orders',
    stamp: '20261202T060102345Z',
    takenAt: at,
    file: 'dump.pgc',
  });
  assert.equal(parseBackupBlob('orders', 'orders/postgres/7714/wal/000000010000000000000003'), null);
  assert.equal(parseBackupBlob('orders', 'other/thing'), null);
  assert.ok(stampOf('2026-12-02T06:01:02.345Z') < stampOf('2026-12-10T00:00:00.000Z'));
});

const manifest = {
  schemaVersion: 1,
  kind: 'logical',
  database: 'orders',
  cluster: { name: 'c', systemIdentifier: '1', serverVersion: '15.14', timeline: 1 },
  startedAt: '2026-12-02T06:00:00.000Z',
  endedAt: '2026-12-02T06:00:05.000Z',
  consistentAt: '2026-12-02T06:00:00.100Z',
  lsn: { start: '0/3000028', end: '0/3000100' },
  blob: { name: 'p/dump.pgc', bytes: 10, sha256: 'a'.repeat(64), tool: 'pg_dump -Fc' },
  walStartSegment: null,
  tables: [{ schema: 'public', name: 'orders', rows: 2, checksum: 'md5sum60:1' }],
  newestDataAt: null,
  harness: { version: '0.1.0' },
};

test('a manifest parses; a broken one says what is wrong', () => {
  assert.ok('manifest' in parseManifest(JSON.stringify(manifest)));
  const notJson = parseManifest('{');
  assert.ok('problem' in notJson && notJson.problem.startsWith('manifest is not JSON ('), JSON.stringify(notJson));
  const bad = parseManifest(JSON.stringify({ ...manifest, blob: { ...manifest.blob, sha256: 'xyz' } }));
  assert.ok('problem' in bad && /^manifest is malformed: blob\.sha256:/.test(bad.problem), JSON.stringify(bad));
});

test('restored tables against the manifest: missing, count, checksum and extra tables each named', () => {
  const exp = [
    { schema: 'public', name: 'a', rows: 2, checksum: 'x' },
    { schema: 'public', name: 'b', rows: 2, checksum: 'y' },
    { schema: 'public', name: 'c', rows: 2, checksum: 'z' },
  ];
  assert.deepEqual(compareTables(exp, exp), []);
  const got = [
    { schema: 'public', name: 'b', rows: 1, checksum: 'y' },
    { schema: 'public', name: 'c', rows: 2, checksum: 'w' },
    { schema: 'public', name: 'd', rows: 0, checksum: 'v' },
  ];
  assert.deepEqual(compareTables(exp, got), [
    { table: 'public.a', problem: 'missing after the restore' },
    { table: 'public.b', problem: '1 rows restored, 2 at backup time' },
    { table: 'public.c', problem: 'same row count (2) but the checksum differs: rows changed' },
    { table: 'public.d', problem: 'present after the restore but not in the manifest' },
  ]);
});
