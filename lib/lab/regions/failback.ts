/**
 * Failback: after a region loss the secondary serves; this rebuilds the primary region from it and switches the
 * global front back, as a runbook does once the primary region is healthy again.
 *
 *   storage         the primary's Azurite started; every container the lab writes mirrored from the secondary's
 *                   account (copied where the primary lacks a blob or holds another version; primary-only blobs
 *                   removed: the account holds what the secondary held, as after an account failover back)
 *   stop-secondary  the secondary stops taking writes: its compute (replicas drain, its shipper ships their last
 *                   lines), then its database (fast shutdown: a clean checkpoint). Users are not served from here
 *   (storage again) what the secondary wrote since the first pass
 *   wal             the WAL the secondary wrote (its timeline's history and every complete segment) shipped into
 *                   the primary's archive, and the archiver's state set to continue from it: no hole on the way
 *   database        the primary's own data moved aside (quarantine/failback-<time>, for forensics) and the
 *                   secondary's data directory moved into the primary node's place; the standby is rebuilt from it
 *   start           the primary region's compute and database started (labUp, rebuildPrimary)
 *   switch          the global front sent back to the primary, as soon as its replicas serve
 *
 * On one machine the data directory is moved; across regions it would be copied (pg_basebackup from the secondary,
 * then a switchover). Every step is idempotent: a call cut short is finished by the next one (`failback.json`
 * records that the data was moved, so a second call goes straight to starting the primary).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FailbackResult, FailbackStep } from '../../adapters/types.ts';
import { blobServiceFromEnv, copyBlobVerified, listForReplication, type ReplicaListing } from '../../adapters/blob/index.ts';
import { runServerBinary, stopCluster, writeNodeConf, isRunning, giveToServerUser } from '../../adapters/postgres/cluster.ts';
import { clearRecoverySettings, controlSystemId } from '../../adapters/postgres/backup/pitr.ts';
import { backupStoreFromEnv } from '../../adapters/postgres/backup/store.ts';
import { readWalArchiveState, type WalArchiveState } from '../../adapters/postgres/backup/wal-state.ts';
import { walFolder } from '../../backup/naming.ts';
import { formatLsn, HISTORY_FILE, parseSegmentName, segmentEnd, segmentName } from '../../backup/wal-names.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { LAB_BACKUP_CONTAINER, labBlobEnv, startLabAzurite } from '../azurite.ts';
import { labUp } from '../lifecycle.ts';
import { labPaths } from '../paths.ts';
import { LAB_DB } from '../postgres/status.ts';
import { readConfig, readJson } from '../state.ts';
import { collectFacts } from '../status.ts';
import { readSecondaryDb, regionPaths } from './contract.ts';
import { switchGlobalFront } from './global-front.ts';
import { stopSecondaryCompute } from './secondary-compute.ts';
import { secondaryPgPaths } from './secondary-restore.ts';
import { labSecondaryBlobEnv, REPLICATED_CONTAINERS } from './secondary.ts';

/** Written once the secondary's data is in the primary's place: a later call starts the primary instead of moving again. */
interface FailbackMarker {
  movedAt: string;
  quarantine: string | null;
  walShipped: string[];
}

export interface FailbackOptions {
  signal: AbortSignal;
  onStep?: (step: FailbackStep, ms: number) => void;
  onWritesStopped?: () => void;
  log?: (line: string) => void;
}

/** What a mirror pass does to one container: pure, so the rule is tested on its own. */
export function planMirror(
  secondary: readonly ReplicaListing[],
  primary: readonly ReplicaListing[],
): { copy: ReplicaListing[]; remove: string[] } {
  const inPrimary = new Map(primary.map((b) => [b.name, b]));
  const names = new Set(secondary.map((b) => b.name));
  const copy = secondary.filter((s) => {
    const p = inPrimary.get(s.name);
    // The same version on both sides: the secondary's is a copy of the primary's (replicated before the loss), or
    // the primary's is a copy of the secondary's (an earlier pass of this mirror).
    return !p || !(s.sourceEtag === p.etag || p.sourceEtag === s.etag);
  });
  return { copy, remove: primary.filter((p) => !names.has(p.name)).map((p) => p.name) };
}

const failbackMarkerPath = (labDir: string) => join(regionPaths(labDir).secondaryDir, 'failback.json');

/** A failback moved the secondary's data into the primary's place and has not switched back yet. */
export const failbackUnderway = (labDir: string) => existsSync(failbackMarkerPath(labDir));

async function mirrorStorage(labDir: string, signal: AbortSignal): Promise<FailbackResult['mirrored']> {
  const [from, to] = await Promise.all([labSecondaryBlobEnv(labDir), labBlobEnv(labDir)]);
  if (!from) throw new Error(`the secondary region's Azurite in ${labDir} does not answer: there is nothing to fail back from`);
  if (!to) throw new Error(`the primary region's Azurite in ${labDir} does not answer after its start`);
  const src = blobServiceFromEnv(from.env);
  const dst = blobServiceFromEnv(to.env);
  const out: FailbackResult['mirrored'] = [];
  for (const name of REPLICATED_CONTAINERS) {
    signal.throwIfAborted();
    const s = src.getContainerClient(name);
    const d = dst.getContainerClient(name);
    await d.createIfNotExists();
    const plan = planMirror(await listForReplication(s), await listForReplication(d));
    for (const b of plan.copy) {
      signal.throwIfAborted();
      await copyBlobVerified(s, d, b);
    }
    for (const n of plan.remove) await d.deleteBlob(n, { deleteSnapshots: 'include' }).catch(() => undefined);
    out.push({ container: name, copied: plan.copy.length, removed: plan.remove.length });
  }
  return out;
}

/** The WAL file a clean shutdown's checkpoint starts from: every segment before it is complete. */
async function redoWalFile(dataDir: string): Promise<string> {
  const r = await runServerBinary('pg_controldata', ['-D', dataDir], 15_000);
  const f = /Latest checkpoint's REDO WAL file:\s+([0-9A-F]{24})/.exec(r.stdout)?.[1];
  if (!f) throw new Error(`pg_controldata of ${dataDir} names no REDO WAL file: ${r.stderr.trim() || r.stdout.slice(0, 200)}`);
  return f;
}

/**
 * Ships the secondary's own WAL (its timeline's history files and every complete segment before the shutdown
 * checkpoint's) into the primary's archive, and sets the archiver's state to continue from the newest: the primary's
 * archiver then streams the next segment on from the failed-back database, and the archive has no hole.
 */
async function shipSecondaryWal(labDir: string, dataDir: string, say: (l: string) => void): Promise<string[]> {
  const blob = await labBlobEnv(labDir);
  if (!blob) throw new Error(`the primary region's Azurite in ${labDir} does not answer: the secondary's WAL cannot be archived`);
  const cluster = await controlSystemId(dataDir);
  if (!cluster) throw new Error(`${dataDir} has no pg_control: it is not the secondary's database`);
  const store = backupStoreFromEnv(LAB_BACKUP_CONTAINER, '', blob.env);
  const folder = walFolder(store.prefix, cluster);
  const redo = await redoWalFile(dataDir);
  const redoId = parseSegmentName(redo)!;
  const walDir = join(dataDir, 'pg_wal');
  const files = (await readdir(walDir)).filter((f) => {
    if (HISTORY_FILE.test(f)) return true;
    const id = parseSegmentName(f);
    return id !== null && id.timeline === redoId.timeline && id.segno < redoId.segno;
  });
  files.sort();
  const present = new Set<string>();
  for await (const b of store.container.listBlobsFlat({ prefix: folder })) present.add(b.name.slice(folder.length));
  const shipped: string[] = [];
  for (const f of files) {
    if (present.has(f)) continue;
    await store.container.getBlockBlobClient(folder + f).uploadFile(join(walDir, f), { metadata: { wal_segment: f } });
    shipped.push(f);
  }
  const p = labPaths(labDir).walArchive;
  const before = await readWalArchiveState(p.state);
  const db = await readSecondaryDb(labDir);
  const now = new Date().toISOString();
  // Everything before the REDO segment is in the archive now: the parent timelines up to the switch (the restore
  // read them from it) and what was just shipped. Said on the new timeline, so the archiver's next segment follows it.
  const last = { timeline: redoId.timeline, segno: redoId.segno - 1n };
  const archivedThrough = { segment: segmentName(last), timeline: last.timeline, endLsn: formatLsn(segmentEnd(last)), at: now };
  const newest = segmentName(last);
  const state: WalArchiveState = {
    ...(before ?? {
      pid: 0,
      receiverPid: null,
      endpoint: '',
      cluster,
      slot: '',
      state: 'stopped',
      archiveLagMs: 0,
      serverLsn: null,
      lagMs: null,
      lastError: null,
    }),
    state: 'stopped',
    receiverPid: null,
    archivedThrough,
    unarchivedSince: null,
    holes: [],
    baseBackup: db ? { folder: db.backupFolder, at: db.restoredAt } : (before?.baseBackup ?? null),
    updatedAt: now,
  };
  // The spool holds the old timeline's segments: pg_receivewal would resume after them, on a history the server no longer has.
  await rm(p.spool, { recursive: true, force: true });
  writeJsonAtomic(p.state, state);
  say(
    `WAL of the secondary shipped to the primary's archive: ${shipped.length} file(s), archived through ${newest}; the archiver continues from ${redo}`,
  );
  return shipped;
}

/** The primary's node data directories moved aside, the secondary's moved into the primary node's place. */
async function moveDatabase(labDir: string, say: (l: string) => void): Promise<{ quarantine: string | null }> {
  const p = labPaths(labDir);
  const config = await readConfig(p.config);
  if (!config) throw new Error(`${p.config} is missing: the primary region's layout is unknown`);
  const sec = secondaryPgPaths(labDir);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const quarantine = join(labDir, 'quarantine', `failback-${stamp}`);
  let moved = false;
  for (const node of Object.keys(config.nodes)) {
    const dir = join(p.pg, node);
    if (!existsSync(dir)) continue;
    // SIGKILLed with the region: a stale postmaster.pid would not stop a move, but a live server must not be moved.
    if (await isRunning(p.node(node).data)) await stopCluster(p.node(node).data, 'immediate');
    await mkdir(quarantine, { recursive: true });
    await rename(dir, join(quarantine, `pg-${node}`));
    moved = true;
  }
  // The region is rebuilt, not revived: request logs it never shipped stay with its data for forensics, rather than
  // being shipped by the rebuilt region as if they had survived the loss (the run's logs RPO would then read 0 s).
  if (existsSync(p.serviceLogs.dir)) {
    await mkdir(quarantine, { recursive: true });
    await rename(p.serviceLogs.dir, join(quarantine, 'service-logs'));
    moved = true;
  }
  const target = p.node(config.primary);
  await mkdir(join(p.pg, config.primary), { recursive: true, mode: 0o755 });
  await giveToServerUser(join(p.pg, config.primary));
  await rename(sec.dataDir, target.data);
  // The copy's log goes with it, so the primary node's log tells the whole story since the restore.
  if (existsSync(sec.logFile)) await copyFile(sec.logFile, target.log).catch(() => undefined);
  await clearRecoverySettings(target.data);
  await writeNodeConf(target.data, { port: config.nodes[config.primary]!.port, socketDir: p.socketDir });
  await rm(regionPaths(labDir).secondaryDb, { force: true });
  say(
    `the secondary's database moved into ${target.data}${moved ? `; the primary region's own data kept in ${quarantine}` : ''}; the standby is rebuilt from it`,
  );
  return { quarantine: moved ? quarantine : null };
}

export async function failbackToPrimary(labDir: string, o: FailbackOptions): Promise<FailbackResult> {
  const say = o.log ?? (() => {});
  const steps: FailbackResult['steps'] = [];
  let t = performance.now();
  const done = (step: FailbackStep) => {
    const ms = performance.now() - t;
    steps.push({ step, ms });
    o.onStep?.(step, ms);
    t = performance.now();
  };
  const config = await readConfig(labPaths(labDir).config);
  if (config?.regions !== 2) throw new Error(`the lab in ${labDir} runs one region: there is no secondary to fail back from`);
  if (config.patroni)
    throw new Error('failback is built for the pg-promote lab; a Patroni lab fails back by `drill lab down` and `drill lab up`');

  let marker = await readJson<FailbackMarker>(failbackMarkerPath(labDir)).catch(() => null);
  let mirrored: FailbackResult['mirrored'] = [];
  if (!marker) {
    const sec = secondaryPgPaths(labDir);
    if (!existsSync(join(sec.dataDir, 'PG_VERSION')))
      throw new Error(
        `the secondary region has no database in ${sec.dataDir}: nothing to fail back (\`drill lab status\` says which region serves)`,
      );
    await startLabAzurite(labDir);
    mirrored = await mirrorStorage(labDir, o.signal);
    done('storage');
    o.signal.throwIfAborted();

    o.onWritesStopped?.();
    const stopped = await stopSecondaryCompute(labDir);
    if (await isRunning(sec.dataDir)) await stopCluster(sec.dataDir, 'fast', { timeoutMs: 60_000 });
    say(
      `the secondary stopped taking writes: ${stopped.map((s) => s.name).join(', ') || 'its compute was not running'}, its database stopped`,
    );
    const again = await mirrorStorage(labDir, o.signal);
    mirrored = mirrored.map((m, i) => ({ ...m, copied: m.copied + again[i]!.copied, removed: m.removed + again[i]!.removed }));
    done('stop-secondary');

    const walShipped = await shipSecondaryWal(labDir, sec.dataDir, say);
    done('wal');
    const { quarantine } = await moveDatabase(labDir, say);
    marker = { movedAt: new Date().toISOString(), quarantine, walShipped };
    writeJsonAtomic(failbackMarkerPath(labDir), marker);
    done('database');
  } else say(`the secondary's data was moved into the primary's place at ${marker.movedAt}: starting the primary region`);

  // The front goes back as soon as the primary's replicas serve; the standby's rebuild and the warm-up go on behind it.
  let switching: Promise<{ switchedAt: string }> | null = null;
  const switchBack = async () => {
    const front = (await collectFacts(labDir)).live?.front.port;
    if (front === undefined) throw new Error("the primary region's front does not answer after its start");
    const r = await switchGlobalFront(labDir, 'primary', front, o.signal);
    done('switch');
    say(`global front switched back to the primary at ${r.switchedAt}`);
    return r;
  };
  const info = await labUp({
    dir: labDir,
    replicas: config.replicas,
    rebuildPrimary: true,
    say,
    onPhase: (phase) => {
      if (phase !== 'serving' || switching) return;
      done('start');
      switching = switchBack();
      switching.catch(() => undefined);
    },
  });
  // A primary already up (a call cut short after its start) reaches no 'serving' phase: only the switch is left.
  if (!switching) {
    done('start');
    switching = switchBack();
  }
  const { switchedAt } = await (switching as Promise<{ switchedAt: string }>);
  await rm(failbackMarkerPath(labDir), { force: true });
  return {
    steps,
    mirrored,
    walShipped: marker.walShipped,
    quarantine: marker.quarantine,
    db: { host: '127.0.0.1', port: info.db.port, database: LAB_DB.database, user: LAB_DB.superuser },
    switchedAt,
  };
}
