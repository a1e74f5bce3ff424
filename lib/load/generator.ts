import { randomUUID } from 'node:crypto';
import { Pool, type Dispatcher } from 'undici';
import type { Clock } from '../measure/clock.ts';
import { summarize } from '../measure/summary.ts';
import {
  createRequestLog,
  Outcome,
  type LoadSummary,
  type OutcomeCode,
  type RequestLog,
  type SecondStats,
} from '../measure/request-log.ts';
import { classifyError, classifyStatus, writeFateOfError, writeFateOfStatus } from './outcome.ts';
import { WriteFate, WriteLedger, type WriteFateCode } from './ledger.ts';
import type { FileLedgerEntry, LogLedgerEntry } from '../measure/data-classes.ts';
import { attachmentBlobName, attachmentBody, FileLedger, sha256Hex } from './class-ledgers.ts';
import { SecondEmitter } from './seconds.ts';
import { httpClientIsWarm, warmUpHttpClient } from './warmup.ts';
import { Slot, SlotList, SlotQueue, type SlotOwner } from './slots.ts';
import { compileTemplates, fillBody, validateProfile, WeightedPicker, type CompiledTemplate } from './templates.ts';
import type { LoadProfile } from './types.ts';

export interface LoadGeneratorOptions {
  /** Most requests sent in one timer tick before yielding to I/O, so a late tick cannot starve responses (default 1000). */
  maxBatch?: number;
  /** Longest pause between housekeeping passes (timeouts, completed seconds, stop), ms (default 20). */
  tickMs?: number;
}

/**
 * Open-model HTTP load: request i is scheduled at t0 + i/rate on the run's clock and sent when its
 * time comes, whatever the service is doing. Latency and timeout both count from the scheduled time,
 * so a stalled service shows up as latency of every request that should have gone out during the
 * stall (no coordinated omission). A request whose turn comes while maxInFlight requests are out is
 * not sent and counts as dropped. Errors of the service never throw; they are outcomes in the log.
 */
export class LoadGenerator {
  /** The live request log: every scheduled request in schedule order; `pending` while in flight. */
  readonly log: RequestLog;
  /** Every write (a request whose template carries `{{token}}`): its token, seq and fate, live. */
  readonly ledger: WriteLedger;
  /** Every attachment upload (LoadProfile.attachments): blob name, sha256 of its bytes, fate; empty when none. */
  readonly files = new FileLedger();
  /** The token of each file ledger row, which the service logs for the upload. */
  private readonly fileTokens: string[] = [];
  /** Request index -> the replica that answered it, for ledgered requests that got an answer (logs.tsv's replica). */
  private readonly answeredBy = new Map<number, string>();

  private readonly requestLog: ReturnType<typeof createRequestLog>;
  private readonly pool: Pool;
  private readonly templates: CompiledTemplate[];
  private readonly picker: WeightedPicker;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly maxBatch: number;
  private readonly tickMs: number;
  private readonly free: Slot[] = [];
  private readonly unsettled = new SlotList();
  /**
   * Requests waiting for a connection. undici would queue them itself, but a request it has queued
   * can only be cancelled by destroying the connection it is handed next: during an outage that is
   * a new TCP connection to the service for every request that timed out without ever being sent.
   */
  private readonly waiting: SlotQueue;
  /** Requests handed to undici: at most one per connection, so undici never has to queue. */
  private active = 0;
  private sending = false;
  private readonly secondsOut: SecondEmitter;
  /** Handed to every slot; bound once so no request creates a closure of ours. */
  private readonly owner: SlotOwner = {
    responded: (slot) => this.release(slot, classifyStatus(slot.status), writeFateOfStatus(slot.status, slot.notApplied)),
    failed: (slot, err) => this.release(slot, classifyError(err), writeFateOfError(err)),
  };

  private started = false;
  /** Scheduling: from start() (or the end of the warm-up) until stop() or the end of the duration. */
  private running = false;
  private begun = false;
  private stopping: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  private timeout: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private t0 = 0;
  /** Index of the next request to schedule. */
  private next = 0;
  /** Scheduling ends here (exclusive), or where stop() was called. */
  private endMs = Infinity;
  private stopMs = 0;

  constructor(
    readonly profile: LoadProfile,
    private readonly clock: Clock,
    options: LoadGeneratorOptions = {},
  ) {
    const base = validateProfile(profile);
    this.templates = compileTemplates(profile, base);
    const weights = profile.requests.map((r) => r.weight);
    const share = profile.attachments?.share ?? 0;
    if (share > 0) {
      // Weighted so uploads are `share` of all requests: a / (total + a) = share.
      const total = weights.reduce((a, b) => a + b, 0);
      weights.push((share * total) / (1 - share));
      const path = `${base.pathname.replace(/\/+$/, '')}/orders/`;
      this.templates.push({
        method: 'PUT',
        path,
        headers: { 'content-type': 'application/octet-stream' },
        fixed: null,
        literals: [],
        codes: [],
        tokened: false,
        attachment: true,
      });
    }
    this.picker = new WeightedPicker(weights);
    this.intervalMs = 1000 / profile.rate;
    this.timeoutMs = profile.timeoutMs;
    this.maxBatch = options.maxBatch ?? 1000;
    this.tickMs = options.tickMs ?? 20;
    this.requestLog = createRequestLog(Math.min(1 << 20, Math.max(4096, Math.ceil(profile.rate * 60))));
    this.log = this.requestLog;
    this.ledger = new WriteLedger(this.log);
    this.secondsOut = new SecondEmitter(this.requestLog, clock);
    for (let k = 0; k < profile.maxInFlight; k++) this.free.push(new Slot(this.owner));
    this.waiting = new SlotQueue(profile.maxInFlight);
    void warmUpHttpClient();
    // undici's own timers are backstops only: ours, counted from the scheduled send, fire first.
    const undiciTimeout = Math.ceil(profile.timeoutMs);
    this.pool = new Pool(base.origin, {
      connections: profile.connections,
      pipelining: 1,
      headersTimeout: undiciTimeout,
      bodyTimeout: undiciTimeout,
      connectTimeout: undiciTimeout,
    });
  }

  /**
   * Begins scheduling: t0 is now, or, the first time in a process, once undici's one-time warm-up is
   * done (tens of ms; see warmup.ts), so no request is scheduled while the client is still cold.
   * With `durationMs`, the last request scheduled is the last one before t0 + durationMs (exactly
   * rate * durationMs / 1000 of them); stop() is still what waits for the answers and closes the
   * connections. Calling start() again, or after stop(), does nothing.
   */
  start(durationMs = Infinity): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.running = true;
    if (httpClientIsWarm()) this.begin(durationMs);
    else void warmUpHttpClient().then(() => this.running && this.begin(durationMs));
  }

  private begin(durationMs: number): void {
    this.begun = true;
    this.t0 = this.clock.now();
    this.endMs = this.t0 + durationMs;
    this.secondsOut.begin(this.t0);
    this.tick();
  }

  /**
   * Stops scheduling (requests already due are still sent), waits for every request in flight until
   * it answers or its timeout passes, emits the remaining seconds and closes the connections.
   * Afterwards the log holds no `pending` outcome and no timer or socket of the generator is left.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Called once per completed second (every request scheduled in it has its fate), in order. */
  onSecond(cb: (s: SecondStats) => void): void {
    this.secondsOut.listeners.push(cb);
  }

  /** Every second emitted so far. */
  seconds(): SecondStats[] {
    return this.secondsOut.emitted.slice();
  }

  /** Requests waiting for a connection or handed to undici and not yet let go of by it (what maxInFlight caps). */
  get inFlight(): number {
    return this.profile.maxInFlight - this.free.length;
  }

  /** Requests scheduled in the last `windowMs` whose fate is known, for live views. */
  window(windowMs: number): LoadSummary {
    const now = this.clock.now();
    return summarize(this.log, now - windowMs, now);
  }

  private async shutdown(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    if (wasRunning && this.begun) {
      const now = this.clock.now();
      while (this.pump(now, Infinity));
      this.stopMs = Math.min(now, this.endMs);
      if (this.unsettled.head !== null) {
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
      }
    }
    this.clearTimers();
    if (this.begun) this.flushSeconds(true);
    // Releases requests that timed out while still queued inside undici, and closes the sockets.
    await this.pool.destroy();
  }

  private readonly tick = (): void => {
    this.timeout = null;
    this.immediate = null;
    const more = this.running && this.pump(this.clock.now(), this.maxBatch);
    this.sweep(this.clock.now());
    this.flushSeconds(false);
    if (!this.running && this.unsettled.head === null) {
      this.drained?.();
      return;
    }
    this.arm(more);
  };

  private arm(more: boolean): void {
    const now = this.clock.now();
    let wait = more ? 0 : this.tickMs;
    if (this.running && this.nextAt() < this.endMs) wait = Math.min(wait, this.nextAt() - now);
    const head = this.unsettled.head;
    if (head !== null) wait = Math.min(wait, this.log.scheduledMs[head.index]! + this.timeoutMs - now);
    // Node timers have 1 ms granularity: sleep whole milliseconds, and issue everything due on waking.
    if (wait <= 0) this.immediate = setImmediate(this.tick);
    else this.timeout = setTimeout(this.tick, Math.max(1, Math.floor(wait)));
  }

  private clearTimers(): void {
    if (this.timeout) clearTimeout(this.timeout);
    if (this.immediate) clearImmediate(this.immediate);
    this.timeout = null;
    this.immediate = null;
  }

  /** Scheduled time of the next request; computed from its index so rounding never accumulates. */
  private nextAt(): number {
    return this.t0 + this.next * this.intervalMs;
  }

  /** Sends every request scheduled at or before `now`, at most `limit`; true when more are due. */
  private pump(now: number, limit: number): boolean {
    for (let n = 0; n < limit; n++) {
      const at = this.nextAt();
      if (at > now || at >= this.endMs) return false;
      this.next++;
      this.issue(at, now);
    }
    const at = this.nextAt();
    return at <= now && at < this.endMs;
  }

  private issue(at: number, now: number): void {
    const tpl = this.picker.next();
    const i = this.requestLog.push(at, tpl);
    const t = this.templates[tpl]!;
    const row = t.tokened ? this.ledger.push(i) : -1;
    const fileRow = t.attachment ? this.pushFile(i, at) : -1;
    if (now - at >= this.timeoutMs) {
      // Its whole timeout passed before it could go out (the harness itself was stalled).
      this.record(i, Outcome.timeout, this.timeoutMs);
      this.settleRows(i, row, fileRow, WriteFate.failed);
      return;
    }
    const slot = this.free.pop();
    if (slot === undefined) {
      this.log.outcome[i] = Outcome.dropped;
      this.settleRows(i, row, fileRow, WriteFate.failed);
      return;
    }
    slot.begin(i, row, fileRow);
    this.unsettled.append(slot);
    if (this.active < this.profile.connections) this.dispatch(slot);
    else this.waiting.push(slot);
  }

  private dispatch(slot: Slot): void {
    this.active++;
    slot.dispatched = true;
    const t = this.templates[this.log.template[slot.index]!]!;
    this.pool.dispatch(t.fixed ?? this.optionsFor(t, slot), slot);
  }

  private optionsFor(t: CompiledTemplate, slot: Slot): Dispatcher.DispatchOptions {
    if (t.attachment) {
      const token = this.fileTokens[slot.fileRow]!;
      return { path: `${t.path}${token}/attachment`, method: t.method, headers: t.headers, body: attachmentBody(token, slot.index) };
    }
    const token = slot.row >= 0 ? this.ledger.tokenOf(slot.row) : randomUUID;
    return { path: t.path, method: t.method, headers: t.headers, body: fillBody(t, slot.index, token) };
  }

  /** Times out, from the head of the schedule-ordered list, every request whose deadline passed. */
  private sweep(now: number): void {
    for (let s = this.unsettled.head; s !== null; s = this.unsettled.head) {
      if (this.log.scheduledMs[s.index]! + this.timeoutMs > now) return;
      if (s.dispatched) {
        this.unsettled.remove(s);
        s.unsettled = false;
        this.record(s.index, Outcome.timeout, this.timeoutMs);
        // It went out (or was about to): the service may have applied it.
        this.settleRows(s.index, s.row, s.fileRow, WriteFate.unknown);
        s.abort();
      } else {
        // Waiting slots time out in schedule order too, so this one is at the front of the queue.
        this.expire(this.waiting.shift()!);
      }
    }
  }

  /** Times out a request that never left the wait queue. */
  private expire(slot: Slot): void {
    this.unsettled.remove(slot);
    slot.unsettled = false;
    this.record(slot.index, Outcome.timeout, this.timeoutMs);
    this.settleRows(slot.index, slot.row, slot.fileRow, WriteFate.failed);
    this.recycle(slot);
  }

  /** undici's last callback for a slot's request: settle it if the sweep has not, and free the slot. */
  private release(slot: Slot, outcome: OutcomeCode, fate: WriteFateCode): void {
    if (slot.index < 0 || !slot.dispatched) return;
    if (slot.replica !== '') this.answeredBy.set(slot.index, slot.replica);
    if (slot.unsettled) {
      const latency = this.clock.now() - this.log.scheduledMs[slot.index]!;
      // An answer that arrives after the deadline but before the sweep noticed is still a timeout.
      const late = latency >= this.timeoutMs;
      if (late) this.record(slot.index, Outcome.timeout, this.timeoutMs);
      else this.record(slot.index, outcome, latency);
      // The client gave up on a late answer, so for the ledger it is unknown whatever it said.
      this.settleRows(slot.index, slot.row, slot.fileRow, late ? WriteFate.unknown : fate);
      this.unsettled.remove(slot);
      slot.unsettled = false;
    }
    this.active--;
    this.recycle(slot);
    this.sendWaiting();
  }

  /**
   * Hands waiting requests to free connections. Runs inside undici's callbacks, because waiting for
   * the next tick would add up to a tick to their measured latency; a request undici fails at once
   * re-enters here through release(), and the guard keeps that a loop instead of a recursion.
   */
  private sendWaiting(): void {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.active < this.profile.connections && this.waiting.size > 0) {
        const next = this.waiting.shift()!;
        // Already past its deadline (the sweep frees connections in bursts): do not open a connection for it.
        if (this.clock.now() - this.log.scheduledMs[next.index]! >= this.timeoutMs) this.expire(next);
        else this.dispatch(next);
      }
    } finally {
      this.sending = false;
    }
  }

  /** A new attachment upload for request `i`: its token, blob name and the sha256 of the bytes it will send. */
  private pushFile(i: number, at: number): number {
    const token = randomUUID();
    this.fileTokens.push(token);
    return this.files.push({ seq: i, name: attachmentBlobName(token), sha256: sha256Hex(attachmentBody(token, i)), sentMs: at });
  }

  private settleRows(i: number, row: number, fileRow: number, fate: WriteFateCode): void {
    if (row >= 0) this.ledger.settle(row, fate);
    if (fileRow >= 0) {
      const outcome = fate === WriteFate.ok ? 'ok' : fate === WriteFate.failed ? 'failed' : 'unknown';
      // Run-relative, as the write ledger's ack times are.
      this.files.settle(fileRow, outcome, this.log.scheduledMs[i]! + this.log.latencyMs[i]!);
    }
  }

  /**
   * The file and log ledgers as files.tsv and logs.tsv hold them. A log line is expected for every request
   * carrying a token the service logs: each write (its body's token) and each upload (its path's); its replica
   * is the one that answered (x-drill-replica), '' for a request no answer came back to.
   */
  classLedgers(): { files: FileLedgerEntry[]; logs: LogLedgerEntry[] } {
    const files = this.files.entries();
    const logs: LogLedgerEntry[] = this.ledger.entries(0, this.ledger.settledPrefix()).map((e) => ({
      seq: e.seq,
      token: e.token,
      replica: this.answeredBy.get(e.seq) ?? '',
      sentMs: e.sentMs,
      ackMs: e.ackMs,
      outcome: e.outcome,
    }));
    files.forEach((f, k) => {
      const replica = this.answeredBy.get(f.seq) ?? '';
      logs.push({ seq: f.seq, token: this.fileTokens[k]!, replica, sentMs: f.sentMs, ackMs: f.ackMs, outcome: f.outcome });
    });
    logs.sort((a, b) => a.seq - b.seq);
    return { files, logs };
  }

  private recycle(slot: Slot): void {
    slot.free();
    this.free.push(slot);
  }

  private record(i: number, outcome: OutcomeCode, latencyMs: number): void {
    this.log.outcome[i] = outcome;
    this.log.latencyMs[i] = latencyMs;
  }

  /** Emits every second whose requests have all been scheduled and settled; `final` also the last, partial one. */
  private flushSeconds(final: boolean): void {
    // Every request scheduled before `until` is in the log; once scheduling is over, nothing else comes.
    const until = this.running ? Math.min(this.nextAt(), this.endMs) : this.stopMs;
    const over = !this.running || this.nextAt() >= this.endMs;
    this.secondsOut.flush(until, over, final);
  }
}
