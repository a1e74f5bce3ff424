/**
 * Which archived WAL segments a point-in-time restore needs, and which of them the archive lacks. Pure: the
 * caller lists the archive and reads its .history files (names: wal-names.ts). After a promotion PostgreSQL
 * replays each segment from the newest timeline of the target's history that had begun by then.
 */
import { historyFileName, parseHistory, parseLsn, parseSegmentName, segmentName, segmentNumberOf } from './wal-names.ts';

export interface WalNeed {
  /** The backup's first segment (its manifest's walStartSegment). */
  startSegment: string;
  /** The timeline the restore ends on (PostgreSQL's recovery_target_timeline, `latest`: the newest in the archive). */
  timeline: number;
  /** The segment holding this LSN is the last one needed; `latest`: the newest archived one on the path. */
  target: { lsn: string } | 'latest';
  /** Segment and .history names in the archive. */
  archived: readonly string[];
  /** `.history` file name -> its content, for every timeline between the backup's and `timeline` (read as needed). */
  histories: ReadonlyMap<string, string>;
}

export interface WalPlan {
  /** Every segment replay reads, in order. */
  needed: string[];
  missing: string[];
  /** A .history file the path needs and the archive lacks (then `needed` is only what could be worked out). */
  missingHistory: string | null;
  /** The last segment needed; null for `latest` when the archive holds nothing past the start. */
  last: string | null;
}

/** The newest timeline the archive knows of: its highest .history file, or the highest segment's timeline. */
export function newestTimeline(archived: readonly string[]): number {
  let best = 1;
  for (const f of archived) {
    const m = /^([0-9A-F]{8})\.history$/.exec(f);
    const t = m ? Number.parseInt(m[1]!, 16) : parseSegmentName(f)?.timeline;
    if (t !== undefined && t > best) best = t;
  }
  return best;
}

/**
 * The segments from the backup's start to the target on the target timeline's path, and which are missing. A
 * segment is taken from the newest timeline of the path that had begun by then (where PostgreSQL looks first).
 */
export function planWal(n: WalNeed): WalPlan {
  const start = parseSegmentName(n.startSegment);
  if (!start) throw new Error(`"${n.startSegment}" is not a WAL segment name`);
  // Path of the target timeline: [timeline, first segment it owns], oldest first.
  const path: { timeline: number; from: bigint }[] = [];
  let missingHistory: string | null = null;
  if (n.timeline > start.timeline) {
    const name = historyFileName(n.timeline);
    const text = n.histories.get(name);
    if (text === undefined) missingHistory = name;
    else {
      const sw = parseHistory(text);
      let from = 0n;
      for (const s of sw) {
        path.push({ timeline: s.parent, from });
        from = segmentNumberOf(s.switchpoint);
      }
      path.push({ timeline: n.timeline, from });
    }
  }
  if (path.length === 0) path.push({ timeline: start.timeline, from: 0n });
  const timelineOf = (segno: bigint) => {
    let t = path[0]!.timeline;
    for (const p of path) if (p.from <= segno) t = p.timeline;
    return t;
  };
  const have = new Set(n.archived);
  let lastSeg: bigint | null;
  if (n.target === 'latest') {
    lastSeg = null;
    for (const f of n.archived) {
      const s = parseSegmentName(f);
      if (s && s.segno >= start.segno && s.timeline === timelineOf(s.segno) && (lastSeg === null || s.segno > lastSeg)) lastSeg = s.segno;
    }
  } else {
    lastSeg = segmentNumberOf(n.target.lsn);
    if (lastSeg < start.segno)
      throw new Error(`the target ${n.target.lsn} lies before the backup's first segment ${n.startSegment}: this backup cannot reach it`);
  }
  const needed: string[] = [];
  const missing: string[] = [];
  if (lastSeg !== null) {
    for (let s = start.segno; s <= lastSeg; s++) {
      const name = segmentName({ timeline: timelineOf(s), segno: s });
      needed.push(name);
      if (!have.has(name)) missing.push(name);
    }
  }
  return { needed, missing, missingHistory, last: needed[needed.length - 1] ?? null };
}

/**
 * Whether replay can go from a backup that ended at `endLsn` on `backupTimeline` to `timeline`: the backup lies on
 * that timeline's history (a backup taken on a branch a later restore abandoned does not). A missing history file
 * answers true: planWal then names it.
 */
export function backupOnPath(
  timeline: number,
  histories: ReadonlyMap<string, string>,
  backup: { timeline: number; endLsn: string },
): boolean {
  if (backup.timeline === timeline) return true;
  if (backup.timeline > timeline) return false;
  const text = histories.get(historyFileName(timeline));
  if (text === undefined) return true;
  const sw = parseHistory(text).find((s) => s.parent === backup.timeline);
  return sw !== undefined && parseLsn(backup.endLsn) <= parseLsn(sw.switchpoint);
}
