/**
 * The lab's continuous WAL archiver, a child the daemon keeps running (archiver-supervisor.ts):
 * `node --import tsx/esm lib/lab/daemon/wal-archiver.ts --lab DIR --db-port N`.
 *
 * It streams from the lab's database endpoint, which follows the primary across a failover, and ships
 * into the lab's Azurite (container lab-backups), whose address it reads from azurite.json: the key never
 * passes through its environment or argv. Once archiving runs it takes the lab's base backup, if the
 * archive has none yet, so a fresh lab can be restored to any point from then on, and a new one each time the
 * newest is older than lab.json's baseBackupEveryMs (default daily), or at once when the archive has a hole
 * found after the newest (no restore from it can cross the hole).
 *
 * It exits (and is restarted) when Azurite moved to another port or lab.json's archive lag or base backup
 * interval changed.
 */
import { setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { backupStoreFromEnv, readCatalog, takePhysicalBackup, type BackupStore } from '../../adapters/postgres/backup/index.ts';
import { runWalShipper } from '../../adapters/postgres/backup/wal-shipper.ts';
import { ARCHIVE_SLOT } from '../../adapters/postgres/backup/wal.ts';
import { readJsonFile, readWalArchiveState } from '../../adapters/postgres/backup/wal-state.ts';
import { MANIFEST_FILE } from '../../backup/naming.ts';
import { LAB_BACKUP_CONTAINER, labAzuriteStatus } from '../azurite.ts';
import { labPaths } from '../paths.ts';
import { LAB_DB } from '../postgres/status.ts';
import { readConfig } from '../state.ts';

import { DEFAULT_ARCHIVE_LAG_MS, DEFAULT_BASE_BACKUP_EVERY_MS, baseBackupCheckEveryMs, baseBackupDue, holeAfter } from '../archive.ts';

const { values } = parseArgs({ options: { lab: { type: 'string' }, 'db-port': { type: 'string' } } });
if (!values.lab || !values['db-port']) throw new Error('--lab DIR and --db-port N are required');
const paths = labPaths(values.lab);
const dbPort = Number(values['db-port']);
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} wal-archiver ${line}\n`);

/** What lab.json sets: the archive's lag and how often a base backup is taken. */
async function settings(): Promise<{ lagMs: number; everyMs: number }> {
  const c = await readConfig(paths.config).catch(() => null);
  return { lagMs: c?.archiveLagMs ?? DEFAULT_ARCHIVE_LAG_MS, everyMs: c?.baseBackupEveryMs ?? DEFAULT_BASE_BACKUP_EVERY_MS };
}

/** The lab's Azurite, once it answers (lab up starts it beside the daemon). */
async function labStore(): Promise<{ store: BackupStore; port: number }> {
  for (;;) {
    const a = await labAzuriteStatus(paths.dir);
    if (a.up && a.azurite) {
      const store = backupStoreFromEnv(LAB_BACKUP_CONTAINER, '', { AZURE_STORAGE_CONNECTION_STRING: a.azurite.connectionString });
      return { store, port: a.azurite.port };
    }
    await sleep(200);
  }
}

const ac = new AbortController();
process.on('SIGTERM', () => ac.abort());
process.on('SIGINT', () => ac.abort());
process.on('SIGHUP', () => log('SIGHUP ignored'));

const { lagMs, everyMs } = await settings();
const { store, port: azuritePort } = await labStore();
const src = { host: '127.0.0.1', port: dbPort, user: LAB_DB.superuser, database: LAB_DB.database };
log(`archiving WAL from 127.0.0.1:${dbPort} into ${LAB_BACKUP_CONTAINER} on Azurite port ${azuritePort}, archive lag at most ${lagMs} ms`);

let baseBackupTaken: { folder: string; at: string } | null = null;
let baseBackupRunning: Promise<void> | null = null;
let streamedCluster: string | null = null;
/** The newest hole this archiver found (the state file holds the earlier ones). */
let holeFoundAt: string | null = null;

/** Until the shipper's pg_receivewal holds the slot: a base backup then leaves the WAL it needs to the shipper. */
async function slotHeld(): Promise<void> {
  for (const until = Date.now() + 60_000; Date.now() < until && !ac.signal.aborted; await sleep(100)) {
    const c = new pg.Client({ ...src, connectionTimeoutMillis: 2000 });
    c.on('error', () => {});
    try {
      await c.connect();
      const r = await c.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [
        ARCHIVE_SLOT,
      ]);
      if (r.rows[0]?.pid != null) return;
    } catch {
      // Not up yet, or the endpoint is between primaries: asked again.
    } finally {
      await c.end().catch(() => {});
    }
  }
  throw new Error(`slot ${ARCHIVE_SLOT} was not taken by the archiver's pg_receivewal within 60 s`);
}

/**
 * A base backup that did not finish leaves its data blob without a manifest once the upload was committed, and the
 * live restore refuses a newest backup without one. The archiver names the folder in a file before uploading, so
 * the next archiver removes what an archiver killed mid-backup left; a folder with a manifest is never touched.
 */
async function removeUnfinished(folder: string): Promise<void> {
  const names: string[] = [];
  for await (const b of store.container.listBlobsFlat({ prefix: folder })) names.push(b.name);
  if (names.some((n) => n === folder + MANIFEST_FILE)) return;
  for (const n of names) await store.container.deleteBlob(n, { deleteSnapshots: 'include' }).catch(() => undefined);
  if (names.length > 0) log(`removed the unfinished base backup ${folder} (${names.length} blob(s), no manifest)`);
}

async function removeLeftOverBackup(): Promise<void> {
  const pending = await readJsonFile<{ folder: string }>(paths.walArchive.pendingBaseBackup);
  if (pending?.folder) await removeUnfinished(pending.folder);
  await rm(paths.walArchive.pendingBaseBackup, { force: true });
}

/**
 * The lab's base backup when the archive has none of this cluster newer than the interval: as soon as archiving
 * runs on a fresh lab, then daily (the organisation's schedule), so a restore replays a day of WAL at most.
 */
async function takeBaseBackupIfDue(cluster: string): Promise<void> {
  const existing = (await readCatalog(store, { kind: 'physical', cluster })).filter((e) => e.manifest !== null && e.problem === null);
  const newest = existing.at(-1);
  const newestEndedAt = newest?.manifest ? newest.manifest.endedAt : null;
  if (newest && newestEndedAt) baseBackupTaken = { folder: newest.folder, at: newestEndedAt };
  const holes = (await readWalArchiveState(paths.walArchive.state))?.holes ?? [];
  const lastHoleFoundAt = [...holes.map((h) => h.foundAt), ...(holeFoundAt ? [holeFoundAt] : [])].sort().at(-1) ?? null;
  if (!baseBackupDue(newestEndedAt, Date.now(), everyMs, lastHoleFoundAt)) return;
  if (lastHoleFoundAt && newestEndedAt && holeAfter(lastHoleFoundAt, newestEndedAt))
    log(`taking a base backup now: the archive has a hole found at ${lastHoleFoundAt}, after the newest base backup ended`);
  await slotHeld();
  const t0 = performance.now();
  let folder: string | null = null;
  try {
    const taken = await takePhysicalBackup(src, store, {
      cluster,
      signal: ac.signal,
      onFolder: async (f) => {
        folder = f;
        await mkdir(dirname(paths.walArchive.pendingBaseBackup), { recursive: true });
        await writeFile(paths.walArchive.pendingBaseBackup, `${JSON.stringify({ folder: f })}\n`);
      },
    });
    log(`base backup ${taken.folder} taken in ${Math.round(performance.now() - t0)} ms`);
    baseBackupTaken = { folder: taken.folder, at: taken.manifest.endedAt };
  } catch (e) {
    if (folder) await removeUnfinished(folder).catch(() => undefined);
    throw e;
  } finally {
    await rm(paths.walArchive.pendingBaseBackup, { force: true });
  }
}

/**
 * Started at low priority so its start-up (Node, pg, the storage SDK) kept off the lab's cores; once it streams,
 * the first base backup is on lab up's path and the archive must keep up under load.
 */
function raisePriority(): void {
  try {
    setPriority(0);
  } catch {
    // Raising priority back needs root; a lab run as a user keeps archiving at a lower priority.
  }
}

/** One base backup at a time; a failed one is tried again at the next check. */
function baseBackupIfDue(): void {
  if (baseBackupRunning || streamedCluster === null || ac.signal.aborted) return;
  baseBackupRunning = takeBaseBackupIfDue(streamedCluster)
    .catch((err: Error) => {
      log(`base backup failed: ${err.message}`);
    })
    .finally(() => {
      baseBackupRunning = null;
    });
}

await removeLeftOverBackup().catch((e: Error) => log(`could not remove a base backup left unfinished: ${e.message}`));
const baseBackupTimer = setInterval(baseBackupIfDue, baseBackupCheckEveryMs(everyMs));

// Restarted (by the daemon) when what it was started with changed.
const watch = setInterval(() => {
  void (async () => {
    const a = await labAzuriteStatus(paths.dir);
    const now = await settings();
    if ((a.up && a.azurite && a.azurite.port !== azuritePort) || now.lagMs !== lagMs || now.everyMs !== everyMs) {
      log('Azurite, the archive lag or the base backup interval changed: stopping to be restarted with the new settings');
      ac.abort();
    }
  })();
}, 2000);

await runWalShipper(
  {
    src,
    store,
    spoolDir: paths.walArchive.spool,
    stateFile: paths.walArchive.state,
    archiveLagMs: lagMs,
    firstConnect: 'retry',
    onEvent: (e) => {
      if (e.type === 'uploaded') log(`uploaded ${e.file} (${e.bytes} bytes, ${Math.round(e.ms)} ms)`);
      else if (e.type === 'connected') {
        log(`streaming from ${e.endpoint}, cluster ${e.cluster}, timeline ${e.timeline}`);
        if (streamedCluster === null) raisePriority();
        streamedCluster = e.cluster;
        baseBackupIfDue();
      } else if (e.type === 'disconnected') log(`disconnected: ${e.detail}`);
      else if (e.type === 'hole') {
        log(`HOLE: ${e.hole.detail}`);
        holeFoundAt = e.hole.foundAt;
        baseBackupIfDue();
      } else if (e.type === 'lag') log(`lag ${e.lagMs} ms, archived through ${e.archivedThrough ?? 'nothing yet'}`);
    },
    baseBackup: () => baseBackupTaken,
  },
  ac.signal,
);
clearInterval(watch);
clearInterval(baseBackupTimer);
await baseBackupRunning;
log('stopped');
process.exit(0);
