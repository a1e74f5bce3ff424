/** The lab's continuous WAL archive and its base backups: their defaults and schedule. The archiver is daemon/wal-archiver.ts. */
import { DEFAULT_BACKUP_POLICY } from '../backup/policy.ts';

export const DEFAULT_ARCHIVE_LAG_MS = 60_000;

/**
 * How often the lab takes a new base backup: the organisation's daily backups. A point-in-time restore replays
 * every WAL segment from the newest base backup before its target, so a lab kept up for days without a new one
 * restores slower each day (837 MB to download after a day of drills, 2026-12-05).
 */
export const DEFAULT_BASE_BACKUP_EVERY_MS = DEFAULT_BACKUP_POLICY.maxAgeMs;

/** Below this, base backups would follow each other back to back on a lab under load. */
export const MIN_BASE_BACKUP_EVERY_MS = 10_000;

/**
 * Whether a new base backup is due: none yet, the newest ended `everyMs` or longer ago, or the archive has a hole found
 * after the newest ended. Point-in-time recovery from a base backup cannot cross a hole after it, so until a new one
 * is taken no restore can reach a point written after the hole.
 */
export function baseBackupDue(
  newestEndedAt: string | null,
  nowMs: number,
  everyMs: number,
  lastHoleFoundAt: string | null = null,
): boolean {
  if (newestEndedAt === null) return true;
  if (lastHoleFoundAt !== null && holeAfter(lastHoleFoundAt, newestEndedAt)) return true;
  return nowMs - Date.parse(newestEndedAt) >= everyMs;
}

/**
 * Whether a hole found at `foundAt` lies after the base backup that ended at `baseBackupEndedAt`. A hole is found when
 * the WAL is already gone, so a base backup that ended before it starts at a segment before the hole, and one that
 * ended after it starts past it: restores from the latter never cross it.
 */
export function holeAfter(foundAt: string, baseBackupEndedAt: string): boolean {
  return Date.parse(foundAt) >= Date.parse(baseBackupEndedAt);
}

/**
 * How often the archiver asks whether one is due: a tenth of the interval, so a backup starts at most 10 % late,
 * but no more often than every 2 s (a listing of the catalog each time) and no less often than every 10 minutes.
 */
export function baseBackupCheckEveryMs(everyMs: number): number {
  return Math.min(600_000, Math.max(2000, Math.round(everyMs / 10)));
}
