/**
 * The lab's log shipper seen from outside (daemon/log-shipper.ts is the shipper itself): how far behind it
 * is, for `drill lab status`, and a shipping pass asked for now, for a drill that measures the logs class
 * after recovery. Waiting out one logShipInterval instead would cost up to the whole interval (60 s by
 * default) and still not know whether the pass that followed shipped everything; asking for a pass and
 * waiting until every line pending at the ask is in Blob is both faster and exact.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessUnder, stateLetter } from '../util/proc.ts';
import { completeLinesLength, DEFAULT_LOG_SHIP_INTERVAL_MS, parseLogFileName, type RequestLogLine } from './log-ship.ts';
import { labPaths } from './paths.ts';
import { readConfig, readDaemonState, readJson } from './state.ts';

/** service-logs/shipper.json, written by the shipper after every pass. */
export interface ShipperState {
  pid: number;
  intervalMs: number;
  startedAt: string;
  /** When the last pass began, and whether it got through every file. */
  lastPassAt: string | null;
  lastPassOk: boolean | null;
  /** When a segment was last uploaded. */
  lastShippedAt: string | null;
  lastError: string | null;
  /** Rotated request-log files deleted once shipped, since this shipper started. */
  rotatedAway: number;
}

export const shipperStatePath = (labDir: string) => join(labPaths(labDir).serviceLogs.dir, 'shipper.json');

/** What is written and not yet shipped: per file, the offset shipped to and the end of its complete lines now. */
async function pending(labDir: string): Promise<{ file: string; shippedTo: number; completeTo: number; oldestTs: string | null }[]> {
  const p = labPaths(labDir);
  const shipped = (await readJson<Record<string, number>>(p.serviceLogs.shipState)) ?? {};
  const names = (await readdir(p.serviceLogs.dir).catch(() => [] as string[])).filter((n) => parseLogFileName(n) !== null);
  const out = [];
  for (const file of names) {
    const from = shipped[file] ?? 0;
    const fh = await open(join(p.serviceLogs.dir, file), 'r').catch(() => null);
    // Gone: a rotated file the shipper deleted, after shipping all of it.
    if (!fh) continue;
    try {
      const size = (await fh.stat()).size;
      if (size <= from) {
        out.push({ file, shippedTo: from, completeTo: from, oldestTs: null });
        continue;
      }
      // Only the ends: a shipper stopped for hours leaves a long backlog, and a line is far shorter than this.
      const span = Math.min(size - from, 64 * 1024);
      const tail = Buffer.alloc(span);
      const got = (await fh.read(tail, 0, span, size - span)).bytesRead;
      const lastNewline = completeLinesLength(tail.subarray(0, got));
      const completeTo = lastNewline > 0 ? size - span + lastNewline : from;
      let oldestTs: string | null = null;
      if (completeTo > from) {
        const head = Buffer.alloc(span);
        const n = (await fh.read(head, 0, span, from)).bytesRead;
        try {
          oldestTs = (JSON.parse(head.subarray(0, Math.max(0, head.subarray(0, n).indexOf(0x0a))).toString('utf8')) as RequestLogLine).ts;
        } catch {
          // A line that does not parse still waits to be shipped; its age is unknown.
        }
      }
      out.push({ file, shippedTo: from, completeTo, oldestTs });
    } finally {
      await fh.close();
    }
  }
  return out;
}

export interface LogShippingStatus {
  /** The shipper's PID while it runs (the daemon's record, checked in /proc), else null. */
  pid: number | null;
  /** running; stopped: its process is SIGSTOPped (state T), so nothing ships; down: no process. */
  state: 'running' | 'stopped' | 'down';
  restarts: number;
  lastExit: string | null;
  intervalSeconds: number;
  lastPassAt: string | null;
  lastPassOk: boolean | null;
  lastShippedAt: string | null;
  lastError: string | null;
  /** Complete request-log lines written and not shipped, in bytes, and how long the oldest has waited (0 when none). */
  pendingBytes: number;
  lagSeconds: number | null;
}

/** The log shipper as the daemon's record, its state file and the request logs say; null when the lab never had one. */
export async function logShippingStatus(labDir: string, daemonAlive: boolean): Promise<LogShippingStatus | null> {
  const p = labPaths(labDir);
  const [daemon, config, s] = await Promise.all([
    readDaemonState(p.daemonState),
    readConfig(p.config),
    readJson<ShipperState>(shipperStatePath(labDir)),
  ]);
  const view = daemon?.logShipper;
  if (!view && !s) return null;
  const pid = view?.pid ?? null;
  const alive = pid !== null && daemonAlive && (await isProcessUnder(pid, p.dir));
  const files = await pending(labDir);
  const now = Date.now();
  let pendingBytes = 0;
  let oldest: number | null = null;
  let unknownAge = false;
  for (const f of files) {
    pendingBytes += f.completeTo - f.shippedTo;
    if (f.completeTo > f.shippedTo) {
      if (f.oldestTs === null) unknownAge = true;
      else oldest = Math.min(oldest ?? Infinity, Date.parse(f.oldestTs));
    }
  }
  const letter = alive ? await stateLetter(pid!) : null;
  return {
    pid: alive ? pid : null,
    state: !alive ? 'down' : letter === 'T' || letter === 't' ? 'stopped' : 'running',
    restarts: view?.restarts ?? 0,
    lastExit: view?.lastExit ?? null,
    intervalSeconds: (config?.logShipIntervalMs ?? s?.intervalMs ?? DEFAULT_LOG_SHIP_INTERVAL_MS) / 1000,
    lastPassAt: s?.lastPassAt ?? null,
    lastPassOk: s?.lastPassOk ?? null,
    lastShippedAt: s?.lastShippedAt ?? null,
    lastError: s?.lastError ?? null,
    pendingBytes,
    lagSeconds: oldest !== null ? Math.max(0, Math.round((now - oldest) / 100) / 10) : unknownAge ? null : 0,
  };
}

/** What is wrong with the shipping, for `drill lab status`'s problems (the caller names the part). */
export function shippingProblems(s: LogShippingStatus | null): string[] {
  if (!s) return [];
  const out: string[] = [];
  if (s.state === 'down')
    out.push(
      `the log shipper is not running${s.lastExit ? ` (last exit: ${s.lastExit})` : ''}: request-log lines written now are not shipped until it runs again`,
    );
  if (s.state === 'stopped')
    out.push(`the log shipper (pid ${s.pid}) is stopped (SIGSTOP): nothing ships until it is continued (kill -CONT ${s.pid})`);
  const allowed = shippingLagAllowedSeconds(s.intervalSeconds);
  if (s.lagSeconds !== null && s.lagSeconds > allowed)
    out.push(
      `request-log lines wait ${s.lagSeconds}s to be shipped (interval ${s.intervalSeconds}s, allowed ${allowed}s), ${s.pendingBytes} bytes pending${s.lastError ? `; last error: ${s.lastError}` : ''}`,
    );
  return out;
}

/** When lag is a problem: a line waits up to one interval plus a pass that can take seconds on a loaded machine. */
export function shippingLagAllowedSeconds(intervalSeconds: number): number {
  return 2 * intervalSeconds + 5;
}

export interface ShipNowOutcome {
  /** Every complete line written before the ask is in Blob. */
  shipped: boolean;
  /** What happened, in a sentence: how long it took, or what was still pending when the wait ended and why. */
  detail: string;
}

/**
 * Asks the running shipper for a pass now (SIGUSR2) and waits until every complete line written before the
 * ask is shipped, at most `timeoutMs`. Never throws for a shipper that is down, stopped or failing: the
 * caller measures what reached Blob either way, and says why more did not.
 */
export async function shipPendingNow(labDir: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<ShipNowOutcome> {
  const p = labPaths(labDir);
  const t0 = performance.now();
  const targets = (await pending(labDir)).filter((f) => f.completeTo > f.shippedTo);
  if (targets.length === 0) return { shipped: true, detail: 'nothing was waiting to be shipped' };
  // Asked again whenever the daemon names another PID: a shipper restarted meanwhile would otherwise sleep an interval first.
  let asked: number | null = null;
  let running = false;
  let lastExit: string | null = null;
  const ask = async () => {
    const view = (await readDaemonState(p.daemonState))?.logShipper;
    const pid = view?.pid ?? null;
    lastExit = view?.lastExit ?? null;
    running = pid !== null && (await isProcessUnder(pid, p.dir));
    if (!running || pid === asked) return;
    try {
      process.kill(pid!, 'SIGUSR2');
      asked = pid;
    } catch {
      running = false;
    }
  };
  await ask();
  let askedAt = performance.now();
  const left = async () => {
    const shipped = (await readJson<Record<string, number>>(p.serviceLogs.shipState)) ?? {};
    const names = new Set(await readdir(p.serviceLogs.dir).catch(() => [] as string[]));
    // A file gone was rotated and deleted by the shipper, which deletes only what it shipped.
    return targets.filter((t) => names.has(t.file) && (shipped[t.file] ?? 0) < t.completeTo);
  };
  for (;;) {
    const waiting = await left();
    const ms = Math.round(performance.now() - t0);
    if (waiting.length === 0) return { shipped: true, detail: `the log shipper shipped every pending line in ${ms} ms` };
    if (ms >= options.timeoutMs || options.signal?.aborted) {
      const bytes = waiting.reduce((n, t) => n + t.completeTo - t.shippedTo, 0);
      const why = !running
        ? `the log shipper is not running${lastExit ? ` (last exit: ${lastExit})` : ''}`
        : `the log shipper (pid ${asked}) did not ship them within ${ms} ms`;
      return {
        shipped: false,
        detail: `${why}: ${bytes} bytes of request-log lines in ${waiting.map((t) => t.file).join(', ')} were not in Blob when read back`,
      };
    }
    await sleep(100);
    if (performance.now() - askedAt >= 1000) {
      askedAt = performance.now();
      await ask();
    }
  }
}
