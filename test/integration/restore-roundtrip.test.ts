import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from '../support/tmp.ts';
import { waitFor } from '../support/cli.ts';
import {
  ARCHIVE_SLOT,
  archiveSlotHolder,
  archiveWal,
  dropScratch,
  pickBackup,
  readCatalog,
  releaseArchivedWal,
  restoreBackup,
  scratchRoot,
  takeLogicalBackup,
  takePhysicalBackup,
} from '../../lib/adapters/postgres/backup/index.ts';
import { rowsOf, startBackupSource, type BackupSource } from '../support/backup-source.ts';

/**
 * Backup and restore round trips against real Azurite and PostgreSQL 15: logical and physical, each
 * compared row for row with the source, and a point-in-time restore that lands at the requested time.
 */
let tmp: TempDir;
let source: BackupSource;
before(async () => {
  tmp = await makeTempDir('restore-rt');
  source = await startBackupSource(tmp.path);
});
after(async () => {
  await source?.stop();
  await tmp?.remove();
});

const src = () => ({ host: '127.0.0.1', port: source.port, user: 'postgres', database: 'orders' });

test('logical backup streams to Blob with a manifest and restores row for row with pg_restore -j', { timeout: 180_000 }, async () => {
  const store = source.store('rt-logical');
  const taken = await takeLogicalBackup(source.src, store, { freshnessQuery: 'SELECT max(created_at) FROM orders' });
  const m = taken.manifest;
  assert.equal(m.kind, 'logical');
  assert.equal(m.database, 'orders');
  assert.match(m.blob.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(
    m.tables.map((t) => [t.name, t.rows]),
    [
      ['awkward', 500],
      ['orders', 2000],
    ],
  );
  assert.ok(m.newestDataAt && Date.parse(m.newestDataAt) <= Date.parse(m.endedAt));
  const props = await store.container.getBlobClient(m.blob.name).getProperties();
  assert.equal(props.contentLength, m.blob.bytes);

  const entry = pickBackup(await readCatalog(store, { kind: 'logical', database: 'orders' }));
  assert.equal(entry?.folder, taken.folder);
  const root = await scratchRoot(tmp.path);
  try {
    const out = await restoreBackup({
      store,
      manifest: entry!.manifest!,
      root,
      jobs: 2,
      smokeQuery: 'SELECT count(*) > 0 FROM orders',
      freshnessQuery: 'SELECT max(created_at) FROM orders',
    });
    assert.equal(out.ok, true, out.problem ?? '');
    assert.deepEqual(
      out.checks.map((c) => [c.name, c.ok]),
      [
        ['pg_amcheck', true],
        ['rows match the manifest', true],
        ['smoke query', true],
      ],
    );
    assert.equal(out.newestDataAt, m.newestDataAt);
    for (const table of ['orders', 'awkward']) {
      assert.deepEqual(await rowsOf(out.scratch!.conn('orders'), table), await rowsOf(src(), table), `${table} row for row`);
    }
    assert.notEqual(out.scratch!.port, source.port, 'restored into a scratch cluster, not the source');
  } finally {
    await dropScratch(root);
  }
});

test('physical backup restores row for row; point in time lands at the requested time', { timeout: 240_000 }, async () => {
  const store = source.store('rt-physical');
  const taken = await takePhysicalBackup(source.src, store, {});
  const m = taken.manifest;
  assert.equal(m.kind, 'physical');
  assert.match(m.walStartSegment ?? '', /^[0-9A-F]{24}$/);
  const atBackup = await rowsOf(src(), 'orders');

  // Writes after the backup: some before the requested point, some after it.
  await source.insertOrders(100, 'before-point');
  await new Promise((r) => setTimeout(r, 1200));
  const point = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 1200));
  await source.insertOrders(100, 'after-point');
  const admin = new pg.Client(src());
  await admin.connect();
  try {
    const wal = await archiveWal(admin, source.src, store, m.cluster.name);
    assert.ok(wal.uploaded.length >= 1, 'new WAL reached the archive');
  } finally {
    await admin.end();
  }

  const entry = pickBackup(await readCatalog(store, { kind: 'physical' }))!;
  // 1. The backup's own end point: exactly the rows at backup time, checked against the manifest.
  let root = await scratchRoot(tmp.path);
  try {
    const out = await restoreBackup({ store, manifest: entry.manifest!, root });
    assert.equal(out.ok, true, out.problem ?? '');
    assert.deepEqual(await rowsOf(out.scratch!.conn('orders'), 'orders'), atBackup, 'row for row as at backup time');
    assert.deepEqual(await rowsOf(out.scratch!.conn('orders'), 'awkward'), await rowsOf(src(), 'awkward'));
  } finally {
    await dropScratch(root);
  }
  // 2. Point in time: rows before the point present, rows after it absent.
  root = await scratchRoot(tmp.path);
  try {
    const out = await restoreBackup({
      store,
      manifest: entry.manifest!,
      root,
      pointInTime: point,
      freshnessQuery: 'SELECT max(created_at) FROM orders',
    });
    assert.equal(out.ok, true, out.problem ?? '');
    const c = new pg.Client(out.scratch!.conn('orders'));
    await c.connect();
    try {
      const r = await c.query<{ item: string; n: string }>('SELECT item, count(*) AS n FROM orders GROUP BY item ORDER BY item');
      assert.deepEqual(
        r.rows.map((x) => [x.item, Number(x.n)]),
        [
          ['base', 2000],
          ['before-point', 100],
        ],
      );
    } finally {
      await c.end();
    }
    assert.ok(out.newestDataAt && out.newestDataAt <= point, `newest ${out.newestDataAt} at or before ${point}`);
    assert.ok(Date.parse(point) - Date.parse(out.newestDataAt!) < 5000, 'and close to it');
  } finally {
    await dropScratch(root);
  }
  // 3. Latest: every archived segment replayed, the rows after the point are back too.
  root = await scratchRoot(tmp.path);
  try {
    const out = await restoreBackup({ store, manifest: entry.manifest!, root, pointInTime: 'latest' });
    assert.equal(out.ok, true, out.problem ?? '');
    assert.deepEqual(await rowsOf(out.scratch!.conn('orders'), 'orders'), await rowsOf(src(), 'orders'), 'row for row with the source now');
  } finally {
    await dropScratch(root);
  }
});

test('a WAL shipper that takes the archive slot mid-run leaves the archive run whole: the slot is left to it', {
  timeout: 60_000,
}, async () => {
  const admin = new pg.Client(src());
  await admin.connect();
  const tmpWal = await mkdtemp(join(tmp.path, 'follow-'));
  // A streaming pg_receivewal on the slot, as the lab's shipper runs it.
  const shipper = spawn(
    'pg_receivewal',
    ['-h', '127.0.0.1', '-p', String(source.port), '-U', 'postgres', '-D', tmpWal, '-S', ARCHIVE_SLOT, '--no-sync'],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: 'ignore',
    },
  );
  try {
    const pid = await waitFor('the stand-in shipper to hold the slot', () => archiveSlotHolder(admin), 10_000);
    const end = (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    await releaseArchivedWal(admin, end);
    assert.equal(await archiveSlotHolder(admin), pid, 'the shipper still holds the slot');
  } finally {
    if (shipper.exitCode === null && shipper.signalCode === null) {
      shipper.kill('SIGTERM');
      await once(shipper, 'exit');
    }
    await admin.end();
  }
});
