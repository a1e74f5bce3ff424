/**
 * WAL positions, segment names and timeline history files, as PostgreSQL writes them. One place for both
 * readers: the restore's planner (which segments a point in time needs) and the shipper (which segment follows
 * which, how far the archive lags). Pure.
 *
 * A segment name is TTTTTTTTXXXXXXXXYYYYYYYY: timeline, then the segment number split in two at
 * 2^32 / segment size (256 segments per "log" of the default 16 MB segments). A server may be initdb'd with
 * another `wal_segment_size`, which is why every function takes the size, defaulting to 16 MB.
 */

export const SEGMENT_BYTES = 16 * 1024 * 1024;

export interface SegmentId {
  timeline: number;
  /** Counted from 0/0 in segments of the cluster's size. */
  segno: bigint;
}

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
export const HISTORY_FILE = /^[0-9A-F]{8}\.history$/;

const hex8 = (n: number | bigint) => n.toString(16).toUpperCase().padStart(8, '0');
/**
 * PostgreSQL's wal_segment_size is a power of two from 1 MB to 1 GB. Checked, because a callback such as
 * `names.map(parseSegmentName)` hands the array index in this place (index 0 was a division by zero mid-restore).
 */
function segmentSize(segmentBytes: number): bigint {
  if (!Number.isInteger(segmentBytes) || segmentBytes < 1 << 20 || segmentBytes > 1 << 30 || (segmentBytes & (segmentBytes - 1)) !== 0)
    throw new Error(`${segmentBytes} is not a WAL segment size (a power of two from 1 MB to 1 GB)`);
  return BigInt(segmentBytes);
}
const perLog = (segmentBytes: number) => 0x1_0000_0000n / segmentSize(segmentBytes);

/** `0/3000148` -> 0x3000148n. Throws on anything that is not an LSN. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new Error(`"${lsn}" is not a WAL position (expected hex/hex, like 0/3000148)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(b: bigint): string {
  return `${(b >> 32n).toString(16).toUpperCase()}/${(b & 0xffff_ffffn).toString(16).toUpperCase()}`;
}

/** The segment number holding an LSN. */
export function segmentNumberOf(lsn: string | bigint, segmentBytes = SEGMENT_BYTES): bigint {
  return (typeof lsn === 'bigint' ? lsn : parseLsn(lsn)) / segmentSize(segmentBytes);
}

export function segmentName(id: SegmentId, segmentBytes = SEGMENT_BYTES): string {
  const per = perLog(segmentBytes);
  return hex8(id.timeline) + hex8(id.segno / per) + hex8(id.segno % per);
}

export function parseSegmentName(name: string, segmentBytes = SEGMENT_BYTES): SegmentId | null {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return null;
  return { timeline: Number.parseInt(m[1]!, 16), segno: BigInt(`0x${m[2]}`) * perLog(segmentBytes) + BigInt(`0x${m[3]}`) };
}

/** The file name of the segment holding `lsn` on `timeline`, as `pg_walfile_name` gives it. */
export function walFileName(timeline: number, lsn: string, segmentBytes = SEGMENT_BYTES): string {
  return segmentName({ timeline, segno: segmentNumberOf(lsn, segmentBytes) }, segmentBytes);
}

/** The first byte after the segment: everything before it is in the segment or earlier ones. */
export function segmentEnd(id: SegmentId, segmentBytes = SEGMENT_BYTES): bigint {
  return (id.segno + 1n) * segmentSize(segmentBytes);
}

export const historyFileName = (timeline: number) => `${hex8(timeline)}.history`;

/** One line of a timeline's .history file: `parent<TAB>switchpoint<TAB>reason`; the parent ran until the switchpoint. */
export interface TimelineSwitch {
  parent: number;
  switchpoint: string;
}

/** Every switch on the way to the file's timeline, oldest first. Throws on a line that is not one. */
export function parseHistory(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const [parent, switchpoint] = t.split(/\s+/);
    if (!parent || !switchpoint || !/^\d+$/.test(parent)) throw new Error(`unreadable timeline history line "${t}"`);
    parseLsn(switchpoint);
    out.push({ parent: Number(parent), switchpoint });
  }
  return out;
}

/**
 * The switch into the file's own timeline (its last line), or null for a file that is empty or only partly
 * written: the shipper reads history files from a spool pg_receivewal may still be writing.
 */
export function lastSwitch(text: string): { parent: number; switchLsn: bigint } | null {
  let all: TimelineSwitch[];
  try {
    all = parseHistory(text);
  } catch {
    return null;
  }
  const last = all.at(-1);
  return last ? { parent: last.parent, switchLsn: parseLsn(last.switchpoint) } : null;
}

/** Timeline first, then segment number: the order in which an archiver that follows the server ships segments. */
function compareShipOrder(a: SegmentId, b: SegmentId): number {
  if (a.timeline !== b.timeline) return a.timeline - b.timeline;
  return a.segno === b.segno ? 0 : a.segno < b.segno ? -1 : 1;
}

/**
 * The missing segments the archiver may still ship: those after the newest archived one in shipping order. The
 * others are holes below a segment that did arrive, which no waiting fills. By segment number alone, a restore
 * right after a failover took the new timeline's segment for a hole: the old timeline's last segment, with the
 * same number, was already archived (the lab drill's restore-after-drop after fail-over-primary, 2026-12-04).
 */
export function stillToArrive(missing: string[], archived: string[], segmentBytes = SEGMENT_BYTES): string[] {
  let newest: SegmentId | null = null;
  for (const name of archived) {
    const s = parseSegmentName(name, segmentBytes);
    if (s && (newest === null || compareShipOrder(s, newest) > 0)) newest = s;
  }
  return missing.filter((name) => {
    const s = parseSegmentName(name, segmentBytes);
    return s !== null && (newest === null || compareShipOrder(s, newest) > 0);
  });
}
