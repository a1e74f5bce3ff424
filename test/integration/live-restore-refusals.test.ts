import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { labDown, labUp, type LabInfo } from '../../lib/lab/index.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lib/lab/azurite.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { resolveBackupStore } from '../../lib/adapters/postgres/backup/resolve.ts';
import { ensureContainer, putJson, type BackupStore } from '../../lib/adapters/postgres/backup/store.ts';
import { takePhysicalBackup } from '../../lib/adapters/postgres/backup/physical.ts';
import { archiveWal, listArchivedWal } from '../../lib/adapters/postgres/backup/wal.ts';
import { postmasterPid, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { dropScratch, initScratch, run } from '../../lib/adapters/postgres/backup/scratch.ts';
import { RESTORED_MARKER } from '../../lib/adapters/postgres/backup/pitr.ts';
import { walFolder } from '../../lib/backup/naming.ts';
import { parseSegmentName, walFileName } from '../../lib/backup/wal-names.ts';
import type { BackupManifest } from '../../lib/backup/manifest.ts';
import { createLabLiveRestore } from '../../lib/targets/lab/live-restore.ts';
import type { LiveRestoreAdapter, LiveRestoreStepName } from '../../lib/adapters/types.ts';
import { labFixture, forgetConfiguredBlobStorage, labPrimaryPort } from '../support/lab.ts';
import { sqlRows } from '../support/sql.ts';

/**
 * What must leave the live database alone (no base backup, a gap in the WAL archive, a backup of another cluster,
 * a corrupt one), a restore cut short and called again (before and after the swap), and a whole cluster lost and
 * restored to the newest archived WAL. Real lab, Azurite and PostgreSQL 15; WAL shipped with the one-shot archive.
 */

forgetConfiguredBlobStorage();

const TABLE = 'refusal_probe';

const q = sqlRows;

async function facts(port: number): Promise<{ rows: number; sum: string } | null> {
  if (!(await q<{ t: string | null }>(port, `SELECT to_regclass('${TABLE}')::text AS t`))[0]!.t) return null;
  const [r] = await q<{ rows: string; sum: string }>(
    port,
    `SELECT count(*)::text AS rows, md5(coalesce(string_agg(id || ':' || note, ',' ORDER BY id), '')) AS sum FROM ${TABLE}`,
  );
  return { rows: Number(r!.rows), sum: r!.sum };
}

const insert = (port: number, n: number) =>
  q(port, `INSERT INTO ${TABLE} (note) SELECT 'row ' || g || ' ' || md5(random()::text) FROM generate_series(1, $1) g`, [n]);

describe('live restore of the lab: refusals, resuming, a lost cluster', { timeout: 900_000 }, () => {
  const lab = labFixture('live-restore-refusals');
  let info: LabInfo;
  let store: BackupStore;
  let live: LiveRestoreAdapter;
  let sysid = '';
  const signal = new AbortController().signal;
  const port = () => labPrimaryPort(info.dir);
  const shipOnce = async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: port(), user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      return await archiveWal(c, { host: '127.0.0.1', port: port(), user: 'postgres', database: 'postgres' }, store, sysid);
    } finally {
      await c.end();
    }
  };
  // The lab's own archiver reconnects after each restore; a one-shot archive that looked while it was away and then
  // met it on the slot ("is active", 55006) is tried again, and then waits for the archiver as archiveWal does.
  const ship = async () => {
    try {
      return await shipOnce();
    } catch (e) {
      if ((e as { code?: string }).code !== '55006') throw e;
      await new Promise((r) => setTimeout(r, 2000));
      return shipOnce();
    }
  };
  /** Nothing replaced: the same postmaster serves, no restored marker, no quarantine for the run. */
  const untouched = async (runId: string, pid: number | null) => {
    assert.equal(await postmasterPid(labPaths(lab.dir).node('n1').data), pid, 'the live primary still runs, not restarted');
    assert.equal(existsSync(join(labPaths(lab.dir).node('n1').data, RESTORED_MARKER)), false);
    assert.equal(existsSync(live.quarantineOf(runId)), false, 'nothing moved to the quarantine');
  };

  test('no base backup: preflight names it, the restore refuses and replaces nothing', async () => {
    info = await labUp({ dir: lab.dir, replicas: 1 });
    for (const n of info.db.nodes) if (n.pid) lab.seen.add(n.pid);
    const r = await resolveBackupStore({ lab: labBlobSource(lab.dir), container: LAB_BACKUP_CONTAINER });
    assert.ok(!('missing' in r));
    store = r.store;
    await ensureContainer(store);
    live = createLabLiveRestore(lab.dir, async () => info.controlUrl);
    await q(port(), `CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, note text NOT NULL)`);
    await insert(port(), 1000);
    sysid = (await q<{ id: string }>(port(), 'SELECT system_identifier::text AS id FROM pg_control_system()'))[0]!.id;
    // The lab's archiver takes a base backup once at lab up; this case is a cluster whose backups are gone.
    let removed = 0;
    for await (const b of store.container.listBlobsFlat())
      if (b.name.includes('/physical/')) {
        await store.container.deleteBlob(b.name);
        removed++;
      }
    assert.ok(removed > 0, 'the base backup lab up took was there to remove');
    assert.match((await live.preflight({ table: TABLE, signal })).problems.join('\n'), /no physical base backup of this cluster/);
    const pid = await postmasterPid(labPaths(lab.dir).node('n1').data);
    const point = await live.markRestorePoint(signal);
    const o = await live.restoreLive({ runId: 'none', target: { lsn: point.lsn, inclusive: false }, signal });
    assert.equal(o.ok, false);
    assert.equal(o.replaced, false);
    assert.match(o.problem ?? '', /no physical base backup of this cluster/);
    await untouched('none', pid);
  });

  test('a segment missing from the archive: the restore names it and replaces nothing', async () => {
    await takePhysicalBackup({ host: '127.0.0.1', port: port(), user: 'postgres', database: 'orders' }, store, { signal });
    for (let i = 0; i < 3; i++) {
      await insert(port(), 300);
      await ship();
    }
    const point = await live.markRestorePoint(signal);
    await ship();
    // A segment between the backup's start and the target's, present until now.
    const archived = (await listArchivedWal(store, sysid)).filter((f) => parseSegmentName(f));
    const targetSeg = walFileName(point.timeline, point.lsn);
    const victim = archived.filter((f) => f < targetSeg).at(-2)!;
    const blob = store.container.getBlockBlobClient(walFolder(store.prefix, sysid) + victim);
    const saved = await blob.downloadToBuffer();
    await blob.delete();
    const pid = await postmasterPid(labPaths(lab.dir).node('n1').data);
    try {
      const f = await live.preflight({ table: TABLE, signal });
      assert.deepEqual(f.problems, []);
      const o = await live.restoreLive({ runId: 'gap', target: { lsn: point.lsn, inclusive: false }, signal });
      assert.equal(o.ok, false);
      assert.equal(o.replaced, false);
      assert.deepEqual(o.missingSegments, [victim]);
      assert.match(o.problem ?? '', new RegExp(`misses segment ${victim}`));
      await untouched('gap', pid);
    } finally {
      await blob.uploadData(saved);
    }
  });

  test('a backup of another cluster, and a corrupt one (sha256 mismatch): each refused, nothing replaced', async () => {
    const entries = [];
    for await (const b of store.container.listBlobsFlat({ prefix: `postgres/${sysid}/physical/` })) entries.push(b.name);
    const manifestName = entries.find((n) => n.endsWith('manifest.json'))!;
    const manifest = JSON.parse((await store.container.getBlobClient(manifestName).downloadToBuffer()).toString()) as BackupManifest;
    const tar = await store.container.getBlobClient(manifest.blob.name).downloadToBuffer();
    const plant = async (stamp: string, m: BackupManifest, body: Buffer) => {
      const folder = `postgres/${sysid}/physical/${stamp}/`;
      await store.container.getBlockBlobClient(`${folder}base.tar`).uploadData(body);
      await putJson(store, `${folder}manifest.json`, { ...m, blob: { ...m.blob, name: `${folder}base.tar` } });
      return folder;
    };
    const point = await live.markRestorePoint(signal);
    const pid = await postmasterPid(labPaths(lab.dir).node('n1').data);
    // Filed under this cluster's name but taken of another (as a misnamed `--cluster` would): the manifest says so.
    const other = await plant(
      '20991231T000000000Z',
      { ...manifest, cluster: { ...manifest.cluster, systemIdentifier: '7000000000000000001' } },
      tar,
    );
    try {
      const o = await live.restoreLive({ runId: 'other', target: 'latest', signal });
      assert.equal(o.ok, false);
      assert.equal(o.replaced, false);
      assert.match(o.problem ?? '', /backup of another cluster: its system identifier 7000000000000000001 is not the live cluster's/);
      await untouched('other', pid);
    } finally {
      for (const n of ['base.tar', 'manifest.json']) await store.container.getBlobClient(other + n).deleteIfExists();
    }
    // A real other cluster's data directory, labelled as this cluster's in a manifest that matches it byte for byte:
    // only the copy's own pg_control tells, and the restore reads it before replaying anything.
    const scratch = await initScratch(join(lab.root, 'other-cluster'));
    let foreign: Buffer;
    try {
      await stopCluster(scratch.dataDir, 'fast');
      await run('tar', ['-cf', join(lab.root, 'other.tar'), '-C', scratch.dataDir, '.']);
      foreign = await readFile(join(lab.root, 'other.tar'));
    } finally {
      await dropScratch(scratch.root);
    }
    const sha256 = createHash('sha256').update(foreign).digest('hex');
    const mislabelled = await plant(
      '20991231T000000000Z',
      { ...manifest, blob: { ...manifest.blob, bytes: foreign.length, sha256 } },
      foreign,
    );
    try {
      const o = await live.restoreLive({ runId: 'foreign', target: 'latest', signal });
      assert.equal(o.ok, false);
      assert.equal(o.replaced, false);
      assert.match(
        o.problem ?? '',
        /holds a data directory of another cluster: its pg_control names system identifier \d+, not the live cluster's/,
      );
      await untouched('foreign', pid);
    } finally {
      for (const n of ['base.tar', 'manifest.json']) await store.container.getBlobClient(mislabelled + n).deleteIfExists();
    }
    const bad = Buffer.from(tar);
    bad[bad.length >> 1] = (bad[bad.length >> 1] ?? 0) ^ 0xff;
    const corrupt = await plant('20991231T000000000Z', manifest, bad);
    try {
      // Newest by its stamp and ending where the real one ends: picked for the point and for latest alike.
      for (const target of [{ lsn: point.lsn, inclusive: false as const }, 'latest' as const]) {
        const o = await live.restoreLive({ runId: 'corrupt', target, signal });
        assert.equal(o.ok, false);
        assert.equal(o.replaced, false);
        assert.match(o.problem ?? '', /base backup .* could not be used: .*sha256/i);
      }
      await untouched('corrupt', pid);
    } finally {
      for (const n of ['base.tar', 'manifest.json']) await store.container.getBlobClient(corrupt + n).deleteIfExists();
    }
  });

  test('a target past the end of the archived WAL: PostgreSQL stops short of it, the restore says so in words, nothing replaced', async () => {
    await ship();
    // The last bytes of the newest archived segment: the segment is there (no gap), but after its switch record
    // nothing follows until the next segment, which is not archived yet.
    const newest = (await listArchivedWal(store, sysid))
      .map((n) => parseSegmentName(n))
      .filter((x) => x !== null)
      .at(-1)!;
    const end = (newest.segno + 1n) * 16n * 1024n * 1024n - 256n;
    const lsn = `${(end >> 32n).toString(16).toUpperCase()}/${(end & 0xffffffffn).toString(16).toUpperCase()}`;
    const pid = await postmasterPid(labPaths(lab.dir).node('n1').data);
    const o = await live.restoreLive({ runId: 'short', target: { lsn, inclusive: false }, signal });
    assert.equal(o.ok, false);
    assert.equal(o.replaced, false);
    assert.match(o.problem ?? '', /archived WAL ended before the recovery target was reached/);
    await untouched('short', pid);
  });

  test('a restore cut short before the swap, then after it: called again, each finishes without restoring twice', async (t) => {
    await insert(port(), 500);
    const before = await facts(port());
    const point = await live.markRestorePoint(signal);
    await q(port(), `DROP TABLE ${TABLE}`);
    const cut = new AbortController();
    const first = await live.restoreLive({
      runId: 'resume',
      target: { lsn: point.lsn, inclusive: false },
      signal: cut.signal,
      onStep: (s) => s === 'download' && cut.abort(new Error('interrupted after the download')),
    });
    assert.equal(first.ok, false);
    assert.equal(first.replaced, false, first.problem ?? '');
    const second = await live.restoreLive({
      runId: 'resume',
      target: { lsn: point.lsn, inclusive: false },
      signal,
      log: (l) => t.diagnostic(l),
    });
    assert.equal(second.ok, true, second.problem ?? '');
    assert.deepEqual(await facts(info.db.endpointPort), before);
    assert.equal((await live.restoredAndWhole('resume', signal)).ok, true);

    // Now on the restored cluster's new timeline: cut short after the swap, before the standby was rebuilt.
    await insert(port(), 200);
    const before2 = await facts(port());
    const point2 = await live.markRestorePoint(signal);
    assert.ok(point2.timeline > point.timeline, 'the restored cluster runs on a new timeline');
    await q(port(), `DROP TABLE ${TABLE}`);
    const cut2 = new AbortController();
    const a = await live.restoreLive({
      runId: 'resume2',
      target: { lsn: point2.lsn, inclusive: false },
      signal: cut2.signal,
      onStep: (s) => s === 'repoint' && cut2.abort(new Error('interrupted after the repoint')),
    });
    assert.equal(a.ok, false);
    assert.equal(a.replaced, true);
    assert.equal((await live.restoredAndWhole('resume2', signal)).ok, false, 'the standby is not rebuilt yet');
    const steps: LiveRestoreStepName[] = [];
    const b = await live.restoreLive({
      runId: 'resume2',
      target: { lsn: point2.lsn, inclusive: false },
      signal,
      onStep: (s) => steps.push(s),
    });
    assert.equal(b.ok, true, b.problem ?? '');
    assert.deepEqual(steps, ['repoint', 'standby'], 'the checked copy in place is not restored again');
    assert.deepEqual(await facts(info.db.endpointPort), before2);
    const w = await live.restoredAndWhole('resume2', signal);
    assert.equal(w.ok, true, w.detail);
  });

  test('lose-cluster: every node killed and moved aside, restored to the newest archived WAL', async () => {
    await insert(port(), 700);
    await ship();
    const before = await facts(port());
    const lost = await live.loseCluster('lost', signal);
    assert.deepEqual(lost.nodes.sort(), ['n1', 'n2']);
    assert.ok(existsSync(join(lost.quarantine, 'n1', 'PG_VERSION')));
    assert.equal(existsSync(labPaths(lab.dir).node('n1').data), false);
    const o = await live.restoreLive({ runId: 'lost', target: 'latest', signal });
    assert.equal(o.ok, true, o.problem ?? '');
    assert.deepEqual(await facts(info.db.endpointPort), before, 'everything archived before the loss is back');
    const w = await live.restoredAndWhole('lost', signal);
    assert.equal(w.ok, true, w.detail);
  });

  test('lab down drops the quarantine and the restore folders, and keeps the restored pair', async () => {
    assert.ok(existsSync(live.quarantineOf('lost')));
    await labDown({ dir: lab.dir });
    assert.equal(existsSync(join(labPaths(lab.dir).dir, 'quarantine')), false);
    assert.equal(existsSync(join(labPaths(lab.dir).dir, 'pitr')), false);
    assert.ok(existsSync(join(labPaths(lab.dir).node('n1').data, RESTORED_MARKER)), "the lab's own data stays");
  });
});
