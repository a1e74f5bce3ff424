/**
 * The secondary region's database, restored from the secondary account's copy of the base backups and archived
 * WAL (what the replicator copied there), as a runbook restores in the paired region after losing the primary's:
 * nothing of the primary region is read, its storage account included. The newest complete base backup there is
 * replayed through every archived segment (recovery target latest), promoted, and left serving on a loopback port;
 * db.json (contract.ts) says where.
 *
 * Everything that can refuse the restore is checked before anything starts: no backup, or a hole in the WAL
 * between the backup's first segment and the newest archived one, is an answer naming the blobs, with nothing
 * started. Every call decides from what it finds: a database already restored is returned (started again if it
 * was stopped: it may have taken writes since), a restore a killed harness left half-done is stopped and redone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { isRunning, startCluster, stopCluster, waitReady, writeNodeConf } from '../../adapters/postgres/cluster.ts';
import { type CatalogEntry, readCatalog } from '../../adapters/postgres/backup/catalog.ts';
import { RESTORED_MARKER, type RestoredMarker, readArchive, restoreToPoint } from '../../adapters/postgres/backup/pitr.ts';
import { backupStoreFromEnv, type BackupStore } from '../../adapters/postgres/backup/store.ts';
import { MANIFEST_FILE, walFolder } from '../../backup/naming.ts';
import { backupOnPath, planWal } from '../../backup/wal-gaps.ts';
import { parseSegmentName } from '../../backup/wal-names.ts';
import { LAB_BACKUP_CONTAINER } from '../azurite.ts';
import { freeStablePort, portIsFree } from '../ports.ts';
import { readSecondaryDb, regionPaths, type SecondaryDb, writeSecondaryDb } from './contract.ts';
import { labSecondaryBlobEnv, SECONDARY_ACCOUNT } from './secondary.ts';

export type SecondaryRestoreStep = 'download' | 'replay' | 'promote';

export interface SecondaryRestoreOutcome {
  ok: boolean;
  /** What went wrong, what was not touched, what to do next; null when ok. */
  problem: string | null;
  /** The blobs the restore needed and the secondary's copy lacks, as `container/name`, oldest first. */
  missing: string[];
  db: SecondaryDb | null;
  backupFolder: string | null;
  reachedLsn: string | null;
  /**
   * Download runs beside replay (replay starts once the base backup is in), so the steps overlap. Absent when the
   * step did not run (a database already restored is returned without any).
   */
  timings: { downloadMs?: number; replayMs?: number; promoteMs?: number };
}

export interface SecondaryRestoreOptions {
  signal: AbortSignal;
  /** Called as each step ends, with its duration. */
  onStep?: (step: SecondaryRestoreStep, ms: number) => void;
  log?: (line: string) => void;
}

/** The run id the restored copy's marker carries: one secondary database per lab. */
const RESTORE_ID = 'secondary-region';

export function secondaryPgPaths(labDir: string) {
  const root = regionPaths(labDir).secondaryPg;
  return {
    root,
    dataDir: join(root, 'data'),
    logFile: join(root, 'postgres.log'),
    /** Beside the restore's folder, not in it: the restore empties its folder first. */
    socketDir: join(regionPaths(labDir).secondaryDir, 'sock'),
  };
}

/** Why the restore stopped before it was done: the caller reads `problem` and `missing`. */
class Refusal extends Error {
  constructor(
    message: string,
    readonly missing: string[] = [],
  ) {
    super(message);
  }
}

export async function restoreSecondaryDb(labDir: string, o: SecondaryRestoreOptions): Promise<SecondaryRestoreOutcome> {
  const say = o.log ?? (() => {});
  const out: SecondaryRestoreOutcome = {
    ok: false,
    problem: null,
    missing: [],
    db: null,
    backupFolder: null,
    reachedLsn: null,
    timings: {},
  };
  const p = secondaryPgPaths(labDir);
  let startedHere = false;
  try {
    if (o.signal.aborted) throw new Refusal(`the restore in the secondary region was cut short before it began: nothing was started`);
    const found = await existingRestore(labDir);
    if (found.state === 'serving' || found.state === 'stopped') {
      let db = found.db;
      if (found.state === 'stopped') {
        // Restored and promoted before: it may have taken writes in the secondary since, so it is started, never restored again.
        startedHere = true;
        db = await startRestored(labDir, db);
        say(`the secondary database restored at ${db.restoredAt} was not running: started again on port ${db.port}`);
      } else say(`the secondary database restored at ${db.restoredAt} already serves on port ${db.port}: nothing to do`);
      Object.assign(out, { ok: true, db, backupFolder: db.backupFolder, reachedLsn: db.reachedLsn });
      return out;
    }
    if (found.state === 'half-done') {
      // Left by a call that did not finish (a killed harness): whatever runs of it stops, and the restore starts over.
      if (await isRunning(p.dataDir)) await stopCluster(p.dataDir, 'immediate', { timeoutMs: 30_000 });
      await rm(regionPaths(labDir).secondaryDb, { force: true });
      say(`a restore left half-done in ${p.root} (${found.why}) was stopped: restoring again`);
    }

    const blob = await labSecondaryBlobEnv(labDir);
    if (!blob)
      throw new Refusal(
        `the secondary account ${SECONDARY_ACCOUNT} does not answer (its Azurite in ${regionPaths(labDir).secondaryDir} is not running): nothing was started; \`drill lab status\` says what runs`,
      );
    const store = backupStoreFromEnv(LAB_BACKUP_CONTAINER, undefined, blob.env);
    const chosen = await chooseRestore(store, say);
    const m = chosen.entry.manifest!;
    out.backupFolder = chosen.entry.folder;
    say(
      `secondary account ${SECONDARY_ACCOUNT}: base backup ${chosen.entry.folder} (${(m.blob.bytes / 1e6).toFixed(1)} MB) and ${chosen.segments} WAL segment(s) up to ${chosen.last}, no hole`,
    );
    o.signal.throwIfAborted();

    startedHere = true;
    // Outside the ephemeral range: nothing takes it while the database is stopped and started again.
    const port = await freeStablePort();
    const r = await restoreToPoint({
      store,
      manifest: m,
      folder: chosen.entry.folder,
      target: 'latest',
      // The secondary knows the cluster only from its manifest; the restore still checks the copy's pg_control against it.
      systemId: m.cluster.systemIdentifier,
      root: p.root,
      port,
      socketDir: p.socketDir,
      database: m.database,
      runId: RESTORE_ID,
      signal: o.signal,
      keepRunning: true,
      // The copy serves the region at once: pg_amcheck of a whole cluster would add minutes to the RTO at 10 GB.
      amcheck: false,
      onStep: (step, ms) => stepDone(step, ms, p.logFile, out, o.onStep),
      log: say,
    });
    if (!r.ok || !r.marker)
      throw new Refusal(
        `the restore of ${chosen.entry.folder} in the secondary region failed: ${r.problem ?? 'it did not complete'}; nothing of it is left running, and the next call starts it over`,
        r.missingSegments.map((s) => blobName(store, m.cluster.name, s)),
      );
    if (o.signal.aborted) throw new Refusal('cut short');
    const timeline = await currentTimeline(port);
    const db: SecondaryDb = {
      port,
      dataDir: p.dataDir,
      logFile: p.logFile,
      restoredAt: r.marker.restoredAt,
      backupFolder: chosen.entry.folder,
      reachedLsn: r.marker.reachedLsn ?? '0/0',
      timeline: timeline ?? r.marker.timeline ?? 0,
    };
    // Written last: its presence says the database is restored, promoted and serving.
    await writeSecondaryDb(labDir, db);
    Object.assign(out, { ok: true, db, reachedLsn: db.reachedLsn });
    say(`secondary database restored to ${db.reachedLsn}, timeline ${db.timeline}, serving on 127.0.0.1:${port}`);
  } catch (e) {
    const aborted = o.signal.aborted;
    if (startedHere && (await isRunning(p.dataDir)))
      await stopCluster(p.dataDir, 'immediate', { timeoutMs: 30_000 }).catch(() => undefined);
    if (aborted)
      out.problem = `the restore in the secondary region was cut short (${String(o.signal.reason ?? 'aborted')})${
        startedHere ? `: the database it started in ${p.dataDir} was stopped, and the next restore starts it over` : ': nothing was started'
      }`;
    else if (e instanceof Refusal) {
      out.problem = e.message;
      out.missing = e.missing;
    } else out.problem = `the restore in the secondary region failed: ${(e as Error).message}`;
    out.ok = false;
    out.db = null;
  }
  return out;
}

/** Stops the secondary's database in whatever state it is (restored, or left half-done without db.json); returns whether it ran. */
export async function stopSecondaryRestore(labDir: string): Promise<boolean> {
  const { dataDir } = secondaryPgPaths(labDir);
  if (!(await isRunning(dataDir))) return false;
  await stopCluster(dataDir, 'fast', { timeoutMs: 60_000 });
  return true;
}

type Found = { state: 'none' } | { state: 'serving' | 'stopped'; db: SecondaryDb } | { state: 'half-done'; why: string };

/** What a previous call left: db.json plus the marker of a promoted copy is a finished restore; anything else of it, half-done. */
async function existingRestore(labDir: string): Promise<Found> {
  const p = secondaryPgPaths(labDir);
  const db = await readSecondaryDb(labDir).catch(() => null);
  const marker = await readMarker(p.dataDir);
  if (db && marker && marker.backupFolder === db.backupFolder && db.dataDir === p.dataDir) {
    if (!(await isRunning(p.dataDir))) return { state: 'stopped', db };
    // A server just started (or busy) gets a few seconds: restoring one that took writes again would lose them.
    const conn = { host: '127.0.0.1', port: db.port, user: 'postgres', database: 'postgres' };
    const inRecovery = await waitReady(conn, { timeoutMs: 10_000 })
      .then(() => withDb(db.port, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r))
      .catch(() => null);
    if (inRecovery === false) return { state: 'serving', db };
    return { state: 'half-done', why: inRecovery === null ? `its server on port ${db.port} does not answer` : 'it is still in recovery' };
  }
  if (db)
    return {
      state: 'half-done',
      why: marker ? 'db.json names another backup than the data directory holds' : 'the data directory was never promoted',
    };
  if (existsSync(p.dataDir) || (await isRunning(p.dataDir))) return { state: 'half-done', why: 'no db.json: it was never finished' };
  return { state: 'none' };
}

async function readMarker(dataDir: string): Promise<RestoredMarker | null> {
  const text = await readFile(join(dataDir, RESTORED_MARKER), 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const m = JSON.parse(text) as RestoredMarker;
    return m.runId === RESTORE_ID ? m : null;
  } catch {
    return null;
  }
}

/** A restored, promoted copy that is not running: started on its port (another when that one is taken meanwhile). */
async function startRestored(labDir: string, db: SecondaryDb): Promise<SecondaryDb> {
  const p = secondaryPgPaths(labDir);
  const port = (await portIsFree(db.port)) ? db.port : await freeStablePort();
  await writeNodeConf(p.dataDir, { port, socketDir: p.socketDir });
  await startCluster(p.dataDir, { logFile: p.logFile, timeoutMs: 300_000 });
  await waitReady({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' }, { timeoutMs: 60_000 });
  const next = { ...db, port };
  if (port !== db.port) await writeSecondaryDb(labDir, next);
  return next;
}

/** The base backup and the WAL plan, checked: every refusal here comes before anything is started. */
async function chooseRestore(
  store: BackupStore,
  say: (line: string) => void,
): Promise<{ entry: CatalogEntry; segments: number; last: string }> {
  const container = store.container.containerName;
  const entries = await readCatalog(store, { kind: 'physical' }).catch((e: Error) => {
    throw new Refusal(`the secondary account's backups cannot be listed: ${e.message}; nothing was started`);
  });
  const pick = pickNewestBackup(entries);
  for (const s of pick.skipped) say(`skipping ${container}/${s.folder}: ${s.problem}`);
  if ('problem' in pick)
    throw new Refusal(
      `${pick.problem}; nothing was started`,
      pick.missing.map((n) => `${container}/${n}`),
    );
  const cluster = pick.entry.cluster;
  const archive = await readArchive(store, cluster);
  // The newest backup on the history of the timeline replay follows (one taken on a branch a later restore abandoned is not).
  const onPath = entries.filter(
    (e) =>
      e.cluster === cluster &&
      e.manifest &&
      !e.problem &&
      backupOnPath(Math.max(archive.timeline, e.manifest.cluster.timeline), archive.histories, {
        timeline: e.manifest.cluster.timeline,
        endLsn: e.manifest.lsn.end,
      }),
  );
  const entry = onPath[onPath.length - 1];
  if (!entry)
    throw new Refusal(
      `no base backup of cluster ${cluster} in ${SECONDARY_ACCOUNT}/${container} lies on the history of timeline ${archive.timeline}, the newest in its WAL archive: nothing was started`,
    );
  if (entry !== pick.entry) say(`${pick.entry.folder} lies on a timeline replay does not follow: ${entry.folder} instead`);
  const m = entry.manifest!;
  if (!m.walStartSegment)
    throw new Refusal(`the manifest of ${container}/${entry.folder} names no first WAL segment: it cannot be replayed`);
  const timeline = Math.max(archive.timeline, parseSegmentName(m.walStartSegment)?.timeline ?? 1);
  const plan = planWal({
    startSegment: m.walStartSegment,
    timeline,
    target: 'latest',
    archived: archive.archived,
    histories: archive.histories,
  });
  const gap = describeGap({
    container,
    walFolder: walFolder(store.prefix, cluster),
    startSegment: m.walStartSegment,
    last: plan.last,
    missing: plan.missing,
    missingHistory: plan.missingHistory,
  });
  if (gap) throw new Refusal(`${gap.problem}: nothing was started`, gap.missing);
  if (plan.needed.length === 0)
    throw new Refusal(
      `the secondary's copy of the WAL archive (${container}/${walFolder(store.prefix, cluster)}) holds no segment from the backup's first, ${m.walStartSegment}: the backup cannot be made consistent; nothing was started`,
      [`${container}/${walFolder(store.prefix, cluster)}${m.walStartSegment}`],
    );
  return { entry, segments: plan.needed.length, last: plan.last! };
}

/**
 * The newest base backup that can be restored. A newer folder without a manifest is skipped (a backup still being
 * taken, or whose manifest the replicator has not copied yet: it is written last); one whose manifest names a data
 * blob the container lacks is a refusal naming it, not a silent step back to an older backup.
 */
export function pickNewestBackup(
  entries: readonly CatalogEntry[],
): ({ entry: CatalogEntry } | { problem: string; missing: string[] }) & { skipped: { folder: string; problem: string }[] } {
  const skipped: { folder: string; problem: string }[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.kind !== 'physical') continue;
    if (!e.manifest) {
      skipped.push({ folder: e.folder, problem: e.problem ?? `${MANIFEST_FILE} is missing` });
      continue;
    }
    if (e.problem) {
      const absent = e.blobs.some((b) => b.name === e.manifest!.blob.name) ? [] : [e.manifest.blob.name];
      return {
        problem: `the newest base backup in the secondary account, ${e.folder}, cannot be restored: ${e.problem}`,
        missing: absent,
        skipped,
      };
    }
    return { entry: e, skipped };
  }
  return {
    problem: `the secondary account holds no complete physical base backup${skipped.length ? ` (${skipped.length} folder(s) without a manifest)` : ''}: has a base backup been taken and replicated?`,
    missing: [],
    skipped,
  };
}

/**
 * The hole in the WAL between the backup's first segment and the newest archived one, in words naming the blobs
 * (`container/name`) and each run of missing segments by its first and last; null when there is none.
 */
export function describeGap(g: {
  container: string;
  walFolder: string;
  startSegment: string;
  last: string | null;
  missing: readonly string[];
  missingHistory: string | null;
}): { problem: string; missing: string[] } | null {
  const at = (name: string) => `${g.container}/${g.walFolder}${name}`;
  if (g.missingHistory)
    return {
      problem: `the secondary's copy of the WAL archive lacks ${at(g.missingHistory)}: the timeline's history cannot be followed from the backup's ${g.startSegment}`,
      missing: [at(g.missingHistory)],
    };
  if (g.missing.length === 0) return null;
  const runs = segmentRuns(g.missing);
  const words = runs.map((r) => (r.first === r.last ? at(r.first) : `${at(r.first)} .. ${r.last} (${r.count} segments)`));
  return {
    problem: `the secondary's copy of the WAL archive has a hole: ${words.join('; ')} missing between the backup's first segment ${g.startSegment} and the newest archived ${g.last}, so no restore can pass it`,
    missing: g.missing.map(at),
  };
}

/** Consecutive segments (by number, on any timeline) as runs: what "the gap" is to a person. */
export function segmentRuns(names: readonly string[]): { first: string; last: string; count: number }[] {
  const runs: { first: string; last: string; count: number; segno: bigint }[] = [];
  for (const n of names) {
    const s = parseSegmentName(n);
    const prev = runs[runs.length - 1];
    if (s && prev && s.segno === prev.segno + 1n) {
      prev.last = n;
      prev.count++;
      prev.segno = s.segno;
    } else runs.push({ first: n, last: n, count: 1, segno: s?.segno ?? -1n });
  }
  return runs.map(({ first, last, count }) => ({ first, last, count }));
}

const blobName = (store: BackupStore, cluster: string, segment: string) =>
  `${store.container.containerName}/${walFolder(store.prefix, cluster)}${segment}`;

/**
 * The restore's steps as they end. With target latest PostgreSQL ends recovery itself, so what the restore times as
 * replay holds the end of recovery too (new timeline, end-of-recovery checkpoint); the server's log splits the two.
 */
function stepDone(
  step: SecondaryRestoreStep,
  ms: number,
  logFile: string,
  out: SecondaryRestoreOutcome,
  onStep: SecondaryRestoreOptions['onStep'],
): void {
  let d = ms;
  if (step === 'replay') {
    const log = (() => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    })();
    const end = endOfRecoveryMs(log);
    if (end !== null && end <= ms) {
      d = ms - end;
      out.timings.promoteMs = end;
    }
    out.timings.replayMs = d;
  } else if (step === 'promote') {
    d = (out.timings.promoteMs ?? 0) + ms;
    out.timings.promoteMs = d;
  } else out.timings.downloadMs = d;
  onStep?.(step, d);
}

/**
 * From PostgreSQL's log (log_line_prefix starting with %m): the time from "redo done" to "ready to accept
 * connections", i.e. the end of recovery (new timeline, end-of-recovery checkpoint); null when the log does not say.
 */
export function endOfRecoveryMs(log: string): number | null {
  const stamp = (line: string) => {
    const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)/.exec(line);
    return m ? Date.parse(`${m[1]}T${m[2]}Z`) : Number.NaN;
  };
  const lines = log.split('\n');
  let redo = -1;
  for (let i = lines.length - 1; i >= 0; i--)
    if (/LOG: {2}redo done at /.test(lines[i]!)) {
      redo = i;
      break;
    }
  if (redo < 0) return null;
  const ready = lines.slice(redo).find((l) => /database system is ready to accept connections/.test(l));
  if (!ready) return null;
  const ms = stamp(ready) - stamp(lines[redo]!);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

async function withDb<T>(port: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The timeline the promoted copy writes on, from its current WAL file's name. */
async function currentTimeline(port: number): Promise<number | null> {
  return withDb(port, async (c) => {
    const r = await c.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
    return Number.parseInt(r.rows[0]!.f.slice(0, 8), 16);
  }).catch(() => null);
}
