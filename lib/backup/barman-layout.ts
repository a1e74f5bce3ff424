/**
 * The object layout barman-cloud writes, which is what a real CloudNativePG cluster's archive holds (the operator
 * runs barman-cloud-backup and barman-cloud-wal-archive against `spec.backup.barmanObjectStore`). Pure: the caller
 * lists the blobs and downloads the few it needs. Read from barman's source (github.com/EnterpriseDB/barman):
 *
 *   <destinationPath>/<serverName>/base/<backupID>/backup.info          barman/cloud.py CloudBackupCatalog.prefix,
 *   <destinationPath>/<serverName>/base/<backupID>/data.tar[.gz|.bz2|.snappy]   get_backup_info, get_backup_files
 *   <destinationPath>/<serverName>/base/<backupID>/<tablespace oid>.tar[...]
 *   <destinationPath>/<serverName>/wals/<TTTTTTTTXXXXXXXX>/<segment>[.gz|...]   barman/clients/cloud_walarchive.py
 *   <destinationPath>/<serverName>/wals/<TTTTTTTT>.history[.gz|...]            upload_wal: hash_dir() is the first
 *                                                                  16 hex digits of a segment and "" for a history
 *                                                                  file (barman/xlog.py), so histories lie in wals/
 *
 * The backup ID is the folder's name (`%Y%m%dT%H%M%S`, CloudBackup._get_backup_info): backup.info has no
 * backup_id line, since BackupInfo.save writes only Field attributes and backup_id is a slot (barman/infofile.py).
 * backup.info is `name=value` lines sorted by name, `None` for a value not set (FieldListFile.save and load).
 * A compressed WAL file carries one suffix from ALLOWED_COMPRESSIONS (barman/cloud.py); CloudBackupCatalog
 * .get_wal_paths keys every file by its name without it, whatever folder it is in, and so does this reader.
 */
import { normalisePrefix } from './naming.ts';
import { HISTORY_FILE, parseLsn, parseSegmentName } from './wal-names.ts';

/** barman/cloud.py ALLOWED_COMPRESSIONS: suffix -> barman's name for it. */
export const BARMAN_COMPRESSIONS: Readonly<Record<string, string>> = {
  '.gz': 'gzip',
  '.bz2': 'bzip2',
  '.xz': 'xz',
  '.snappy': 'snappy',
  '.zst': 'zstd',
  '.lz4': 'lz4',
};

/** barman/xlog.py _xlog_re: a segment, a `.partial` segment, a `.backup` label, or a `.history` file. */
const XLOG = /^[0-9A-Fa-f]{8}(?:[0-9A-Fa-f]{16}(?:\.[0-9A-Fa-f]{8}\.backup|\.partial)?|\.history)$/;

/** `<prefix><serverName>/`: where CloudNativePG's barman-cloud keeps one server's base backups and WAL. */
export function barmanServerRoot(prefix: string, serverName: string): string {
  return `${normalisePrefix(prefix)}${serverName}/`;
}

export interface BarmanWalFile {
  /** The name PostgreSQL gave it (compression suffix removed). */
  name: string;
  blob: string;
  /** barman's compression name, or null for a plain file. */
  compression: string | null;
  kind: 'segment' | 'history' | 'partial' | 'backup-label';
}

export interface BarmanBaseFolder {
  backupId: string;
  /** `<root>base/<backupID>/` */
  folder: string;
  /** The backup.info blob, or null: barman-cloud writes it last, so a folder without one never finished. */
  info: string | null;
  files: string[];
}

export interface BarmanListing {
  root: string;
  bases: BarmanBaseFolder[];
  /** Keyed by the name without compression suffix. */
  wals: Map<string, BarmanWalFile>;
}

/** One listing of `<root>` (every blob name under it) sorted into base backups and WAL files; anything else is ignored. */
export function readBarmanListing(root: string, names: Iterable<string>): BarmanListing {
  const bases = new Map<string, BarmanBaseFolder>();
  const wals = new Map<string, BarmanWalFile>();
  for (const name of names) {
    if (!name.startsWith(root)) continue;
    const parts = name.slice(root.length).split('/');
    if (parts[0] === 'base' && parts.length === 3 && parts[1] && parts[2]) {
      const id = parts[1];
      const b = bases.get(id) ?? { backupId: id, folder: `${root}base/${id}/`, info: null, files: [] };
      if (parts[2] === 'backup.info') b.info = name;
      else b.files.push(name);
      bases.set(id, b);
    } else if (parts[0] === 'wals' && parts.length >= 2) {
      const w = parseWalBlobName(name);
      if (w) wals.set(w.name, w);
    }
  }
  return { root, bases: [...bases.values()].sort((a, b) => a.backupId.localeCompare(b.backupId)), wals };
}

/** A blob's base name as a WAL file, or null when it is not one (CloudBackupCatalog.get_wal_paths). */
export function parseWalBlobName(blob: string): BarmanWalFile | null {
  const base = blob.slice(blob.lastIndexOf('/') + 1);
  let name = base;
  let compression: string | null = null;
  if (!XLOG.test(base)) {
    const dot = base.lastIndexOf('.');
    const suffix = dot < 0 ? '' : base.slice(dot);
    if (!BARMAN_COMPRESSIONS[suffix] || !XLOG.test(base.slice(0, dot))) return null;
    name = base.slice(0, dot);
    compression = BARMAN_COMPRESSIONS[suffix]!;
  }
  name = name
    .toUpperCase()
    .replace(/\.HISTORY$/, '.history')
    .replace(/\.PARTIAL$/, '.partial')
    .replace(/\.BACKUP$/, '.backup');
  const kind = HISTORY_FILE.test(name)
    ? 'history'
    : name.endsWith('.partial')
      ? 'partial'
      : name.endsWith('.backup')
        ? 'backup-label'
        : 'segment';
  return { name, blob, compression, kind };
}

/** What the drill reads of a backup.info (barman/infofile.py BackupInfo); every field is kept in `fields`. */
export interface BarmanBackupInfo {
  fields: Record<string, string | null>;
  /** EMPTY, STARTED, FAILED, WAITING_FOR_WALS, DONE, SYNCING (BackupInfo). */
  status: string;
  beginTime: string | null;
  endTime: string | null;
  beginWal: string | null;
  endWal: string | null;
  beginLsn: string | null;
  endLsn: string | null;
  timeline: number | null;
  systemId: string | null;
  error: string | null;
}

/**
 * backup.info as FieldListFile.load reads it: blank and `#` lines skipped, `name = value` split at the first
 * `=`, both sides trimmed, `None` read as not set. Throws on a line without `=`, as barman does.
 */
export function parseBackupInfo(text: string): BarmanBackupInfo {
  const fields: Record<string, string | null> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`invalid backup.info line "${line.trim()}"`);
    const value = line.slice(eq + 1).trim();
    fields[line.slice(0, eq).trim()] = value === 'None' ? null : value;
  }
  const f = (k: string) => fields[k] ?? null;
  const timeline = f('timeline');
  return {
    fields,
    // Field("status", default=EMPTY)
    status: f('status') ?? 'EMPTY',
    beginTime: barmanTime(f('begin_time')),
    endTime: barmanTime(f('end_time')),
    beginWal: f('begin_wal'),
    endWal: f('end_wal'),
    beginLsn: f('begin_xlog'),
    endLsn: f('end_xlog'),
    timeline: timeline && /^\d+$/.test(timeline) ? Number(timeline) : null,
    systemId: f('systemid'),
    error: f('error'),
  };
}

/**
 * begin_time and end_time are Python's str(datetime): `2026-12-04 17:00:01.123456+00:00`. ISO 8601 out, or null
 * when unreadable. Without an offset barman means the local time of the host that wrote it; read as UTC here.
 */
export function barmanTime(s: string | null): string | null {
  if (!s) return null;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(s.trim());
  if (!m) return null;
  const ms = (m[3] ?? '').padEnd(3, '0').slice(0, 3);
  const zone = !m[4] || m[4] === 'Z' ? 'Z' : m[4].includes(':') ? m[4] : `${m[4].slice(0, 3)}:${m[4].slice(3)}`;
  const t = Date.parse(`${m[1]}T${m[2]}.${ms}${zone}`);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/**
 * Whether a backup can seed a restore: barman's DONE, with the positions replay needs. CloudNativePG's own test
 * (cloudnative-pg/barman-cloud pkg/catalog/catalog.go isBackupDone) is "begin and end time set"; a FAILED backup
 * with both set would pass it, and the drill does not count on one.
 */
export function barmanBackupUsable(i: BarmanBackupInfo): string | null {
  if (i.status !== 'DONE') return `status ${i.status}${i.error ? ` (${i.error})` : ''}`;
  if (!i.beginTime || !i.endTime) return 'no begin_time or end_time';
  if (!i.beginWal || !parseSegmentName(i.beginWal)) return `begin_wal ${i.beginWal ?? 'None'} is not a segment name`;
  for (const [k, v] of [
    ['begin_xlog', i.beginLsn],
    ['end_xlog', i.endLsn],
  ] as const) {
    try {
      parseLsn(v ?? '');
    } catch {
      return `${k} ${v ?? 'None'} is not a WAL position`;
    }
  }
  return null;
}
