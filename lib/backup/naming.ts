/**
 * Where backups live in a Blob container. One folder per backup, the data blob and its manifest side
 * by side; the manifest is written last, so a folder without one is a backup that never finished.
 *
 *   <prefix>postgres/<cluster>/logical/<database>/<YYYYMMDDTHHMMSSmmmZ>/dump.pgc      pg_dump -Fc
 *   <prefix>postgres/<cluster>/physical/<YYYYMMDDTHHMMSSmmmZ>/base.tar               pg_basebackup -Ft
 *   <prefix>postgres/<cluster>/<...same folder...>/manifest.json
 *   <prefix>postgres/<cluster>/wal/<timeline><log><segment>                          archived WAL segments
 *
 * <cluster> is the cluster's name (default: its system identifier, which survives host and port
 * changes and tells two clusters apart). Stamps sort as text in time order.
 */

export type BackupKind = 'logical' | 'physical';

export const MANIFEST_FILE = 'manifest.json';
export const DATA_FILE: Record<BackupKind, string> = { logical: 'dump.pgc', physical: 'base.tar' };

/** `2026-12-02T06:01:02.345Z` -> `20261202T060102345Z`. */
export function stampOf(iso: string): string {
  return iso.replace(/[-:.]/g, '');
}

export function stampToIso(stamp: string): string | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/.exec(stamp);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z` : null;
}

/** A prefix as the user wrote it, made to end in `/` (or empty). */
export function normalisePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

const SAFE = /^[A-Za-z0-9_.-]+$/;
export function checkNamePart(what: string, value: string): void {
  if (!SAFE.test(value)) throw new Error(`${what} "${value}" may only hold letters, digits, "_", "-" and "."`);
}

export function clusterRoot(prefix: string, cluster: string): string {
  return `${normalisePrefix(prefix)}postgres/${cluster}/`;
}

export function backupFolder(o: { prefix: string; cluster: string; kind: BackupKind; database: string; startedAt: string }): string {
  const root = clusterRoot(o.prefix, o.cluster);
  return o.kind === 'logical' ? `${root}logical/${o.database}/${stampOf(o.startedAt)}/` : `${root}physical/${stampOf(o.startedAt)}/`;
}

export function walFolder(prefix: string, cluster: string): string {
  return `${clusterRoot(prefix, cluster)}wal/`;
}

export interface ParsedBackupBlob {
  folder: string;
  cluster: string;
  kind: BackupKind;
  /** Logical backups only; a physical backup holds the whole cluster. */
  database: string | null;
  stamp: string;
  takenAt: string;
  file: string;
}

/** A blob name inside the backup layout, or null for anything else (WAL, foreign blobs). */
export function parseBackupBlob(prefix: string, name: string): ParsedBackupBlob | null {
  const p = normalisePrefix(prefix);
  if (!name.startsWith(`${p}postgres/`)) return null;
  const parts = name.slice(p.length).split('/');
  // postgres/<cluster>/logical/<db>/<stamp>/<file>  or  postgres/<cluster>/physical/<stamp>/<file>
  if (parts[2] === 'logical' && parts.length === 6) {
    const takenAt = stampToIso(parts[4]!);
    if (!takenAt) return null;
    return {
      folder: p + parts.slice(0, 5).join('/') + '/',
      cluster: parts[1]!,
      kind: 'logical',
      database: parts[3]!,
      stamp: parts[4]!,
      takenAt,
      file: parts[5]!,
    };
  }
  if (parts[2] === 'physical' && parts.length === 5) {
    const takenAt = stampToIso(parts[3]!);
    if (!takenAt) return null;
    return {
      folder: p + parts.slice(0, 4).join('/') + '/',
      cluster: parts[1]!,
      kind: 'physical',
      database: null,
      stamp: parts[3]!,
      takenAt,
      file: parts[4]!,
    };
  }
  return null;
}

/** 24 hex digits: a WAL segment file name (history and .partial files excluded). */
export const WAL_SEGMENT = /^[0-9A-F]{24}$/;
