/**
 * The drill's read-only view of a CloudNativePG cluster's object store, before it asks the operator for a
 * recovery Cluster: which base backup the operator will restore, and whether the WAL archive holds every segment
 * from that backup's start to the target. Two layouts are read, the first found wins:
 *
 *   barman-cloud's (what a real CloudNativePG writes): <path>/<serverName>/base/<id>/backup.info, .../wals/...
 *     (lib/backup/barman-layout.ts);
 *   the project's own (what `drill backup --kind physical` and the project's WAL shipper write, and what the
 *     test stand-in operator restores from): <path>/postgres/<serverName>/physical/<stamp>/, .../wal/<segment>.
 *
 * Only names, sizes, dates, backup.info / manifest.json and .history files are read; no segment is downloaded.
 */
import { gunzipSync } from 'node:zlib';
import { readCatalog } from '../postgres/backup/catalog.ts';
import { getText, type BackupStore } from '../postgres/backup/store.ts';
import {
  barmanBackupUsable,
  barmanServerRoot,
  parseBackupInfo,
  readBarmanListing,
  type BarmanWalFile,
} from '../../backup/barman-layout.ts';
import { clusterRoot, walFolder, WAL_SEGMENT } from '../../backup/naming.ts';
import { newestTimeline, planWal, type WalPlan } from '../../backup/wal-gaps.ts';
import { historyFileName, parseLsn, parseSegmentName } from '../../backup/wal-names.ts';
import type { RestoreTarget } from '../types.ts';

export type ArchiveLayout = 'barman-cloud' | 'drill';

export interface BaseBackup {
  /** barman's backup ID, or the project's folder stamp. */
  id: string;
  /** Blob path of its backup.info or manifest.json: what a problem points at. */
  blob: string;
  folder: string;
  takenAt: string;
  bytes: number;
  beginLsn: string;
  endLsn: string;
  startSegment: string;
  /** Why it cannot seed a restore, or null. */
  unusable: string | null;
}

export interface ArchiveView {
  layout: ArchiveLayout;
  serverName: string;
  /** For the drill's layout: where barman-cloud's was looked for first (and nothing found). */
  barmanLookedAt: string | null;
  /** `container/prefix...`: the folder the layout lives in, for messages. */
  where: string;
  /** Oldest first. */
  backups: BaseBackup[];
  /** Segment and .history names (compression suffix removed), as planWal takes them. */
  archived: string[];
  /** name -> blob, for the .history files the plan reads. */
  walBlobs: Map<string, Pick<BarmanWalFile, 'blob' | 'compression'>>;
  newestWalAt: number | null;
}

/** A blob as the user wrote its place: under the destinationPath URL when given, else `container/name`. */
function at(store: BackupStore, name: string, display?: string): string {
  return display && name.startsWith(store.prefix)
    ? `${display.replace(/\/+$/, '')}/${name.slice(store.prefix.length)}`
    : `${store.container.containerName}/${name}`;
}

async function list(store: BackupStore, prefix: string) {
  const out: { name: string; bytes: number; modified: number }[] = [];
  for await (const b of store.container.listBlobsFlat({ prefix }))
    out.push({ name: b.name, bytes: b.properties.contentLength ?? 0, modified: b.properties.lastModified?.getTime() ?? 0 });
  return out;
}

async function barmanView(store: BackupStore, serverName: string, display?: string, withBackups = true): Promise<ArchiveView | null> {
  const root = barmanServerRoot(store.prefix, serverName);
  const blobs = await list(store, root);
  const listing = readBarmanListing(
    root,
    blobs.map((b) => b.name),
  );
  if (listing.bases.length === 0 && listing.wals.size === 0) return null;
  const size = new Map(blobs.map((b) => [b.name, b]));
  const backups: BaseBackup[] = [];
  for (const b of withBackups ? listing.bases : []) {
    const base = { id: b.backupId, folder: b.folder, bytes: b.files.reduce((n, f) => n + (size.get(f)?.bytes ?? 0), 0) };
    if (!b.info) {
      backups.push({
        ...base,
        blob: `${b.folder}backup.info`,
        takenAt: '',
        beginLsn: '',
        endLsn: '',
        startSegment: '',
        unusable: 'no backup.info (unfinished)',
      });
      continue;
    }
    const text = await getText(store, b.info);
    let unusable: string | null;
    let info: ReturnType<typeof parseBackupInfo> | null = null;
    try {
      info = parseBackupInfo(text ?? '');
      unusable = text === null ? 'backup.info vanished while read' : barmanBackupUsable(info);
    } catch (e) {
      unusable = (e as Error).message;
    }
    backups.push({
      ...base,
      blob: b.info,
      takenAt: info?.beginTime ?? '',
      beginLsn: info?.beginLsn ?? '',
      endLsn: info?.endLsn ?? '',
      startSegment: info?.beginWal ?? '',
      unusable,
    });
  }
  // cloudnative-pg/barman-cloud pkg/catalog/sorting.go orders by begin time; unusable ones carry no time and sort first.
  backups.sort((a, b) => a.takenAt.localeCompare(b.takenAt) || a.id.localeCompare(b.id));
  const walFiles = [...listing.wals.values()].filter((w) => w.kind === 'segment' || w.kind === 'history');
  // reduce, not Math.max(...): an archive of months holds more segments than a call takes arguments.
  const newest = walFiles.reduce((m, w) => Math.max(m, size.get(w.blob)?.modified ?? 0), 0);
  return {
    layout: 'barman-cloud',
    serverName,
    barmanLookedAt: null,
    where: at(store, root, display),
    backups,
    archived: walFiles.map((w) => w.name).sort(),
    walBlobs: new Map(walFiles.map((w) => [w.name, { blob: w.blob, compression: w.compression }])),
    newestWalAt: walFiles.length > 0 ? newest : null,
  };
}

async function drillView(store: BackupStore, serverName: string, display?: string, withBackups = true): Promise<ArchiveView> {
  const entries = withBackups ? await readCatalog(store, { kind: 'physical', cluster: serverName }) : [];
  const backups: BaseBackup[] = entries.map((e) => ({
    id: e.folder.split('/').filter(Boolean).at(-1) ?? e.folder,
    blob: `${e.folder}manifest.json`,
    folder: e.folder,
    takenAt: e.takenAt,
    bytes: e.manifest?.blob.bytes ?? 0,
    beginLsn: e.manifest?.lsn.start ?? '',
    endLsn: e.manifest?.lsn.end ?? '',
    startSegment: e.manifest?.walStartSegment ?? '',
    unusable: e.problem ?? (e.manifest?.walStartSegment ? null : 'its manifest names no first WAL segment'),
  }));
  const folder = walFolder(store.prefix, serverName);
  const wal = (await list(store, folder))
    .map((b) => ({ ...b, file: b.name.slice(folder.length) }))
    .filter((b) => WAL_SEGMENT.test(b.file) || /^[0-9A-F]{8}\.history$/.test(b.file));
  return {
    layout: 'drill',
    serverName,
    barmanLookedAt: at(store, barmanServerRoot(store.prefix, serverName), display),
    where: at(store, clusterRoot(store.prefix, serverName), display),
    backups,
    archived: wal.map((b) => b.file).sort(),
    walBlobs: new Map(wal.map((b) => [b.file, { blob: b.name, compression: null }])),
    newestWalAt: wal.length > 0 ? wal.reduce((m, b) => Math.max(m, b.modified), 0) : null,
  };
}

/**
 * barman-cloud's layout when the store holds anything of it under serverName, else the project's own. `display`:
 * the destinationPath the store was made from, so messages name places as the drill file does. `withBackups`
 * false skips reading backup.info / manifest files (the archive wait re-reads only the WAL, once a second).
 */
export async function readArchiveView(store: BackupStore, serverName: string, display?: string, withBackups = true): Promise<ArchiveView> {
  return (await barmanView(store, serverName, display, withBackups)) ?? (await drillView(store, serverName, display, withBackups));
}

export const layoutName = (v: ArchiveView) =>
  v.layout === 'barman-cloud'
    ? `barman-cloud layout at ${v.where}`
    : `drill's backup layout at ${v.where} (nothing in barman-cloud's at ${v.barmanLookedAt})`;

/**
 * The base backup the operator will restore for `target`. barman-cloud: CloudNativePG takes the newest complete
 * backup that began before a targetLSN (cloudnative-pg/barman-cloud pkg/catalog/catalog.go
 * findClosestBackupFromTargetLSN), or the newest for no target; the drill's own layout: the stand-in takes the
 * newest that ended at or before it. `problem` says when the pick cannot reach the target.
 */
export function chooseBaseBackup(v: ArchiveView, target: RestoreTarget): { backup: BaseBackup | null; problem: string | null } {
  const usable = v.backups.filter((b) => b.unusable === null);
  const pick =
    target === 'latest'
      ? usable.at(-1)
      : [...usable]
          .reverse()
          .find((b) =>
            v.layout === 'barman-cloud' ? parseLsn(b.beginLsn) < parseLsn(target.lsn) : parseLsn(b.endLsn) <= parseLsn(target.lsn),
          );
  if (!pick) {
    const skipped = v.backups.filter((b) => b.unusable !== null).map((b) => `${b.blob}: ${b.unusable}`);
    return {
      backup: null,
      problem: `no physical base backup of ${v.serverName}${target === 'latest' ? '' : ` from before ${target.lsn}`} under the ${layoutName(v)}${skipped.length ? ` (not usable: ${skipped.join('; ')})` : ''}`,
    };
  }
  // Recovery cannot stop before the backup's end is replayed: PostgreSQL refuses a target before consistency.
  if (target !== 'latest' && parseLsn(pick.endLsn) > parseLsn(target.lsn))
    return {
      backup: pick,
      problem: `the operator would restore ${pick.blob}, which began before ${target.lsn} but ended at ${pick.endLsn}, after it: recovery cannot stop before the backup is consistent`,
    };
  return { backup: pick, problem: null };
}

/** The .history text the plan needs, decompressed when barman-cloud gzipped it; null when it cannot be read. */
async function readHistory(store: BackupStore, v: ArchiveView, name: string): Promise<string | null> {
  const w = v.walBlobs.get(name);
  if (!w) return null;
  if (w.compression === null) return getText(store, w.blob);
  if (w.compression !== 'gzip') throw new Error(`${at(store, w.blob)} is compressed with ${w.compression}, which the drill cannot read`);
  const buf = await store.container.getBlobClient(w.blob).downloadToBuffer();
  return gunzipSync(buf).toString('utf8');
}

/** Segments from the backup's first to the target's, on the newest timeline's path (wal-gaps.ts planWal). */
export async function planFromBackup(
  store: BackupStore,
  v: ArchiveView,
  backup: BaseBackup,
  target: RestoreTarget,
): Promise<{ plan: WalPlan; missing: string[] }> {
  const timeline = Math.max(newestTimeline(v.archived), parseSegmentName(backup.startSegment)?.timeline ?? 1);
  const histories = new Map<string, string>();
  const h = historyFileName(timeline);
  const text = v.walBlobs.has(h) ? await readHistory(store, v, h) : null;
  if (text !== null) histories.set(h, text);
  const plan = planWal({
    startSegment: backup.startSegment,
    timeline,
    target: target === 'latest' ? 'latest' : { lsn: target.lsn },
    archived: v.archived,
    histories,
  });
  return { plan, missing: plan.missingHistory ? [...plan.missing, plan.missingHistory] : plan.missing };
}

export interface ArchiveCheck {
  layout: ArchiveLayout | null;
  problems: string[];
  backup: BaseBackup | null;
  archiveLagSeconds: number | null;
  missing: string[];
}

/**
 * Preflight: a usable base backup, a WAL archive that is being written, and no gap between the newest backup's
 * first segment and the newest archived one (a restore to the end of the archive would stop at the gap).
 */
export async function checkArchive(store: BackupStore, serverName: string, display?: string, now = Date.now()): Promise<ArchiveCheck> {
  const v = await readArchiveView(store, serverName, display);
  const out: ArchiveCheck = { layout: v.layout, problems: [], backup: null, archiveLagSeconds: null, missing: [] };
  const { backup, problem } = chooseBaseBackup(v, 'latest');
  if (problem) out.problems.push(`${problem}: take one before the drill`);
  out.backup = backup;
  if (v.newestWalAt === null)
    out.problems.push(`the WAL archive of ${serverName} in the ${layoutName(v)} is empty: WAL archiving is not running`);
  else out.archiveLagSeconds = Math.max(0, Math.round((now - v.newestWalAt) / 1000));
  if (backup && v.newestWalAt !== null) {
    try {
      const { plan, missing } = await planFromBackup(store, v, backup, 'latest');
      out.missing = missing;
      if (missing.length > 0)
        out.problems.push(
          `the WAL archive in the ${layoutName(v)} misses ${missing.join(', ')} between ${backup.blob}'s first segment ${backup.startSegment} and ${plan.last ?? 'the newest archived segment'}: no restore can pass the gap`,
        );
    } catch (e) {
      out.problems.push(`the WAL archive in the ${layoutName(v)} cannot be planned from ${backup.blob}: ${(e as Error).message}`);
    }
  }
  return out;
}
