/**
 * The WAL shipper's reasoning about its archive: which segment follows which, what a timeline switch leaves out,
 * and how old the oldest WAL not yet in the archive is. Pure; names and positions are wal-names.ts's.
 */

import { SEGMENT_BYTES, segmentName, parseSegmentName, segmentNumberOf, type SegmentId } from '../../../backup/wal-names.ts';

/** Orders segments by position, then timeline (a new timeline's first segment shares its number with the old one's last). */
export function compareSegments(a: SegmentId, b: SegmentId): number {
  return a.segno === b.segno ? a.timeline - b.timeline : a.segno < b.segno ? -1 : 1;
}

/** Newest first on the later timeline, then by position: the order in which a followed history goes on. */
export function compareFollowed(a: SegmentId, b: SegmentId): number {
  return a.timeline === b.timeline ? compareSegments(a, b) : a.timeline - b.timeline;
}

export interface SegmentGap {
  /** First and last missing segment, named on the timeline of the segment after the gap. */
  from: string;
  to: string;
  count: number;
}

/**
 * The segments missing between the newest archived one and the next to be archived, or null when they
 * follow on. A new timeline starts inside the old one's last segment, so its first segment may share
 * that number (or repeat it): only a number beyond `prev + 1` leaves a hole.
 */
export function gapBetween(prev: SegmentId | null, next: SegmentId, segmentBytes = SEGMENT_BYTES): SegmentGap | null {
  if (prev === null || next.segno <= prev.segno + 1n) return null;
  const first = { timeline: next.timeline, segno: prev.segno + 1n };
  const last = { timeline: next.timeline, segno: next.segno - 1n };
  return { from: segmentName(first, segmentBytes), to: segmentName(last, segmentBytes), count: Number(next.segno - prev.segno - 1n) };
}

/**
 * The segments a restore that follows `next`'s timeline needs after `prev` and before `next`, each named on the
 * timeline it is read from. `history` is the switches of `next`'s timeline file, oldest first (empty: the same
 * timeline). A switch segment is read from the newer timeline: it holds the parent's WAL up to the switch. Every
 * timeline on the way counts, not only the last parent: a shipper that was away while several restores each
 * forked a timeline (their WAL shipped by a drill's one-shot archive run) compares against a segment further
 * back. A switch behind `prev` (a restore to an earlier moment) needs nothing more.
 */
export function segmentsOnTheWay(
  prev: SegmentId,
  next: SegmentId,
  history: { parent: number; switchLsn: bigint }[],
  segmentBytes = SEGMENT_BYTES,
): SegmentId[] {
  const switches = history.map((h) => ({ timeline: h.parent, until: segmentNumberOf(h.switchLsn, segmentBytes) }));
  const out: SegmentId[] = [];
  for (let segno = prev.segno + 1n; segno < next.segno; segno++)
    out.push({ timeline: switches.find((w) => segno < w.until)?.timeline ?? next.timeline, segno });
  return out;
}

/** Runs of consecutive segments on one timeline, as gaps to report. */
export function gapsOf(ids: SegmentId[], segmentBytes = SEGMENT_BYTES): SegmentGap[] {
  const out: SegmentGap[] = [];
  let run: SegmentId[] = [];
  const close = () => {
    if (run.length > 0)
      out.push({ from: segmentName(run[0]!, segmentBytes), to: segmentName(run.at(-1)!, segmentBytes), count: run.length });
    run = [];
  };
  for (const id of ids) {
    const last = run.at(-1);
    if (last && (last.timeline !== id.timeline || last.segno + 1n !== id.segno)) close();
    run.push(id);
  }
  close();
  return out;
}

/** Gaps in a sorted or unsorted list of archived segment names (history files ignored). */
export function gapsIn(names: string[], segmentBytes = SEGMENT_BYTES): SegmentGap[] {
  const ids = names
    .map((n) => parseSegmentName(n, segmentBytes))
    .filter((s): s is SegmentId => s !== null)
    .sort(compareSegments);
  const out: SegmentGap[] = [];
  for (let i = 1; i < ids.length; i++) {
    const g = gapBetween(ids[i - 1]!, ids[i]!, segmentBytes);
    if (g) out.push(g);
  }
  return out;
}

/** One reading of the server's WAL insert position, with when it was taken. */
export interface LsnSample {
  atMs: number;
  lsn: bigint;
}

/**
 * How old the oldest WAL not yet archived is, in ms: 0 when the server's position is archived. The WAL
 * just past `archivedEnd` was written between the last sample that had not reached it and the first
 * that had; the earlier of the two is taken, so the figure errs long by at most one sampling interval.
 */
export function archiveLagMs(samples: readonly LsnSample[], archivedEnd: bigint | null, nowMs: number): number {
  const newest = samples.at(-1);
  if (!newest) return 0;
  if (archivedEnd !== null && newest.lsn <= archivedEnd) return 0;
  const i = archivedEnd === null ? 0 : samples.findIndex((s) => s.lsn > archivedEnd);
  const since = i > 0 ? samples[i - 1]!.atMs : samples[0]!.atMs;
  return Math.max(0, nowMs - since);
}

/** Samples older than the one the lag is measured from are no longer needed. */
export function pruneSamples(samples: LsnSample[], archivedEnd: bigint | null): LsnSample[] {
  if (archivedEnd === null) return samples;
  const i = samples.findIndex((s) => s.lsn > archivedEnd);
  if (i < 0) return samples.slice(-1);
  return samples.slice(Math.max(0, i - 1));
}

/**
 * archive_timeout, from the outside: close the current segment once the oldest unarchived WAL is half
 * the allowed lag old, so shipping it (the other half) keeps the archive within `archiveLagMs`. When
 * shipping a switched segment took longer than that (a loaded machine, a slow link: `shipMs`, the slowest
 * lately), earlier, down to a quarter of the lag. Not again before the last switch had as long to arrive.
 */
export function switchAfterMs(archiveLagMs: number, shipMs = 0): number {
  return Math.min(archiveLagMs / 2, Math.max(archiveLagMs / 4, archiveLagMs - 2 * shipMs));
}

export function shouldSwitch(lagMs: number, archiveLagMs: number, msSinceLastSwitch: number, shipMs = 0): boolean {
  const after = switchAfterMs(archiveLagMs, shipMs);
  return lagMs >= after && msSinceLastSwitch >= after;
}
