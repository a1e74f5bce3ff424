/**
 * WAL positions and segment names as the WAL shipper reasons about them: which segment follows which,
 * where a segment ends, and how old the oldest WAL not yet in the archive is. Pure functions.
 *
 * A segment name is TTTTTTTTXXXXXXXXYYYYYYYY: timeline, then the segment number split in two at
 * 2^32 / segment size (256 segments per "log" of 16 MB segments).
 */

export interface SegmentId {
  timeline: number;
  segno: bigint;
}

export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
export const HISTORY_FILE = /^[0-9A-F]{8}\.history$/;

function perLog(segmentBytes: number): bigint {
  return 0x1_0000_0000n / BigInt(segmentBytes);
}

export function parseSegment(name: string, segmentBytes = DEFAULT_SEGMENT_BYTES): SegmentId | null {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return null;
  return { timeline: parseInt(m[1]!, 16), segno: BigInt(`0x${m[2]}`) * perLog(segmentBytes) + BigInt(`0x${m[3]}`) };
}

const hex8 = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');

export function segmentName(id: SegmentId, segmentBytes = DEFAULT_SEGMENT_BYTES): string {
  const per = perLog(segmentBytes);
  return hex8(id.timeline) + hex8(id.segno / per) + hex8(id.segno % per);
}

/** `16/B374D848` -> bytes. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`"${lsn}" is not an LSN`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(b: bigint): string {
  return `${(b >> 32n).toString(16).toUpperCase()}/${(b & 0xffff_ffffn).toString(16).toUpperCase()}`;
}

/** The first byte after the segment: everything before it is in the segment or earlier ones. */
export function segmentEnd(id: SegmentId, segmentBytes = DEFAULT_SEGMENT_BYTES): bigint {
  return (id.segno + 1n) * BigInt(segmentBytes);
}

export function segnoOf(lsn: bigint, segmentBytes = DEFAULT_SEGMENT_BYTES): bigint {
  return lsn / BigInt(segmentBytes);
}

/** Orders segments by position, then timeline (a new timeline's first segment shares its number with the old one's last). */
export function compareSegments(a: SegmentId, b: SegmentId): number {
  return a.segno === b.segno ? a.timeline - b.timeline : a.segno < b.segno ? -1 : 1;
}

/** Newest first on the later timeline, then by position: the order in which a followed history goes on. */
export function compareFollowed(a: SegmentId, b: SegmentId): number {
  return a.timeline === b.timeline ? compareSegments(a, b) : a.timeline - b.timeline;
}

/** The switch into a timeline, from the last line of its history file (`parentTLI<TAB>switchpoint<TAB>reason`). */
export function parseHistory(text: string): { parent: number; switchLsn: bigint } | null {
  const lines = text.split('\n').filter((l) => /^\s*\d/.test(l));
  const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(lines.at(-1) ?? '');
  return m ? { parent: Number(m[1]), switchLsn: parseLsn(m[2]!) } : null;
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
export function gapBetween(prev: SegmentId | null, next: SegmentId, segmentBytes = DEFAULT_SEGMENT_BYTES): SegmentGap | null {
  if (prev === null || next.segno <= prev.segno + 1n) return null;
  const first = { timeline: next.timeline, segno: prev.segno + 1n };
  const last = { timeline: next.timeline, segno: next.segno - 1n };
  return { from: segmentName(first, segmentBytes), to: segmentName(last, segmentBytes), count: Number(next.segno - prev.segno - 1n) };
}

/**
 * What a timeline switch leaves out of the archive. The new timeline's first segment holds the parent's
 * WAL up to the switch, so the parent is needed through the segment before it; the new timeline from the
 * switch segment on. A switch behind the archived point (a point-in-time restore to an earlier moment)
 * needs nothing more of the parent.
 */
export function switchGaps(
  prev: SegmentId | null,
  switchLsn: bigint,
  first: SegmentId,
  segmentBytes = DEFAULT_SEGMENT_BYTES,
): SegmentGap[] {
  const at = segnoOf(switchLsn, segmentBytes);
  const out: SegmentGap[] = [];
  const span = (timeline: number, from: bigint, to: bigint) => ({
    from: segmentName({ timeline, segno: from }, segmentBytes),
    to: segmentName({ timeline, segno: to }, segmentBytes),
    count: Number(to - from + 1n),
  });
  if (prev !== null && prev.segno + 1n <= at - 1n) out.push(span(prev.timeline, prev.segno + 1n, at - 1n));
  if (first.segno > at) out.push(span(first.timeline, at, first.segno - 1n));
  return out;
}

/** Gaps in a sorted or unsorted list of archived segment names (history files ignored). */
export function gapsIn(names: string[], segmentBytes = DEFAULT_SEGMENT_BYTES): SegmentGap[] {
  const ids = names
    .map((n) => parseSegment(n, segmentBytes))
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
