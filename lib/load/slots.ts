import type { Dispatcher } from 'undici';
import { TIMED_OUT } from './outcome.ts';
import { WRITE_NOT_APPLIED_HEADER, WRITE_NOT_APPLIED_VALUE } from './ledger.ts';

/** What a slot reports back to; implemented by the generator. */
export interface SlotOwner {
  /** The response ended (body fully read and discarded); `slot.status` holds the status code. */
  responded(slot: Slot): void;
  /** undici gave up on the request: socket error, its own timeout, or our abort. */
  failed(slot: Slot, err: Error): void;
}

/**
 * One in-flight request, and its undici dispatch handler. There are exactly maxInFlight slots, made
 * once and reused, so sending a request allocates no handler object and no closure of ours.
 *
 * It uses undici's older handler callbacks (onConnect/onHeaders/onData/onComplete/onError) on
 * purpose: undici calls those directly, while a handler with the newer onRequestStart/onResponse*
 * methods gets wrapped in an UnwrapHandler and a controller per request and has its headers parsed
 * into an object we never read.
 *
 * A slot handed to undici stays taken until undici lets go of the request (its last callback), even
 * when the fate is already in the log: a slot reused before that would receive the old callbacks.
 */
export class Slot implements Dispatcher.DispatchHandler {
  /** Log index of the request using this slot; -1 when free. */
  index = -1;
  /** Write ledger row of the request, or -1 when it is not a write the ledger follows. */
  row = -1;
  /** File ledger row of an attachment upload, or -1. */
  fileRow = -1;
  status = 0;
  /** A 5xx answer to a ledger write carried the service's "not applied" mark. */
  notApplied = false;
  /** The replica that answered a ledgered request (its x-drill-replica header), for logs.tsv; '' when none said. */
  replica = '';
  /** Set while the request's fate is still unknown; such slots are linked in schedule order. */
  unsettled = false;
  /** Handed to undici (rather than waiting in the generator's queue for a free connection). */
  dispatched = false;
  prev: Slot | null = null;
  next: Slot | null = null;
  private abortFn: ((err?: Error) => void) | null = null;

  constructor(private readonly owner: SlotOwner) {}

  begin(index: number, row = -1, fileRow = -1): void {
    this.index = index;
    this.row = row;
    this.fileRow = fileRow;
    this.status = 0;
    this.notApplied = false;
    this.replica = '';
    this.unsettled = true;
    this.dispatched = false;
    this.abortFn = null;
  }

  /** Give up on the request now if undici has it on a connection, or as soon as it does. */
  abort(): void {
    this.abortFn?.(TIMED_OUT);
  }

  free(): void {
    this.index = -1;
    this.row = -1;
    this.fileRow = -1;
    this.dispatched = false;
    this.abortFn = null;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (!this.unsettled) abort(TIMED_OUT);
    else this.abortFn = abort;
  }

  onHeaders(statusCode: number, headers: Buffer[]): boolean {
    this.status = statusCode;
    // Only a failed write needs its headers read; every other answer skips this.
    if (statusCode >= 500 && this.row >= 0) this.notApplied = carriesNotApplied(headers);
    // Whose log file holds the line of a ledgered request: only those pay for the header scan.
    if (this.row >= 0 || this.fileRow >= 0) this.replica = headerValue(headers, REPLICA_HEADER) ?? '';
    return true;
  }

  onData(): boolean {
    return true;
  }

  onComplete(): void {
    this.owner.responded(this);
  }

  onError(err: Error): void {
    this.owner.failed(this, err);
  }
}

/** The lab service names itself in every answer (service.ts); a service that does not leaves logs.tsv's replica empty. */
export const REPLICA_HEADER = 'x-drill-replica';

function headerValue(raw: Buffer[], lowerName: string): string | null {
  for (let k = 0; k + 1 < raw.length; k += 2) {
    const name = raw[k]!;
    if (name.length === lowerName.length && name.toString('latin1').toLowerCase() === lowerName)
      return raw[k + 1]!.toString('latin1').trim();
  }
  return null;
}

function carriesNotApplied(raw: Buffer[]): boolean {
  for (let k = 0; k + 1 < raw.length; k += 2) {
    const name = raw[k]!;
    if (name.length === WRITE_NOT_APPLIED_HEADER.length && name.toString('latin1').toLowerCase() === WRITE_NOT_APPLIED_HEADER) {
      return raw[k + 1]!.toString('latin1').trim().toLowerCase() === WRITE_NOT_APPLIED_VALUE;
    }
  }
  return false;
}

/**
 * Unsettled slots in schedule order. Requests are sent in schedule order and share one timeout, so
 * deadlines grow along the list: the timeout sweep only ever looks at the head.
 */
export class SlotList {
  head: Slot | null = null;
  tail: Slot | null = null;

  append(s: Slot): void {
    s.prev = this.tail;
    s.next = null;
    if (this.tail) this.tail.next = s;
    else this.head = s;
    this.tail = s;
  }

  remove(s: Slot): void {
    if (s.prev) s.prev.next = s.next;
    else this.head = s.next;
    if (s.next) s.next.prev = s.prev;
    else this.tail = s.prev;
    s.prev = null;
    s.next = null;
  }
}

/** Slots waiting for a free connection, first in first out; a fixed ring, as slots are finite. */
export class SlotQueue {
  private readonly ring: Array<Slot | null>;
  private head = 0;
  size = 0;

  constructor(capacity: number) {
    this.ring = new Array<Slot | null>(capacity).fill(null);
  }

  push(s: Slot): void {
    this.ring[(this.head + this.size++) % this.ring.length] = s;
  }

  peek(): Slot | null {
    return this.size === 0 ? null : this.ring[this.head]!;
  }

  shift(): Slot | null {
    if (this.size === 0) return null;
    const s = this.ring[this.head]!;
    this.ring[this.head] = null;
    this.head = (this.head + 1) % this.ring.length;
    this.size--;
    return s;
  }
}
