import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { labUp } from '../../lib/lab/index.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import type { LabInfo } from '../../lib/lab/types.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lib/lab/azurite.ts';
import { resolveBackupStore } from '../../lib/adapters/postgres/backup/resolve.ts';
import { ensureContainer, type BackupStore } from '../../lib/adapters/postgres/backup/store.ts';
import { archiveWal, takePhysicalBackup } from '../../lib/adapters/postgres/backup/index.ts';
import { listArchivedWal } from '../../lib/adapters/postgres/backup/wal.ts';
import { freeLoopbackPort } from '../../lib/adapters/blob/index.ts';
import { giveToServerUser, removeDataDir, runServerBinary, stopCluster } from '../../lib/adapters/postgres/cluster.ts';
import { runTool } from '../../lib/adapters/postgres/backup/tools.ts';
import { createLabLiveRestore } from '../../lib/targets/lab/live-restore.ts';
import { createLabDatabase } from '../../lib/targets/lab/database.ts';
import type { LiveRestoreAdapter } from '../../lib/adapters/types.ts';
import { labConfigNow, labFixture, forgetConfiguredBlobStorage, labNodePort, labPrimaryPort } from '../support/lab.ts';
import { sqlRows } from '../support/sql.ts';

/**
 * The lab's live point-in-time restore against real PostgreSQL 15, Azurite and the lab: a destructive change
 * after a mark, then restoreLive puts the database back to just before it, with the damaged data directory
 * kept in the quarantine and the pair whole again. One lab for the file: each lab up costs seconds.
 */
forgetConfiguredBlobStorage();

let info: LabInfo;
let store: BackupStore;
let live: LiveRestoreAdapter;
const signal = new AbortController().signal;
/** The drop-table test's restore point, for the restore run again after it. */
let dropMark = '';

const db = (port: number) => ({ host: '127.0.0.1', port, user: 'postgres', database: 'orders' });
const q = <T extends pg.QueryResultRow = Record<string, unknown>>(port: number, sql: string) => sqlRows<T>(port, sql);
const primaryPort = () => labPrimaryPort(info.dir);
const standbyName = () => info.db.nodes.find((n) => n.role === 'standby')!.name;
/** The standby's port as lab.json has it now: a live restore starts it from its copy on a port of its own. */
const standbyPort = () => labNodePort(info.dir, standbyName());
/** Count and md5 of a table's rows in id order: "equal" means row for row. */
async function probe(port: number, table = 'probe'): Promise<{ n: number; sum: string } | null> {
  const exists = await q<{ t: string | null }>(port, `SELECT to_regclass('${table}')::text AS t`);
  if (!exists[0]!.t) return null;
  const r = await q<{ n: string; sum: string }>(
    port,
    `SELECT count(*) AS n, md5(coalesce(string_agg(id || ':' || v, ',' ORDER BY id), '')) AS sum FROM ${table}`,
  );
  return { n: Number(r[0]!.n), sum: r[0]!.sum };
}
async function archiveNow(): Promise<void> {
  const c = new pg.Client({ ...db(primaryPort()), database: 'postgres' });
  await c.connect();
  try {
    const sysid = (await c.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0]!.id;
    await archiveWal(c, { ...db(primaryPort()) }, store, sysid);
  } finally {
    await c.end();
  }
}

/** The damaged cluster kept aside, started on a spare port with every transaction read-only, read, and stopped. */
async function readQuarantined<T>(dataDir: string, fn: (port: number) => Promise<T>): Promise<T> {
  const port = await freeLoopbackPort();
  // Its log beside the test's files, not in the quarantine: forensics leave the evidence as it was.
  const logDir = join(dataDir, '..', '..', '..', '..', 'forensic-logs');
  await mkdir(logDir, { recursive: true, mode: 0o755 });
  await giveToServerUser(logDir);
  const logFile = join(logDir, `${port}.log`);
  const r = await runServerBinary('pg_ctl', [
    'start',
    '-D',
    dataDir,
    '-l',
    logFile,
    '-w',
    '-t',
    '60',
    '-o',
    `-p ${port} -c default_transaction_read_only=on -c synchronous_standby_names=`,
  ]);
  if (r.code !== 0) {
    const log = await readFile(logFile, 'utf8').catch(() => '(no log)');
    const holder = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    const argv = holder ? await readFile(`/proc/${holder}/cmdline`, 'utf8').catch(() => '(gone)') : '(no pid)';
    console.error(`postmaster.pid of ${dataDir} names ${holder}: ${argv.replaceAll('\0', ' ')}`);
    assert.fail(`the quarantined ${dataDir} does not start: ${r.stderr}\n${log.split('\n').slice(-15).join('\n')}`);
  }
  try {
    return await fn(port);
  } finally {
    await stopCluster(dataDir, 'fast');
  }
}

/**
 * The lab's continuous archiver ships the restored cluster's new timeline: a completed segment of it reaches Blob. The
 * archive slot made at promotion once held WAL from the replay's last restartpoint, on older timelines the copy never
 * had in pg_wal, and the archiver stopped for good ("requested WAL segment ... has already been removed").
 */
async function archivesNewTimeline(): Promise<void> {
  const { f, id } = (
    await q<{ f: string; id: string }>(
      primaryPort(),
      'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f, (SELECT system_identifier::text FROM pg_control_system()) AS id',
    )
  )[0]!;
  const timeline = f.slice(0, 8);
  await q(primaryPort(), 'SELECT pg_switch_wal()');
  for (const until = Date.now() + 30_000; ; await new Promise((res) => setTimeout(res, 250))) {
    const ours = (await listArchivedWal(store, id)).filter((n) => n.startsWith(timeline) && !n.endsWith('.history'));
    if (ours.length > 0) return;
    assert.ok(
      Date.now() < until,
      `the lab's archiver ships a segment of timeline ${timeline} within 30 s of a switch: none in the archive`,
    );
  }
}

/**
 * run-drop's restore run again by a new adapter, as `drill recover` or the rollback does after the harness died (its
 * record of a copy in flight died with it); it must succeed. Returns its log.
 */
async function restoreDropAgain(): Promise<string> {
  const lines: string[] = [];
  const again = await createLabLiveRestore(info.dir, async () => info.controlUrl).restoreLive({
    runId: 'run-drop',
    target: { lsn: dropMark, inclusive: false },
    signal,
    log: (l) => lines.push(l),
  });
  assert.equal(again.ok, true, again.problem ?? '');
  return lines.join('\n');
}

/** The pair after a restore: the restored primary takes a write through the lab's endpoint, the standby replays it, pg_amcheck is clean. */
async function pairWhole(runId: string): Promise<void> {
  const whole = await live.restoredAndWhole(runId, signal);
  assert.equal(whole.ok, true, whole.detail);
  const stamp = `endpoint-${runId}-${Date.now()}`;
  await q(info.db.endpointPort, `INSERT INTO probe_after (v) VALUES ('${stamp}')`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await q<{ n: string }>(standbyPort(), `SELECT count(*) AS n FROM probe_after WHERE v = '${stamp}'`);
    if (r[0]!.n === '1') break;
    assert.ok(Date.now() < deadline, 'the standby replays the write made through the endpoint within 30 s');
    await new Promise((res) => setTimeout(res, 100));
  }
  const am = await runTool('pg_amcheck', [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort()),
    '-U',
    'postgres',
    '--install-missing',
    '-d',
    'orders',
  ]);
  assert.equal(am.code, 0, `pg_amcheck clean on the restored primary: ${am.stdout}${am.stderr}`);
  await archivesNewTimeline();
}

/**
 * The restored copy serves from where it was made, never stopped and started again: the primary's data path is a
 * link to it, its postmaster is the one that replayed (its log holds the replay), lab.json names the copy's port,
 * a settings reload takes effect (a server whose data directory was moved while running would not find its
 * configuration file), and the damaged primary's log went to the quarantine with its data.
 */
async function servesFromCopy(
  runId: string,
  node: string,
  quarantine: string,
  portBefore: number,
  standbyPortBefore: number,
): Promise<void> {
  const p = labPaths(info.dir);
  // The standby too, copied from the restored copy and started where it was copied, on a port of its own.
  const standby = standbyName();
  assert.equal(readlinkSync(p.node(standby).data), `data.${runId}`, `${p.node(standby).data} links to the standby's copy`);
  const standbyData = await q<{ d: string; rec: boolean }>(
    standbyPort(),
    "SELECT current_setting('data_directory') AS d, pg_is_in_recovery() AS rec",
  );
  assert.deepEqual(standbyData[0], { d: join(p.pg, standby, `data.${runId}`), rec: true }, 'the standby runs from its copy, in recovery');
  assert.notEqual(standbyPort(), standbyPortBefore, "lab.json names the standby copy's own port");
  assert.ok(existsSync(join(quarantine, `${standby}.log`)), `the damaged standby's log is in ${quarantine}`);
  assert.match(await readFile(p.node(standby).log, 'utf8'), /started streaming WAL from primary/, "the standby's log is its copy's");
  assert.equal(readlinkSync(p.node(node).data), `data.${runId}`, `${p.node(node).data} links to the restored copy`);
  const dataDir = await q<{ d: string }>(primaryPort(), "SELECT current_setting('data_directory') AS d");
  assert.equal(dataDir[0]!.d, join(p.pg, node, `data.${runId}`), 'the primary serves from the copy, where it was restored');
  assert.notEqual(primaryPort(), portBefore, "lab.json names the copy's own port");
  assert.match(
    await readFile(p.node(node).log, 'utf8'),
    /starting point-in-time recovery to WAL location/,
    "the node's log is the copy's, replay included",
  );
  assert.ok(existsSync(join(quarantine, `${node}.log`)), `the damaged primary's log is in ${quarantine}`);
  await q(primaryPort(), "ALTER SYSTEM SET work_mem = '7MB'");
  await q(primaryPort(), 'SELECT pg_reload_conf()');
  try {
    for (const until = Date.now() + 10_000; ; ) {
      if ((await q<{ w: string }>(primaryPort(), "SELECT current_setting('work_mem') AS w"))[0]!.w === '7MB') break;
      assert.ok(Date.now() < until, 'a settings reload on the restored primary takes effect within 10 s');
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await q(primaryPort(), 'ALTER SYSTEM RESET work_mem');
    await q(primaryPort(), 'SELECT pg_reload_conf()');
  }
}

describe('live point-in-time restore of the lab', { timeout: 900_000 }, () => {
  const lab = labFixture('live-restore');
  let primaryName = '';
  before(async () => {
    // Never the working directory: a lab dir that resolved to '' would put a lab in the checkout.
    assert.match(lab.dir, /^\/.+\/lab$/, `the lab dir is the fixture's (${lab.dir})`);
    info = await labUp({ dir: lab.dir, replicas: 1 });
    primaryName = info.db.nodes[0]!.name;
    const r = await resolveBackupStore({ lab: labBlobSource(lab.dir), container: LAB_BACKUP_CONTAINER });
    if ('missing' in r) throw new Error('the lab Azurite resolved to no container');
    store = r.store;
    await ensureContainer(store);
    live = createLabLiveRestore(lab.dir, async () => info.controlUrl);
    await q(
      primaryPort(),
      'CREATE TABLE probe (id serial PRIMARY KEY, v text NOT NULL); CREATE TABLE probe_after (id serial PRIMARY KEY, v text NOT NULL)',
    );
    await q(primaryPort(), "INSERT INTO probe (v) SELECT 'before-backup-' || g FROM generate_series(1, 300) g");
    await takePhysicalBackup(db(primaryPort()), store, {});
  });

  test('preflight finds the base backup and the archive, and names a table that does not exist', { timeout: 60_000 }, async () => {
    const ok = await live.preflight({ table: 'probe', signal });
    assert.deepEqual(ok.problems, []);
    assert.ok(ok.backup?.folder, 'the base backup is found');
    assert.ok(ok.archiveLagSeconds !== null && ok.archiveLagSeconds < 120, `archive lag ${ok.archiveLagSeconds}`);
    const bad = await live.preflight({ table: 'no_such_table', signal });
    assert.match(bad.problems.join('\n'), /table no_such_table does not exist in database orders/);
  });

  test('drop-table: the table comes back with exactly the rows before the mark; the damaged cluster is quarantined', {
    timeout: 300_000,
  }, async () => {
    await q(primaryPort(), "INSERT INTO probe (v) SELECT 'before-mark-' || g FROM generate_series(1, 200) g");
    await q(primaryPort(), 'SELECT pg_switch_wal()');
    await q(primaryPort(), "INSERT INTO probe (v) SELECT 'before-mark-2-' || g FROM generate_series(1, 50) g");
    const before = await probe(primaryPort());
    assert.equal(before?.n, 550);
    const mark = await live.markRestorePoint(signal);
    const portBefore = primaryPort();
    const standbyPortBefore = standbyPort();
    await q(primaryPort(), 'DROP TABLE probe');
    await q(primaryPort(), "INSERT INTO probe_after (v) SELECT 'after-mark-' || g FROM generate_series(1, 40) g");
    await archiveNow();

    const steps: string[] = [];
    const lines: string[] = [];
    const out = await live.restoreLive({
      runId: 'run-drop',
      target: { lsn: mark.lsn, inclusive: false },
      signal,
      onStep: (s) => steps.push(s),
      log: (l) => lines.push(l),
    });
    assert.equal(out.ok, true, out.problem ?? '');
    assert.equal(out.replaced, true);
    assert.deepEqual(steps, ['download', 'replay', 'promote', 'repoint', 'standby']);
    assert.deepEqual(await probe(primaryPort()), before, 'the table back, row for row as at the mark');
    assert.equal((await probe(primaryPort(), 'probe_after'))?.n, 0, 'rows written after the mark are not in the restored database');
    assert.equal(out.quarantine, live.quarantineOf('run-drop'));
    const damaged = join(out.quarantine!, primaryName);
    assert.ok(existsSync(join(damaged, 'PG_VERSION')), `the damaged primary's data directory is in ${out.quarantine}`);
    await readQuarantined(damaged, async (port) => {
      assert.equal(await probe(port), null, 'the quarantined cluster is the damaged one: probe dropped');
      assert.equal((await probe(port, 'probe_after'))?.n, 40, 'and it holds the 40 rows written after the mark');
    });
    assert.match(lines.join('\n'), /standby n\d, copied from the restored copy and started beside it, streaming/);
    await servesFromCopy('run-drop', primaryName, out.quarantine!, portBefore, standbyPortBefore);
    await pairWhole('run-drop');
    dropMark = mark.lsn;
  });

  test('the harness died once the standby ran from its copy, before it was linked in: the restore run again links it and keeps it', {
    timeout: 120_000,
  }, async () => {
    // The state such a death leaves: the standby running from `data.<run>` on its own port, nothing at the node's
    // data path, lab.json still naming the damaged standby's port.
    const p = labPaths(info.dir);
    const standby = standbyName();
    const postmaster = readFileSync(join(p.node(standby).data, 'postmaster.pid'), 'utf8').split('\n', 1)[0];
    const copyPort = standbyPort();
    await unlink(p.node(standby).data);
    const config = labConfigNow(info.dir);
    const otherPort = await freeLoopbackPort();
    await writeFile(p.config, JSON.stringify({ ...config, nodes: { ...config.nodes, [standby]: { port: otherPort } } }));
    const lines = await restoreDropAgain();
    assert.match(lines, new RegExp(`standby ${standby}, copied from the restored copy and started beside it, streaming`));
    assert.equal(readlinkSync(p.node(standby).data), 'data.run-drop', 'linked in again');
    assert.equal(standbyPort(), copyPort, "lab.json names the copy's port again");
    assert.equal(
      readFileSync(join(p.node(standby).data, 'postmaster.pid'), 'utf8').split('\n', 1)[0],
      postmaster,
      'the same postmaster: kept, not rebuilt',
    );
    await pairWhole('run-drop');
  });

  test("the harness died while the standby's copy ran behind the serving primary: the restore run again rebuilds the standby and leaves no copy", {
    timeout: 120_000,
  }, async () => {
    // The state such a death leaves: the restored primary serving, the damaged standby in the quarantine (no data
    // directory in its place), and the copy's `.partial` beside it, with no process to finish it.
    const p = labPaths(info.dir);
    const standby = standbyName();
    await stopCluster(p.node(standby).data, 'immediate');
    await removeDataDir(p.node(standby).data);
    const partial = join(p.pg, standby, 'data.run-drop.partial');
    await mkdir(join(partial, 'base'), { recursive: true, mode: 0o700 });
    await writeFile(join(partial, 'PG_VERSION'), '15\n');
    const lines = await restoreDropAgain();
    assert.match(lines, new RegExp(`standby ${standby} copied from the running primary \\(pg_backup_start/stop\\) and streaming`));
    assert.equal(existsSync(join(p.dir, 'pitr', 'run-drop')), false, "the run's restore folder is gone");
    assert.equal(existsSync(partial), false, "the copy's .partial is gone");
    await pairWhole('run-drop');
  });

  test('delete-rows on the restored cluster (a new timeline): restored again to just before the DELETE, across the timeline switch', {
    timeout: 300_000,
  }, async () => {
    await q(primaryPort(), "INSERT INTO probe (v) SELECT 'second-round-' || g FROM generate_series(1, 120) g");
    const before = await probe(primaryPort());
    const afterBefore = await probe(primaryPort(), 'probe_after');
    const mark = await live.markRestorePoint(signal);
    const portBefore = primaryPort();
    const standbyPortBefore = standbyPort();
    assert.ok(mark.timeline >= 2, `the restored cluster runs on a new timeline (${mark.timeline})`);
    await q(primaryPort(), 'DELETE FROM probe');
    await q(primaryPort(), "INSERT INTO probe_after (v) SELECT 'after-delete-' || g FROM generate_series(1, 25) g");
    await archiveNow();
    const out = await live.restoreLive({ runId: 'run-delete', target: { lsn: mark.lsn, inclusive: false }, signal });
    assert.equal(out.ok, true, out.problem ?? '');
    assert.deepEqual(await probe(primaryPort()), before, 'every row the DELETE removed is back');
    assert.deepEqual(await probe(primaryPort(), 'probe_after'), afterBefore, 'writes after the DELETE are gone');
    await readQuarantined(join(out.quarantine!, primaryName), async (port) => {
      assert.equal((await probe(port))?.n, 0, 'the quarantined cluster is the damaged one: probe emptied');
    });
    // The damaged primary was itself a linked copy (run-drop's): that directory is what went to the quarantine.
    assert.equal(existsSync(join(labPaths(info.dir).pg, primaryName, 'data.run-drop')), false, "run-drop's copy moved, not left behind");
    await servesFromCopy('run-delete', primaryName, out.quarantine!, portBefore, standbyPortBefore);
    await pairWhole('run-delete');
  });

  test('a failover after the restores, through a database adapter made before them (one drill: data-loss, then db-failover)', {
    timeout: 300_000,
  }, async () => {
    // Made from lab up's view, where the primary still has its first port: the adapter must follow lab.json.
    const database = createLabDatabase(info);
    const topo = await database.provider.topology(signal);
    assert.equal(topo.primary?.name, primaryName, `the restored primary is found on the copy's port ${primaryPort()}`);
    const standbyName = topo.standbys[0]!.name;
    await database.crash(topo.primary!, 'kill');
    assert.equal(existsSync(join(labPaths(info.dir).node(primaryName).data, 'postmaster.pid')), true, 'killed, not stopped');
    const r = await database.provider.failover({ timeoutMs: 60_000, signal });
    assert.equal(r.newPrimary.name, standbyName);
    const how = await database.provider.rejoin(topo.primary!, { timeoutMs: 120_000, signal });
    const after = await database.provider.topology(signal);
    assert.equal(after.primary?.name, standbyName);
    const old = after.standbys.find((x) => x.name === primaryName);
    assert.equal(old?.replication.streaming, true, `the restored copy rejoined as a standby: ${how}`);
    // Rewound where it is linked, or (pg_rewind refused) copied afresh with the linked copy removed: no orphan either way.
    const data = labPaths(info.dir).node(primaryName).data;
    const linked = lstatSync(data).isSymbolicLink() ? readlinkSync(data) : null;
    const beside = readdirSync(dirname(data)).filter((d) => d.startsWith('data.') && d !== linked);
    assert.deepEqual(beside, [], `nothing left beside ${data} (${how})`);
  });
});
