/**
 * Outage timing accuracy: the downtime drill measures from its request log against the injected
 * ground truth, at 200, 1,000 and 5,000 req/s.
 *
 *   node --import tsx test/bench/outage-accuracy.ts [--repeats 5] [--quick] [--rates 200,1000,5000]
 *
 * The service is test/bench/outage-server.ts, a trivial node:http server in a child process (so the
 * load generator and the server do not share an event loop, as in the lab). On an IPC message it
 * closes its listener and destroys every open connection (new connections get ECONNREFUSED), waits,
 * and listens again on the same port; it answers with the close and reopen instants in epoch ms.
 * Truth is reopenedAt - closedAt, both taken in the server process.
 *
 * Each trial is one run as the engine does it: a fresh clock and LoadGenerator with the drill's
 * default load settings, a baseline of 3 s, the fault mark (taken just before the pause is asked for,
 * like the engine's 'fault-injected' mark), an outage of 2 s, 4 s of load after the reopen. Downtime
 * is measured as the engine and the run record measure it: findRecovery over the log with the default
 * SLOs gives the recovered instant, then outageIntervals/downtimeMs from the fault up to it. Rates
 * alternate within each repeat, so drift on the machine hits every rate alike.
 *
 * Prints a Markdown table to stdout (progress to stderr) and writes every trial to
 * results/bench/outage-accuracy.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEFAULT_LOAD, DEFAULT_POLICY, POLICY_DEFAULTS } from '../../lib/config/defaults.ts';
import { LoadGenerator } from '../../lib/load/generator.ts';
import type { LoadProfile } from '../../lib/load/types.ts';
import { Outcome, type RequestLog } from '../../lib/measure/request-log.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { lowerBound } from '../../lib/measure/summary.ts';
import { downtimeMs, outageIntervals, type FailureKinds } from '../../lib/measure/outage.ts';
import { findRecovery } from '../../lib/score/recovery.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');
const OUT = join(REPO, 'results/bench/outage-accuracy.json');
const SERVER = join(HERE, 'outage-server.ts');

const { values: args } = parseArgs({
  options: {
    repeats: { type: 'string' },
    quick: { type: 'boolean', default: false },
    rates: { type: 'string', default: '200,1000,5000' },
  },
});
const REPEATS = args.repeats !== undefined ? Number(args.repeats) : args.quick ? 2 : 5;
const RATES = args.rates.split(',').map(Number);
if (!Number.isInteger(REPEATS) || REPEATS < 1 || RATES.some((r) => !(r > 0))) {
  process.stderr.write('usage: outage-accuracy.ts [--repeats N] [--quick] [--rates 200,1000,5000]\n');
  process.exit(2);
}

const BASELINE_MS = 3000;
const OUTAGE_MS = 2000;
const AFTER_MS = 4000;
/**
 * The recovery window findRecovery judges. The drill default is 10 s, which would need 10 s of load
 * after every outage; with 4 s after, a 3 s window is the longest that can complete. It only decides
 * where downtime stops being counted (the recovered instant): a clean reopen is the first ok request
 * either way, and a failure in the 3 s after the reopen would still be counted.
 */
const WINDOW_MS = 3000;
/** Failures further than this from the truth window are reported as stray (they should not happen). */
const STRAY_MARGIN_MS = 50;

// ---------------------------------------------------------------------------------------------------
// The server child

interface Paused {
  closedAtEpochMs: number;
  reopenedAtEpochMs: number;
  closeSpanMs: number;
}

type Reply =
  | { type: 'ready'; port: number }
  | ({ type: 'paused'; id: number } & Paused)
  | { type: 'pong'; id: number; epochMs: number }
  | { type: 'error'; id: number; error: string };

const epochNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const children = new Set<ChildProcess>();

/** Stops every child we started, by PID. */
function stopChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGTERM');
}

class OutageServer {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (m: Reply) => {
      if (m.type === 'ready') return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (!w) return;
      if (m.type === 'error') w.reject(new Error(`outage server: ${m.error}`));
      else w.resolve(m);
    });
    child.on('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`outage server exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  static start(): Promise<OutageServer> {
    const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    return new Promise((res, rej) => {
      const onExit = (code: number | null) => rej(new Error(`outage server exited (${code}) before listening`));
      child.once('exit', onExit);
      child.once('error', rej);
      child.once('message', (m: Reply) => {
        child.off('exit', onExit);
        if (m.type === 'ready') res(new OutageServer(child, m.port));
        else rej(new Error(`outage server: unexpected first message ${JSON.stringify(m)}`));
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  private ask(msg: Record<string, unknown>, deadlineMs: number): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`outage server did not answer ${JSON.stringify(msg)} within ${deadlineMs} ms`));
      }, deadlineMs);
      this.waiting.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...msg, id });
    });
  }

  async pause(ms: number): Promise<Paused> {
    const r = await this.ask({ type: 'pause', ms }, ms + 10_000);
    if (r.type !== 'paused') throw new Error(`outage server: unexpected answer ${JSON.stringify(r)}`);
    return r;
  }

  /**
   * Offset of the server's epochNow() from ours, from the ping with the shortest round trip (its
   * uncertainty is half that round trip). Both processes take timeOrigin from the same system clock,
   * so it should be well under a millisecond: a check, not a correction.
   */
  async clockOffset(pings = 30): Promise<{ offsetMs: number; rttMs: number }> {
    let best = { offsetMs: NaN, rttMs: Infinity };
    for (let k = 0; k < pings; k++) {
      const sent = epochNow();
      const r = await this.ask({ type: 'ping' }, 5000);
      const got = epochNow();
      if (r.type !== 'pong') throw new Error(`outage server: unexpected answer ${JSON.stringify(r)}`);
      if (got - sent < best.rttMs) best = { offsetMs: r.epochMs - (sent + got) / 2, rttMs: got - sent };
    }
    return best;
  }
}

// ---------------------------------------------------------------------------------------------------
// One trial

interface Trial {
  rate: number;
  repeat: number;
  /** Request spacing (the log's resolution), ms. */
  resolutionMs: number;
  scheduled: number;
  /** Truth, on the run's clock (ms since its origin). */
  closedMs: number;
  reopenedMs: number;
  truthMs: number;
  /** The fault mark: taken just before the pause was asked for. */
  faultMs: number;
  /** What findRecovery called the recovered instant (null: not within the log). */
  recoveredMs: number | null;
  measuredMs: number;
  errorMs: number;
  /** First failed request's scheduled time minus closedAt. */
  startEdgeMs: number | null;
  /** The closing ok request's scheduled time minus reopenedAt. */
  endEdgeMs: number | null;
  /** Latency (from its scheduled time) of the first failed request: well above ~1 ms, it went out late. */
  startEdgeLatencyMs: number | null;
  /** Latency (from its scheduled time) of the closing ok request: well above ~1 ms, it went out late. */
  endEdgeLatencyMs: number | null;
  /**
   * Latency of the last failed request before the closing ok one. A refused connect fails at once on
   * loopback, so this is (an upper bound of) how far behind its schedule the generator was sending at
   * the reopen; the measured end of the outage is early by about that much.
   */
  lagAtReopenMs: number | null;
  /** Longest stall of our event loop during the trial (perf_hooks.monitorEventLoopDelay), ms. */
  loopDelayMaxMs: number;
  /** How much later than asked the server's reopen timer fired (its event loop or the machine was busy), ms. */
  serverTimerLateMs: number;
  intervals: Array<{ startMs: number; endMs: number | null; failed: number; kinds: FailureKinds }>;
  failed: number;
  dropped: number;
  /** Failed requests scheduled more than STRAY_MARGIN_MS outside [closedAt, reopenedAt]. */
  strayFailures: number;
  closeSpanMs: number;
  /** clock.epochMs (Date.now(), whole ms) minus the hi-res epoch of the clock's origin. */
  clockEpochSkewMs: number;
}

function countOutcomes(log: RequestLog, from: number, to: number, pick: (o: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < log.count; i++) {
    const s = log.scheduledMs[i]!;
    if (s >= from && s < to && pick(log.outcome[i]!)) n++;
  }
  return n;
}

async function trial(server: OutageServer, rate: number, repeat: number, outageMs = OUTAGE_MS): Promise<Trial> {
  const profile: LoadProfile = {
    url: `http://127.0.0.1:${server.port}`,
    rate,
    requests: DEFAULT_LOAD.requests.map((r) => ({ ...r })),
    timeoutMs: DEFAULT_LOAD.timeoutMs,
    maxInFlight: DEFAULT_LOAD.maxInFlight,
    connections: DEFAULT_LOAD.connections,
  };
  const clock = createClock();
  // The clock's origin on the same time base as the server's timestamps. clock.epochMs is Date.now(),
  // whole milliseconds and read an instant after the origin; this one is exact to microseconds.
  const originEpochMs = epochNow() - clock.now();
  const gen = new LoadGenerator(profile, clock);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let p: Paused;
  let faultMs: number;
  try {
    gen.start();
    while (gen.log.count === 0) await sleep(2);
    await sleep(gen.log.scheduledMs[0]! + BASELINE_MS - clock.now());
    faultMs = clock.now();
    p = await server.pause(outageMs);
    await sleep(p.reopenedAtEpochMs - originEpochMs + AFTER_MS - clock.now());
  } finally {
    await gen.stop();
    loop.disable();
  }
  const loadEndMs = clock.now();
  const log = gen.log;
  const closedMs = p.closedAtEpochMs - originEpochMs;
  const reopenedMs = p.reopenedAtEpochMs - originEpochMs;

  // As the engine (lib/engine/run.ts) and the run record (lib/record/run-record.ts) do it.
  const rec = findRecovery(log, { faultMs, slo: DEFAULT_POLICY.slo, windowMs: WINDOW_MS, nowMs: loadEndMs });
  const until = rec.recoveredMs ?? loadEndMs;
  const scan = outageIntervals(log, faultMs, until);
  const measuredMs = downtimeMs(scan.intervals, until);
  const truthMs = p.reopenedAtEpochMs - p.closedAtEpochMs;
  const first = scan.intervals[0];
  const last = scan.intervals.at(-1);
  const failed = (o: number) => o !== Outcome.ok && o !== Outcome.pending;
  const lagBefore = (scheduled: number): number | null => {
    const i = lowerBound(log, scheduled) - 1;
    return i >= 0 && failed(log.outcome[i]!) && log.outcome[i] !== Outcome.dropped ? log.latencyMs[i]! : null;
  };
  const latencyAt = (scheduled: number | null | undefined): number | null => {
    if (scheduled === null || scheduled === undefined) return null;
    const i = lowerBound(log, scheduled);
    return i < log.count ? log.latencyMs[i]! : null;
  };
  return {
    rate,
    repeat,
    resolutionMs: scan.resolutionMs ?? NaN,
    scheduled: log.count,
    closedMs,
    reopenedMs,
    truthMs,
    faultMs,
    recoveredMs: rec.recoveredMs,
    measuredMs,
    errorMs: measuredMs - truthMs,
    startEdgeMs: first ? first.startMs - closedMs : null,
    endEdgeMs: last && last.endMs !== null ? last.endMs - reopenedMs : null,
    startEdgeLatencyMs: latencyAt(first?.startMs),
    endEdgeLatencyMs: latencyAt(last?.endMs),
    lagAtReopenMs: last && last.endMs !== null ? lagBefore(last.endMs) : null,
    loopDelayMaxMs: loop.max / 1e6,
    serverTimerLateMs: truthMs - outageMs,
    intervals: scan.intervals.map((iv) => ({ startMs: iv.startMs, endMs: iv.endMs, failed: iv.failed, kinds: iv.kinds })),
    failed: countOutcomes(log, -Infinity, Infinity, failed),
    dropped: countOutcomes(log, -Infinity, Infinity, (o) => o === Outcome.dropped),
    strayFailures:
      countOutcomes(log, -Infinity, closedMs - STRAY_MARGIN_MS, failed) +
      countOutcomes(log, reopenedMs + STRAY_MARGIN_MS, Infinity, failed),
    closeSpanMs: p.closeSpanMs,
    clockEpochSkewMs: clock.epochMs - originEpochMs,
  };
}

// ---------------------------------------------------------------------------------------------------
// Summary and table

interface Summary {
  rate: number;
  repeats: number;
  resolutionMs: number;
  truthMedianMs: number;
  measuredMedianMs: number;
  errorMedianMs: number;
  errorMaxAbsMs: number;
  startEdgeMedianMs: number | null;
  endEdgeMedianMs: number | null;
  lagAtReopenMedianMs: number | null;
  lagAtReopenMaxMs: number | null;
  /** Largest |error| that quantisation to the request spacing plus a few ms of send/accept jitter explains. */
  boundMs: number;
  withinBound: number;
  dropped: number;
  strayFailures: number;
  maxIntervals: number;
  notRecovered: number;
}

const JITTER_MS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function medianOrNull(xs: Array<number | null>): number | null {
  const present = xs.filter((x): x is number => x !== null);
  return present.length ? median(present) : null;
}

function summarizeRate(rate: number, trials: Trial[]): Summary {
  const resolutionMs = 1000 / rate;
  const boundMs = resolutionMs + JITTER_MS;
  return {
    rate,
    repeats: trials.length,
    resolutionMs,
    truthMedianMs: median(trials.map((t) => t.truthMs)),
    measuredMedianMs: median(trials.map((t) => t.measuredMs)),
    errorMedianMs: median(trials.map((t) => t.errorMs)),
    errorMaxAbsMs: Math.max(...trials.map((t) => Math.abs(t.errorMs))),
    startEdgeMedianMs: medianOrNull(trials.map((t) => t.startEdgeMs)),
    endEdgeMedianMs: medianOrNull(trials.map((t) => t.endEdgeMs)),
    lagAtReopenMedianMs: medianOrNull(trials.map((t) => t.lagAtReopenMs)),
    lagAtReopenMaxMs: trials.some((t) => t.lagAtReopenMs !== null) ? Math.max(...trials.map((t) => t.lagAtReopenMs ?? -Infinity)) : null,
    boundMs,
    withinBound: trials.filter((t) => Math.abs(t.errorMs) <= boundMs).length,
    dropped: trials.reduce((a, t) => a + t.dropped, 0),
    strayFailures: trials.reduce((a, t) => a + t.strayFailures, 0),
    maxIntervals: Math.max(...trials.map((t) => t.intervals.length)),
    notRecovered: trials.filter((t) => t.recoveredMs === null).length,
  };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number | null, digits = 2): string => (n === null ? '-' : (n >= 0 ? '+' : '') + n.toFixed(digits));
const plain = (n: number, digits = 1): string => n.toFixed(digits);

function formatTable(rows: Summary[], clockCheck: { offsetMs: number; rttMs: number }, load: { start: number; end: number }): string {
  const lines = [
    `Injected outage ${OUTAGE_MS / 1000} s (listener closed, connections destroyed, same port reopened), ${rows[0]?.repeats ?? 0} repeats per rate; ` +
      `downtime measured from the request log as the engine does (findRecovery with the default SLOs, ${WINDOW_MS / 1000} s window; outageIntervals/downtimeMs to the recovered instant).`,
    '',
    '| rate req/s | resolution ms | truth median ms | measured median ms | error median ms | max abs error ms | within spacing+5 ms | first fail - close ms | first ok - reopen ms | send lag at reopen ms (max) | dropped |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${int(r.rate)} | ${plain(r.resolutionMs, 1)} | ${plain(r.truthMedianMs)} | ${plain(r.measuredMedianMs)} | ${ms(r.errorMedianMs)} | ` +
        `${plain(r.errorMaxAbsMs, 2)} | ${r.withinBound}/${r.repeats} | ${ms(r.startEdgeMedianMs)} | ${ms(r.endEdgeMedianMs)} | ` +
        `${r.lagAtReopenMedianMs === null ? '-' : plain(r.lagAtReopenMedianMs)} (${r.lagAtReopenMaxMs === null ? '-' : plain(r.lagAtReopenMaxMs)}) | ${int(r.dropped)} |`,
    ),
    '',
    'error = measured - truth; truth = reopenedAt - closedAt in the server process. The edge columns are medians of the first',
    "failed request's scheduled time minus the close, and of the closing ok request's scheduled time minus the reopen, on one time base.",
    'send lag at reopen: latency of the last refused request before the closing ok one (a refused connect fails at once on loopback),',
    'i.e. how far behind its schedule the generator was sending when the port reopened; median (max) over the repeats.',
    `Server clock vs ours: offset ${ms(clockCheck.offsetMs, 3)} ms (ping round trip ${clockCheck.rttMs.toFixed(3)} ms). ` +
      `Load average (1 min) ${load.start.toFixed(1)} at the start, ${load.end.toFixed(1)} at the end, ${cpus().length} CPUs.`,
  ];
  const odd = rows.filter((r) => r.strayFailures > 0 || r.maxIntervals > 1 || r.notRecovered > 0);
  for (const r of odd) {
    lines.push(
      `${int(r.rate)} req/s: ${r.strayFailures} failed requests outside the outage, up to ${r.maxIntervals} outage intervals in one trial, ${r.notRecovered} trials not recovered by the end of the log.`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadStart = loadavg()[0]!;
  const server = await OutageServer.start();
  const clockCheck = await server.clockOffset();
  process.stderr.write(
    `outage server pid ${server.pid} on 127.0.0.1:${server.port}; clock offset ${clockCheck.offsetMs.toFixed(3)} ms (rtt ${clockCheck.rttMs.toFixed(3)} ms); ` +
      `${REPEATS} repeats of ${RATES.join(', ')} req/s, about ${Math.round((REPEATS * RATES.length * (BASELINE_MS + OUTAGE_MS + AFTER_MS + 300)) / 1000)} s\n`,
  );
  // Warm our process (JIT, undici) with a short throwaway trial, so the first measured one is not the cold one.
  await trial(server, 1000, 0, 200);

  const trials: Trial[] = [];
  for (let repeat = 1; repeat <= REPEATS; repeat++) {
    for (const rate of RATES) {
      const t = await trial(server, rate, repeat);
      trials.push(t);
      process.stderr.write(
        `repeat ${repeat}: ${rate} req/s truth ${t.truthMs.toFixed(2)} ms measured ${t.measuredMs.toFixed(2)} ms error ${ms(t.errorMs)} ms ` +
          `(edges ${ms(t.startEdgeMs)} / ${ms(t.endEdgeMs)} ms, edge latencies ${t.startEdgeLatencyMs?.toFixed(1)} / ${t.endEdgeLatencyMs?.toFixed(1)} ms, lag at reopen ${t.lagAtReopenMs?.toFixed(1)} ms, ` +
          `loop max ${t.loopDelayMaxMs.toFixed(1)} ms, server timer +${t.serverTimerLateMs.toFixed(1)} ms, ${t.intervals.length} interval(s), ${t.failed} failed, ${t.dropped} dropped` +
          `${t.strayFailures ? `, ${t.strayFailures} stray` : ''}${t.recoveredMs === null ? ', NOT RECOVERED' : ''})\n`,
      );
      await sleep(500); // let sockets and GC settle between trials
    }
  }

  const summary = RATES.map((rate) =>
    summarizeRate(
      rate,
      trials.filter((t) => t.rate === rate),
    ),
  );
  process.stdout.write(formatTable(summary, clockCheck, { start: loadStart, end: loadavg()[0]! }) + '\n');
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    JSON.stringify(
      {
        benchmark: 'outage-accuracy',
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? null,
        loadavgAtStart: loadStart,
        loadavgAtEnd: loadavg(),
        server: 'node:http in a child process, 200 JSON, keep-alive; pause = close listener + destroy sockets, relisten on the same port',
        settings: {
          baselineMs: BASELINE_MS,
          outageMs: OUTAGE_MS,
          afterMs: AFTER_MS,
          recoveryWindowMs: WINDOW_MS,
          slo: POLICY_DEFAULTS.slo,
          load: { timeoutMs: DEFAULT_LOAD.timeoutMs, maxInFlight: DEFAULT_LOAD.maxInFlight, connections: DEFAULT_LOAD.connections },
          repeats: REPEATS,
          rates: RATES,
        },
        clockCheck,
        summary,
        trials,
      },
      null,
      2,
    ) + '\n',
  );
  process.stderr.write(`wrote ${OUT}\n`);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    stopChildren();
    process.exit(130);
  });
}
try {
  await main();
} finally {
  stopChildren();
}
