/**
 * The WAL shipper's state file: how far the archive reaches and since when WAL waits, so another process
 * (`drill lab status`) can judge the archive's lag and tell a stopped shipper from a healthy one.
 */
import { readFile } from 'node:fs/promises';
import { parseLsn, parseSegmentName } from '../../../backup/wal-names.ts';

export interface WalArchiveHole {
  from: string;
  to: string;
  count: number;
  detail: string;
  foundAt: string;
}

export interface WalArchiveState {
  /** The shipper's own PID. */
  pid: number;
  /** Its pg_receivewal, while one runs (a shipper SIGKILLed leaves it behind; the next one stops it). */
  receiverPid: number | null;
  /** The database URL it streams from, no password. */
  endpoint: string;
  cluster: string | null;
  slot: string;
  state: 'starting' | 'streaming' | 'reconnecting' | 'stopped';
  archiveLagMs: number;
  /** The newest segment in Blob; every byte before `endLsn` is archived unless a hole says otherwise. */
  archivedThrough: { segment: string; timeline: number; endLsn: string; at: string } | null;
  /** When the oldest WAL not yet in Blob was written; null when everything the server wrote is archived. */
  unarchivedSince: string | null;
  /** The server's insert position at the last look. */
  serverLsn: string | null;
  lagMs: number | null;
  /** Segments the archive misses for good: point-in-time recovery cannot cross them. */
  holes: WalArchiveHole[];
  lastError: string | null;
  /** The base backup taken once archiving ran (the lab's), if any. */
  baseBackup: { folder: string; at: string } | null;
  updatedAt: string;
}

export async function readJsonFile<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

export const readWalArchiveState = (path: string) => readJsonFile<WalArchiveState>(path);

/** The server's WAL insert position and the segment file it is in (`pg_walfile_name`), which names its timeline. */
export interface ServerWalPosition {
  lsn: string;
  walFile: string;
}

/**
 * The archive's lag now, in ms, from the state file and (when the server answers) its current position:
 * 0 when that position is archived on the server's timeline; otherwise since the oldest unarchived WAL
 * was seen, or, when the shipper saw none, since it last looked (it cannot have been archived after that).
 */
export function lagNowMs(s: WalArchiveState, server: ServerWalPosition | null, nowMs: number): number {
  const through = s.archivedThrough ? parseLsn(s.archivedThrough.endLsn) : null;
  const sameTimeline = server !== null && parseSegmentName(server.walFile)?.timeline === s.archivedThrough?.timeline;
  if (server !== null && through !== null && sameTimeline && parseLsn(server.lsn) <= through) return 0;
  const serverLsn = server?.lsn ?? null;
  const since = s.unarchivedSince ?? (serverLsn === null && s.lagMs === 0 ? null : s.updatedAt);
  return since === null ? 0 : Math.max(0, nowMs - Date.parse(since));
}
