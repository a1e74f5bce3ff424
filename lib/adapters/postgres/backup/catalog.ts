/**
 * The backups in a container, read from their folders and manifests. A folder whose manifest is
 * missing or unreadable is listed with its problem rather than dropped: "the newest backup has no
 * manifest" is a finding, and silently restoring the one before it would hide it.
 */
import { MANIFEST_FILE, normalisePrefix, parseBackupBlob, type BackupKind } from '../../../backup/naming.ts';
import { parseManifest, type BackupManifest } from '../../../backup/manifest.ts';
import { BlobTransferError, describeError, restStatus } from '../../blob/errors.ts';
import { getText, type BackupStore } from './store.ts';

export interface CatalogEntry {
  folder: string;
  cluster: string;
  kind: BackupKind;
  /** From the folder (logical) or the manifest (physical); null when neither says. */
  database: string | null;
  takenAt: string;
  /** Blobs in the folder besides the manifest, with their sizes. */
  blobs: Array<{ name: string; size: number }>;
  manifest: BackupManifest | null;
  /** Why this backup cannot be restored as is; null when its manifest is present and well formed. */
  problem: string | null;
}

export interface CatalogFilter {
  kind?: BackupKind;
  database?: string;
  cluster?: string;
}

export async function readCatalog(store: BackupStore, filter: CatalogFilter = {}): Promise<CatalogEntry[]> {
  const root = `${normalisePrefix(store.prefix)}postgres/${filter.cluster ? `${filter.cluster}/` : ''}`;
  const folders = new Map<string, CatalogEntry & { hasManifest: boolean }>();
  try {
    for await (const item of store.container.listBlobsFlat({ prefix: root })) {
      const p = parseBackupBlob(store.prefix, item.name);
      if (!p) continue;
      if (filter.kind && p.kind !== filter.kind) continue;
      let e = folders.get(p.folder);
      if (!e) {
        e = {
          folder: p.folder,
          cluster: p.cluster,
          kind: p.kind,
          database: p.database,
          takenAt: p.takenAt,
          blobs: [],
          manifest: null,
          problem: null,
          hasManifest: false,
        };
        folders.set(p.folder, e);
      }
      if (p.file === MANIFEST_FILE) e.hasManifest = true;
      else e.blobs.push({ name: item.name, size: item.properties.contentLength ?? 0 });
    }
  } catch (e) {
    const { status, code } = restStatus(e);
    const what =
      status === 404 && code === 'ContainerNotFound' ? `container "${store.container.containerName}" does not exist` : describeError(e);
    throw new BlobTransferError(
      status === 404 ? 'not-found' : 'request-failed',
      store.container.containerName,
      root,
      `cannot list backups under "${root}": ${what}`,
      status,
    );
  }
  const out: CatalogEntry[] = [];
  for (const e of folders.values()) {
    if (!e.hasManifest) {
      e.problem = `${MANIFEST_FILE} is missing: the backup never finished or its manifest was deleted`;
    } else {
      const text = await getText(store, e.folder + MANIFEST_FILE);
      const parsed = text === null ? { problem: `${MANIFEST_FILE} disappeared while listing` } : parseManifest(text);
      if ('problem' in parsed) e.problem = parsed.problem;
      else {
        e.manifest = parsed.manifest;
        e.database ??= parsed.manifest.database;
        if (!e.blobs.some((b) => b.name === parsed.manifest.blob.name))
          e.problem = `the manifest names ${parsed.manifest.blob.name}, which is not in the container`;
      }
    }
    if (filter.database && e.database !== null && e.database !== filter.database) continue;
    const { hasManifest: _, ...entry } = e;
    out.push(entry);
  }
  return out.sort((a, b) => Date.parse(a.takenAt) - Date.parse(b.takenAt));
}

/**
 * The backup to restore for a point in time: the newest taken at or before it (or the newest of all).
 * For a point in time, only backups consistent before it qualify.
 */
export function pickBackup(entries: readonly CatalogEntry[], before?: string): CatalogEntry | null {
  const limit = before ? Date.parse(before) : Infinity;
  const eligible = entries.filter((e) => Date.parse(e.manifest?.consistentAt ?? e.takenAt) <= limit);
  return eligible[eligible.length - 1] ?? null;
}
