import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { copyBlobVerified, listForReplication } from '../../lib/adapters/blob/replicate.ts';
import { isRunning, initCluster, postmasterPid, serverUser, startCluster, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { archiveWal, takePhysicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { backupStoreFromEnv, type BackupStore } from '../../lib/adapters/postgres/backup/store.ts';
import { walFolder } from '../../lib/backup/naming.ts';
import { LAB_BACKUP_CONTAINER, labBlobEnv, primaryAzurite, startAzuriteInstance, stopLabAzurite } from '../../lib/lab/azurite.ts';
import { readSecondaryDb, regionPaths, type SecondaryDb } from '../../lib/lab/regions/contract.ts';
import { labSecondaryBlobEnv, startSecondaryAzurite, stopSecondaryAzurite } from '../../lib/lab/regions/secondary.ts';
import {
  type SecondaryRestoreOutcome,
  restoreSecondaryDb,
  secondaryPgPaths,
  stopSecondaryRestore,
} from '../../lib/lab/regions/secondary-restore.ts';
import { forgetConfiguredBlobStorage } from '../support/lab.ts';
import { freePort } from '../support/ports.ts';
import { rowsOf } from '../support/backup-source.ts';
import { makeTempDir, type TempDir } from '../support/tmp.ts';

/**
 * The secondary region's restore against real PostgreSQL 15 and two real Azurites: the primary account gets a
 * base backup and archived WAL of a cluster this test runs, the blobs are copied to the secondary account with
 * the replicator's own copy (copyBlobVerified), and the restore reads the secondary alone, the primary's Azurite
 * stopped. Rows written after the last archived segment exist only in the source: the restored database must
 * hold exactly the others.
 */
forgetConfiguredBlobStorage();

let tmp: TempDir;
let labDir = '';
let sourceData = '';
let sourcePort = 0;
let primary: BackupStore;
let secondary: BackupStore;
let sysid = '';
let backupFolder = '';
let startSegment = '';
/** The source's rows as of the end of the last archived segment: what the secondary can have. */
let expected: string[] = [];
const signal = new AbortController().signal;

const conn = (port: number, database = 'orders') => ({ host: '127.0.0.1', port, user: 'postgres', database });
async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(port: number, text: string): Promise<T[]> {
  const c = new pg.Client(conn(port));
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/** One pass of what the replicator does: every blob of the primary's backup container the secondary lacks, copied and checked. */
async function replicate(only?: string): Promise<number> {
  await secondary.container.createIfNotExists();
  const [from, to] = await Promise.all([listForReplication(primary.container), listForReplication(secondary.container)]);
  const held = new Map(to.map((b) => [b.name, b.sourceEtag]));
  let n = 0;
  for (const b of from) {
    if ((only && b.name !== only) || held.get(b.name) === b.etag) continue;
    await copyBlobVerified(primary.container, secondary.container, b);
    n++;
  }
  return n;
}

async function archiveNow(): Promise<void> {
  const c = new pg.Client(conn(sourcePort, 'postgres'));
  await c.connect();
  try {
    await archiveWal(c, conn(sourcePort, 'postgres'), primary, sysid);
  } finally {
    await c.end();
  }
}

/** Nothing of the secondary's restore runs or is left serving. */
async function nothingRunning(): Promise<void> {
  const p = secondaryPgPaths(labDir);
  assert.equal(await isRunning(p.dataDir), false, `no PostgreSQL runs on ${p.dataDir}`);
  assert.equal(await readSecondaryDb(labDir), null, 'no db.json names a secondary database');
}

const restore = (o: Partial<Parameters<typeof restoreSecondaryDb>[1]> = {}) => restoreSecondaryDb(labDir, { signal, ...o });

describe('restore in the secondary region from the secondary account alone', { timeout: 300_000 }, () => {
  before(async () => {
    tmp = await makeTempDir('secondary-restore');
    labDir = join(tmp.path, 'lab');
    await mkdir(labDir, { recursive: true, mode: 0o755 });
    await Promise.all([startAzuriteInstance(primaryAzurite(labDir)), startSecondaryAzurite(labDir)]);
    primary = backupStoreFromEnv(LAB_BACKUP_CONTAINER, undefined, (await labBlobEnv(labDir))!.env);
    secondary = backupStoreFromEnv(LAB_BACKUP_CONTAINER, undefined, (await labSecondaryBlobEnv(labDir))!.env);

    sourcePort = await freePort();
    sourceData = join(tmp.path, 'source');
    await initCluster(sourceData, { port: sourcePort, socketDir: join(tmp.path, 'ss') });
    await startCluster(sourceData, { logFile: join(tmp.path, 'source.log') });
    const admin = new pg.Client(conn(sourcePort, 'postgres'));
    await admin.connect();
    await admin.query('CREATE DATABASE orders');
    sysid = (await admin.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0]!.id;
    await admin.end();
    await sql(sourcePort, 'CREATE TABLE probe (id bigserial PRIMARY KEY, v text NOT NULL, pad text NOT NULL)');
    await sql(
      sourcePort,
      "INSERT INTO probe (v, pad) SELECT 'before-backup-' || g, repeat(md5(g::text), 8) FROM generate_series(1, 2000) g",
    );
    const taken = await takePhysicalBackup(conn(sourcePort), primary, {});
    backupFolder = taken.folder;
    startSegment = taken.manifest.walStartSegment!;
    // Four rounds, each closed into a segment of its own and archived: a middle one can go missing below newer ones.
    for (let round = 1; round <= 4; round++) {
      await sql(
        sourcePort,
        `INSERT INTO probe (v, pad) SELECT 'round-${round}-' || g, repeat(md5(g::text), 8) FROM generate_series(1, 1500) g`,
      );
      await archiveNow();
    }
    expected = await rowsOf(conn(sourcePort), 'probe');
    // Written after the last archived segment: in no archive, so in no restore.
    await sql(sourcePort, "INSERT INTO probe (v, pad) SELECT 'after-archive-' || g, 'x' FROM generate_series(1, 77) g");
    assert.ok((await replicate()) > 5, 'the base backup, its manifest and the WAL were copied to the secondary');
  });

  after(async () => {
    try {
      if (labDir) await stopSecondaryRestore(labDir);
      if (sourceData) await stopCluster(sourceData, 'immediate');
    } finally {
      if (labDir) await Promise.allSettled([stopLabAzurite(labDir), stopSecondaryAzurite(labDir)]);
      await tmp?.remove();
    }
  });

  test("a WAL segment missing from the secondary's copy: refused naming the blob and the gap, nothing started", async () => {
    const folder = walFolder('', sysid);
    const segments = (await listForReplication(secondary.container))
      .map((b) => b.name)
      .filter((n) => n.startsWith(folder) && /^[0-9A-F]{24}$/.test(n.slice(folder.length)) && n.slice(folder.length) >= startSegment)
      .sort();
    assert.ok(segments.length >= 4, `several segments archived after the backup (${segments.length})`);
    const hole = segments[2]!;
    await secondary.container.getBlobClient(hole).delete();
    try {
      const out = await restore();
      assert.equal(out.ok, false);
      assert.deepEqual(out.missing, [`${LAB_BACKUP_CONTAINER}/${hole}`]);
      assert.ok(out.problem?.includes(`${LAB_BACKUP_CONTAINER}/${hole}`), out.problem ?? '');
      assert.match(out.problem!, /hole.*between the backup's first segment .* and the newest archived .*nothing was started/);
      assert.equal(out.db, null);
      assert.equal(existsSync(secondaryPgPaths(labDir).dataDir), false, 'no data directory was made');
      await nothingRunning();
    } finally {
      assert.equal(await replicate(hole), 1, 'the segment copied back from the primary');
    }
  });

  test("the newest base backup's data missing from the secondary: refused naming it, nothing started", async () => {
    const blob = `${backupFolder}base.tar`;
    await secondary.container.getBlobClient(blob).delete();
    try {
      const out = await restore();
      assert.equal(out.ok, false);
      assert.deepEqual(out.missing, [`${LAB_BACKUP_CONTAINER}/${blob}`]);
      assert.match(out.problem!, /cannot be restored: the manifest names .*base\.tar, which is not in the container; nothing was started/);
      await nothingRunning();
    } finally {
      assert.equal(await replicate(blob), 1);
    }
  });

  test('cut short by the signal once replay begins: what it started is stopped, and it says so', async () => {
    // From here on the primary region's storage is gone: every restore below reads the secondary alone.
    await stopLabAzurite(labDir);
    assert.equal(await labBlobEnv(labDir), null, "the primary's Azurite no longer answers");
    const ac = new AbortController();
    const out = await restore({
      signal: ac.signal,
      log: (l) => {
        if (/^downloaded and checked/.test(l)) ac.abort(new Error('SIGINT'));
      },
    });
    assert.equal(out.ok, false);
    assert.match(out.problem!, /cut short \(Error: SIGINT\): the database it started in .* was stopped/);
    assert.equal(await isRunning(secondaryPgPaths(labDir).dataDir), false, 'nothing of it runs');
    assert.equal(await readSecondaryDb(labDir), null);
  });

  let first: SecondaryRestoreOutcome;
  const written = `written-in-secondary-${Date.now()}`;
  test('restored row for row to the last archived segment, on a new timeline, taking writes; a half-done one started over', async () => {
    const steps: [string, number][] = [];
    const lines: string[] = [];
    const t0 = performance.now();
    first = await restore({ onStep: (s, ms) => steps.push([s, ms]), log: (l) => lines.push(l) });
    const wallMs = performance.now() - t0;
    assert.equal(first.ok, true, first.problem ?? '');
    assert.ok(
      lines.some((l) => /left half-done .* was stopped: restoring again/.test(l)),
      'the copy the cut-short call left is started over',
    );
    const db = first.db!;
    assert.equal(first.backupFolder, backupFolder);
    assert.deepEqual(await readSecondaryDb(labDir), db, 'db.json says what was returned');
    assert.equal(db.dataDir, join(regionPaths(labDir).secondaryPg, 'data'));
    assert.deepEqual(await rowsOf(conn(db.port), 'probe'), expected, 'row for row the rows archived in the WAL, none after');
    const late = await sql<{ n: string }>(db.port, "SELECT count(*) AS n FROM probe WHERE v LIKE 'after-archive-%'");
    assert.equal(late[0]!.n, '0');
    const [tl] = await sql<{ f: string; rec: boolean }>(
      db.port,
      'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f, pg_is_in_recovery() AS rec',
    );
    assert.equal(tl!.rec, false, 'promoted');
    assert.equal(db.timeline, 2, 'a new timeline after the source timeline 1');
    assert.equal(Number.parseInt(tl!.f.slice(0, 8), 16), 2);
    await sql(db.port, `INSERT INTO probe (v, pad) VALUES ('${written}', 'y')`);
    const { uid } = await serverUser();
    assert.equal((await stat(db.dataDir)).uid, uid, 'the data directory belongs to the server user');
    assert.deepEqual(
      steps.map(([s]) => s),
      ['download', 'replay', 'promote'],
    );
    for (const k of ['downloadMs', 'replayMs', 'promoteMs'] as const) assert.ok((first.timings[k] ?? -1) >= 0, `${k} measured`);
    console.log(
      `secondary restore of ${expected.length} rows: wall ${wallMs.toFixed(0)} ms, download ${first.timings.downloadMs?.toFixed(0)} ms, replay ${first.timings.replayMs?.toFixed(0)} ms, promote ${first.timings.promoteMs?.toFixed(0)} ms`,
    );
  });

  test('called again: the same database, not restored a second time', async () => {
    const db = first.db!;
    const pid = await postmasterPid(db.dataDir);
    const again = await restore();
    assert.equal(again.ok, true, again.problem ?? '');
    assert.deepEqual(again.db, db);
    assert.deepEqual(again.timings, {}, 'no step ran');
    assert.equal(await postmasterPid(db.dataDir), pid, 'the same server');
    assert.equal((await sql(db.port, `SELECT 1 FROM probe WHERE v = '${written}'`)).length, 1, 'the write made there is kept');
  });

  test('stopped after its restore: started again as it was, writes made in the secondary kept', async () => {
    const db = first.db!;
    await stopCluster(db.dataDir, 'fast');
    const again = await restore();
    assert.equal(again.ok, true, again.problem ?? '');
    assert.equal(again.db!.restoredAt, db.restoredAt, 'not restored anew');
    assert.equal(await isRunning(db.dataDir), true);
    assert.equal((await sql(again.db!.port, `SELECT 1 FROM probe WHERE v = '${written}'`)).length, 1);
  });

  test('a data directory without db.json (a harness killed before it was written) is stopped and restored over', async () => {
    const db = (await readSecondaryDb(labDir))!;
    const pid = await postmasterPid(db.dataDir);
    await rm(regionPaths(labDir).secondaryDb);
    const over = await restore();
    assert.equal(over.ok, true, over.problem ?? '');
    const fresh: SecondaryDb = over.db!;
    assert.notEqual(fresh.restoredAt, db.restoredAt, 'restored anew');
    assert.notEqual(await postmasterPid(fresh.dataDir), pid, 'the old server was stopped');
    assert.deepEqual(await rowsOf(conn(fresh.port), 'probe'), expected, 'again exactly the archived rows');
  });
});
