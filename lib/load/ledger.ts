/**
 * The write ledger: every write the load sends (a request whose template carries `{{token}}`), with its
 * client-made token, its sequence number (the request log index, which `{{seq}}` carries), and its fate
 * as the client saw it. After a failover the harness reads the tokens back from the new primary and the
 * checker (lib/measure/ledger.ts) puts every write in exactly one class.
 *
 * Columnar like the request log: 16 token bytes, a request index and a fate byte per write, so a run at
 * thousands of writes per second keeps no object per write. Scheduled and ack times are not copied:
 * they are the request log's scheduled time and scheduled time + latency.
 */
import { randomFillSync, randomBytes } from 'node:crypto';
import type { LedgerEntry, WriteOutcome } from '../measure/ledger.ts';
import type { RequestLog } from '../measure/request-log.ts';

export const WriteFate = {
  /** Not settled yet (in flight, or waiting for a connection). */
  pending: 0,
  /** Acknowledged: a 2xx/3xx answer in time. */
  ok: 1,
  /** Definitely not applied: never sent (late, dropped, expired in the queue), refused on connect, a 4xx, or a 5xx that says so. */
  failed: 2,
  /** May or may not have been applied: timed out after it went out, connection reset mid-request, a 5xx. */
  unknown: 3,
} as const;
export type WriteFateCode = (typeof WriteFate)[keyof typeof WriteFate];
const FATE_NAMES: ReadonlyArray<WriteOutcome | 'pending'> = ['pending', 'ok', 'failed', 'unknown'];

/**
 * A service that knows a failed write was not applied (its database refused it with an error, or it
 * could not reach the database at all) may say so with this header on its 5xx answer; the write then
 * counts as failed instead of unknown. Without it a 5xx is unknown: the commit may have happened.
 */
export const WRITE_NOT_APPLIED_HEADER = 'x-drill-write';
export const WRITE_NOT_APPLIED_VALUE = 'not-applied';

const TOKEN_BYTES = 16;
const TAG_BYTES = 4;

export class WriteLedger {
  /**
   * 8 hex digits that start every token of this ledger: a read-back finds the rows this load wrote, and
   * a row carrying the tag but no token of the ledger is `unexpected`, without scanning other runs' rows.
   */
  readonly tag: string;
  count = 0;
  /** Request log index of each write (its `{{seq}}`), in schedule order. */
  request: Uint32Array;
  fate: Uint8Array;
  /**
   * The token of write r is bytes [16r, 16r + 16) formatted as a UUID (version 4 layout). Capacity
   * beyond `count` is pre-filled with random bytes, so a push generates no randomness of its own.
   */
  tokenBytes: Uint8Array;
  private readonly tagBytes: Buffer;

  constructor(
    /** The request log the rows point into. */
    readonly log: RequestLog,
    initialCapacity = 1024,
    tag: Buffer = randomBytes(TAG_BYTES),
  ) {
    this.tagBytes = tag;
    this.tag = tag.toString('hex');
    this.request = new Uint32Array(initialCapacity);
    this.fate = new Uint8Array(initialCapacity);
    this.tokenBytes = randomFillSync(new Uint8Array(initialCapacity * TOKEN_BYTES));
  }

  /** Appends a write for request `index` (pending); returns its row. */
  push(index: number): number {
    if (this.count === this.request.length) this.grow();
    const r = this.count++;
    this.request[r] = index;
    this.fate[r] = WriteFate.pending;
    const b = r * TOKEN_BYTES;
    this.tokenBytes.set(this.tagBytes, b);
    // Version 4 and RFC 4122 variant bits, so a token looks like any other UUID to the service.
    this.tokenBytes[b + 6] = (this.tokenBytes[b + 6]! & 0x0f) | 0x40;
    this.tokenBytes[b + 8] = (this.tokenBytes[b + 8]! & 0x3f) | 0x80;
    return r;
  }

  settle(row: number, fate: WriteFateCode): void {
    this.fate[row] = fate;
  }

  tokenOf(row: number): string {
    const h = Buffer.from(this.tokenBytes.buffer, this.tokenBytes.byteOffset + row * TOKEN_BYTES, TOKEN_BYTES).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  fateOf(row: number): WriteOutcome | 'pending' {
    return FATE_NAMES[this.fate[row]!]!;
  }

  /** Run-relative ms the write was scheduled to go out (the intended send). */
  sentMs(row: number): number {
    return this.log.scheduledMs[this.request[row]!]!;
  }

  /** Run-relative ms its acknowledgement arrived; null unless it was acknowledged. */
  ackMs(row: number): number | null {
    if (this.fate[row] !== WriteFate.ok) return null;
    const i = this.request[row]!;
    return this.log.scheduledMs[i]! + this.log.latencyMs[i]!;
  }

  /** Rows [0, n) are all settled: the first pending row (or `upTo` when none before it is pending). */
  settledPrefix(upTo = this.count): number {
    for (let r = 0; r < upTo; r++) if (this.fate[r] === WriteFate.pending) return r;
    return upTo;
  }

  /** Row of the first write scheduled at or after `ms` (rows are in schedule order). */
  rowAt(ms: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sentMs(mid) < ms) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The earliest acknowledgement among writes sent at or after `fromMs`; null when none was acknowledged. */
  firstAckSince(fromMs: number): number | null {
    let first: number | null = null;
    for (let r = this.rowAt(fromMs); r < this.count; r++) {
      if (this.fate[r] !== WriteFate.ok) continue;
      const ack = this.ackMs(r);
      if (ack !== null && (first === null || ack < first)) first = ack;
    }
    return first;
  }

  /** Writes acknowledged among those scheduled at or after `fromMs`. */
  acknowledgedSince(fromMs: number): number {
    let n = 0;
    for (let r = this.rowAt(fromMs); r < this.count; r++) if (this.fate[r] === WriteFate.ok) n++;
    return n;
  }

  /**
   * Rows [from, to) as the checker's entries. Every row must be settled: a pending write has no fate
   * to classify, so the caller waits for the settled prefix to reach `to` first.
   */
  entries(from = 0, to = this.count): LedgerEntry[] {
    const out: LedgerEntry[] = new Array(Math.max(0, to - from));
    for (let r = from; r < to; r++) {
      const fate = this.fateOf(r);
      if (fate === 'pending') throw new Error(`write ledger row ${r} (seq ${this.request[r]}) is still pending`);
      out[r - from] = { seq: this.request[r]!, token: this.tokenOf(r), sentMs: this.sentMs(r), ackMs: this.ackMs(r), outcome: fate };
    }
    return out;
  }

  /** Counts by fate over rows [from, to). */
  counts(from = 0, to = this.count): Record<WriteOutcome | 'pending', number> {
    const c = [0, 0, 0, 0];
    for (let r = from; r < to; r++) c[this.fate[r]!]!++;
    return { pending: c[0]!, ok: c[1]!, failed: c[2]!, unknown: c[3]! };
  }

  private grow(): void {
    const cap = this.request.length * 2;
    const request = new Uint32Array(cap);
    request.set(this.request);
    const fate = new Uint8Array(cap);
    fate.set(this.fate);
    const tokenBytes = new Uint8Array(cap * TOKEN_BYTES);
    tokenBytes.set(this.tokenBytes);
    randomFillSync(tokenBytes, this.tokenBytes.length);
    this.request = request;
    this.fate = fate;
    this.tokenBytes = tokenBytes;
  }
}

export const WRITES_TSV_HEADER = 'seq\ttoken\tsent_ms\tack_ms\toutcome';

/**
 * The ledger as writes.tsv, next to requests.tsv in the run folder: one line per write, so the RPO can be
 * re-checked offline against any read-back of the database, by the harness or by an auditor's own query.
 */
export function writesTsv(ledger: WriteLedger): string {
  const lines: string[] = [WRITES_TSV_HEADER];
  for (let r = 0; r < ledger.count; r++) {
    const ack = ledger.ackMs(r);
    lines.push(
      `${ledger.request[r]}\t${ledger.tokenOf(r)}\t${ledger.sentMs(r).toFixed(3)}\t${ack === null ? '' : ack.toFixed(3)}\t${ledger.fateOf(r)}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Parses writes.tsv back into the checker's entries; a `pending` line (a crashed run) is refused. */
export function parseWritesTsv(text: string): LedgerEntry[] {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines[0] !== WRITES_TSV_HEADER)
    throw new Error(`not a writes.tsv (expected the header "${WRITES_TSV_HEADER.replace(/\t/g, '\\t')}")`);
  return lines.slice(1).map((l, k) => {
    const [seq, token, sent, ack, outcome] = l.split('\t');
    if (outcome !== 'ok' && outcome !== 'failed' && outcome !== 'unknown')
      throw new Error(`writes.tsv line ${k + 2}: outcome "${outcome}"`);
    return { seq: Number(seq), token: token!, sentMs: Number(sent), ackMs: ack === '' ? null : Number(ack), outcome };
  });
}
