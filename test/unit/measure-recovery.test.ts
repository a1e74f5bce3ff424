import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequestLog, Outcome, type OutcomeCode } from '../../lib/measure/request-log.ts';
import type { SloSet } from '../../lib/config/types.ts';
import { parseThreshold } from '../../lib/config/threshold.ts';
import { lowerBound, summarize } from '../../lib/measure/summary.ts';
import { latencyHistogram } from '../../lib/measure/phases.ts';
import { scoreSlos } from '../../lib/score/objectives.ts';
import { downtimeMs, outageIntervals } from '../../lib/measure/outage.ts';
import { findRecovery, type Recovered } from '../../lib/score/recovery.ts';

type Fate = { outcome: OutcomeCode; latencyMs: number };
const OK: Fate = { outcome: Outcome.ok, latencyMs: 20 };
const REFUSED: Fate = { outcome: Outcome.refused, latencyMs: 1 };

/** A constant-rate log from 0 to durationMs; `fate` decides each request by its scheduled time. */
function buildLog(rate: number, durationMs: number, fate: (t: number) => Fate) {
  const log = createRequestLog();
  const spacing = 1000 / rate;
  for (let i = 0; i * spacing < durationMs; i++) {
    const t = i * spacing;
    const j = log.push(t, 0);
    const f = fate(t);
    log.outcome[j] = f.outcome;
    log.latencyMs[j] = f.latencyMs;
  }
  return log;
}

const SLO: SloSet = {
  availability: [parseThreshold('rate>=99.9%')],
  errors: [parseThreshold('rate<0.1%')],
  latency: [parseThreshold('p(95)<500ms')],
};
const WINDOW = 10_000;

function recovered(r: ReturnType<typeof findRecovery>): Recovered {
  assert.notEqual(r.recoveredMs, null, `expected recovery, got: ${'reason' in r ? r.reason : ''}`);
  return r as Recovered;
}

for (const rate of [200, 5000]) {
  const spacing = 1000 / rate;

  test(`a 2,000 ms outage at ${rate} req/s is one interval, its downtime within one request spacing`, () => {
    // Edges deliberately off the request grid.
    const down = (t: number) => t >= 10_002.5 && t < 12_003.1;
    const log = buildLog(rate, 30_000, (t) => (down(t) ? REFUSED : OK));
    const scan = outageIntervals(log, 5_000);
    assert.equal(scan.intervals.length, 1);
    const iv = scan.intervals[0]!;
    assert.ok(iv.endMs !== null);
    assert.ok(Math.abs(iv.endMs - iv.startMs - 2000.6) <= spacing, `interval ${iv.endMs - iv.startMs} ms`);
    assert.ok(Math.abs(scan.resolutionMs! - spacing) < 1e-9);
    assert.equal(iv.kinds.refused, iv.failed);
    assert.ok(Math.abs(iv.failed - 2000.6 / spacing) <= 1);

    const r = recovered(findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 30_000 }));
    assert.equal(r.recoveredMs, iv.endMs);
    assert.equal(r.outageDetectedMs, iv.startMs);
    assert.ok(Math.abs(r.downtimeMs - 2000.6) <= spacing);
    assert.match(r.method, new RegExp(`10 s window.*resolution ${spacing} ms at ${rate} req/s`));
  });
}

test('outage intervals: kinds are counted, dropped counts as failed, pending neither breaks nor counts', () => {
  const log = buildLog(100, 10_000, (t) =>
    t >= 2000 && t < 2100
      ? { outcome: Outcome.timeout, latencyMs: 1000 }
      : t >= 2100 && t < 2200
        ? { outcome: Outcome.dropped, latencyMs: 0 }
        : OK,
  );
  log.outcome[201] = Outcome.pending; // scheduled at 2,010 ms, inside the outage
  const { intervals } = outageIntervals(log, 0);
  assert.equal(intervals.length, 1);
  assert.deepEqual(intervals[0], {
    startMs: 2000,
    endMs: 2200,
    failed: 19,
    kinds: { timeout: 9, refused: 0, http5xx: 0, http4xx: 0, other: 0, dropped: 10 },
  });
});

test('outage intervals: an open outage has no end; toMs bounds where intervals start, not where they end', () => {
  const log = buildLog(100, 10_000, (t) => ((t >= 1000 && t < 3000) || t >= 8000 ? REFUSED : OK));
  const upTo2s = outageIntervals(log, 0, 2000);
  assert.deepEqual(
    upTo2s.intervals.map((i) => [i.startMs, i.endMs]),
    [[1000, 3000]],
  );
  const all = outageIntervals(log, 0);
  assert.deepEqual(
    all.intervals.map((i) => [i.startMs, i.endMs]),
    [
      [1000, 3000],
      [8000, null],
    ],
  );
  assert.equal(downtimeMs(all.intervals, 9000), 2000 + 1000);
});

test('a flapping service (alternating ok and failed seconds) recovers only once stable for the whole window', () => {
  // From the fault at 10 s: failed, ok, failed, ok ... seconds until 40 s, then stable.
  const log = buildLog(200, 70_000, (t) => (t >= 10_000 && t < 40_000 && Math.floor(t / 1000) % 2 === 0 ? REFUSED : OK));
  const r = recovered(findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 70_000 }));
  assert.equal(r.recoveredMs, 39_000);
  assert.equal(r.outageDetectedMs, 10_000);
  assert.equal(r.intervals.length, 15);
  assert.equal(r.downtimeMs, 15_000);

  // Before the stable window has completed, no lucky ok second may count as recovered.
  const early = findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 45_000 });
  assert.equal(early.recoveredMs, null);
});

test('slow answers after an outage: recovered when latency is back under the SLO, downtime counts only failures', () => {
  const log = buildLog(200, 60_000, (t) =>
    t >= 10_000 && t < 12_000 ? REFUSED : t >= 12_000 && t < 20_000 ? { outcome: Outcome.ok, latencyMs: 900 } : OK,
  );
  const r = recovered(findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 60_000 }));
  assert.equal(r.recoveredMs, 20_000);
  assert.equal(r.downtimeMs, 2000);
});

test('a fault that only slows the service: no outage detected, recovered when latency recovers', () => {
  const log = buildLog(200, 60_000, (t) => (t >= 10_000 && t < 15_000 ? { outcome: Outcome.ok, latencyMs: 2000 } : OK));
  const r = recovered(findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 60_000 }));
  assert.equal(r.recoveredMs, 15_000);
  assert.equal(r.outageDetectedMs, null);
  assert.equal(r.downtimeMs, 0);
});

test('an unaffected service recovers at the fault instant', () => {
  const log = buildLog(200, 30_000, () => OK);
  const r = recovered(findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 30_000 }));
  assert.equal(r.recoveredMs, 10_000);
  assert.equal(r.downtimeMs, 0);
});

test('never recovered: null with a reason', () => {
  const log = buildLog(200, 60_000, (t) => (t >= 10_000 ? REFUSED : OK));
  const r = findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 60_000 });
  assert.equal(r.recoveredMs, null);
  assert.ok('reason' in r);
  assert.match(r.reason, /not held for a full 10 s window/);
  assert.equal(r.outageDetectedMs, 10_000);
});

test('a sparse error rate above the SLO keeps the service unrecovered even though most requests succeed', () => {
  // One request in 200 fails (0.5%): availability 99.5% < 99.9% in every window.
  let n = 0;
  const log = buildLog(200, 60_000, (t) => (t >= 10_000 && n++ % 200 === 0 ? REFUSED : OK));
  assert.equal(findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 60_000 }).recoveredMs, null);
});

test('an incomplete window is not judged: recovery is reported only once the window has passed', () => {
  const fate = (t: number) => (t >= 10_000 && t < 12_000 ? REFUSED : OK);
  const live = buildLog(200, 18_000, fate);
  const r = findRecovery(live, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 18_000 });
  assert.equal(r.recoveredMs, null);
  assert.ok('reason' in r);
  assert.match(r.reason, /not complete yet/);

  const later = buildLog(200, 22_000, fate);
  assert.equal(findRecovery(later, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 22_000 }).recoveredMs, 12_000);
});

test('requests still in flight in the window keep it undecided', () => {
  const log = buildLog(200, 30_000, (t) => (t >= 10_000 && t < 12_000 ? REFUSED : OK));
  log.outcome[2800] = Outcome.pending; // scheduled at 14 s, inside the first window after the outage
  const r = findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 30_000 });
  assert.equal(r.recoveredMs, null);
  assert.ok('reason' in r);
  assert.match(r.reason, /in flight/);
  log.outcome[2800] = Outcome.ok;
  assert.equal(findRecovery(log, { faultMs: 10_000, slo: SLO, windowMs: WINDOW, nowMs: 30_000 }).recoveredMs, 12_000);
});

test('no SLOs at all: the window still needs answers, so a dead service does not count as recovered', () => {
  const none: SloSet = { availability: [], errors: [], latency: [] };
  const log = buildLog(200, 40_000, (t) => (t >= 10_000 && t < 25_000 ? REFUSED : OK));
  const r = findRecovery(log, { faultMs: 10_000, slo: none, windowMs: 5_000, nowMs: 40_000 });
  assert.equal(r.recoveredMs, 25_000);
  const dead = buildLog(200, 40_000, (t) => (t >= 10_000 ? REFUSED : OK));
  assert.equal(findRecovery(dead, { faultMs: 10_000, slo: none, windowMs: 5_000, nowMs: 40_000 }).recoveredMs, null);
});

test('other latency aggregates (avg, max, p(90)) are judged exactly on the window', () => {
  const slo: SloSet = {
    availability: [],
    errors: [],
    latency: [parseThreshold('avg<100'), parseThreshold('max<1s'), parseThreshold('p(90)<50ms')],
  };
  // After the fault one request per second takes 1.5 s (max fails) until 20 s.
  const log = buildLog(100, 50_000, (t) => (t >= 10_000 && t < 20_000 && t % 1000 === 0 ? { outcome: Outcome.ok, latencyMs: 1500 } : OK));
  assert.equal(recovered(findRecovery(log, { faultMs: 10_000, slo, windowMs: WINDOW, nowMs: 50_000 })).recoveredMs, 19_010);
});

test('one linear pass: on 10 minutes at 5,000 req/s, findRecovery costs a small multiple of one plain scan of the log', () => {
  // 3 million requests; a fault at 60 s and a service that never settles (noisy, failing latency),
  // the worst case: every call scans from the fault to now, and every 10th request is a candidate.
  let n = 0;
  const log = buildLog(5000, 600_000, (t) => {
    n++;
    if (t < 60_000) return OK;
    if (t < 62_000) return REFUSED;
    return n % 10 === 0 ? { outcome: Outcome.ok, latencyMs: 900 } : OK;
  });
  assert.equal(log.count, 3_000_000);
  // The least any recovery search must do: read every request's outcome, latency and time once from the fault.
  const plainScan = (): number => {
    let failed = 0;
    let sum = 0;
    let last = 0;
    for (let i = lowerBound(log, 60_000); i < log.count; i++) {
      if (log.outcome[i] !== Outcome.ok) failed++;
      sum += log.latencyMs[i]!;
      last = log.scheduledMs[i]!;
    }
    return failed + sum + last;
  };
  // Timed alternately, median of 5 each: whatever else loads the machine slows both alike, so their ratio
  // measures the algorithm, not the machine (an absolute budget, "< 250 ms", measured the machine).
  const search: number[] = [];
  const scan: number[] = [];
  let sink = 0;
  for (let i = 0; i < 5; i++) {
    let started = performance.now();
    const r = findRecovery(log, { faultMs: 60_000, slo: SLO, windowMs: WINDOW, nowMs: 600_000 - i * 250 });
    search.push(performance.now() - started);
    assert.equal(r.recoveredMs, null);
    started = performance.now();
    sink += plainScan();
    scan.push(performance.now() - started);
  }
  assert.ok(sink > 0);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[2]!;
  const perCall = median(search);
  const perScan = median(scan);
  // k = 30. findRecovery reads the log three times (first failure, the window's two edges, the candidate
  // loop) and judges 270,000 candidates by counts: 8-9 scans when measured on the 2-core machine
  // (2026-12-04), so 30 leaves more than 3x for JIT and GC differences between two loops. What it
  // catches: judging each candidate window from scratch (270,000 x 50,000 requests) or building a
  // histogram per candidate, thousands of scans. The product's own budget (observe.ts calls it every
  // 250 ms on a live log) is a property of the machine and printed only.
  const K = 30;
  assert.ok(
    perCall <= K * perScan,
    `findRecovery ${perCall.toFixed(1)} ms per call, ${(perCall / perScan).toFixed(1)} x a plain scan (${perScan.toFixed(1)} ms); limit ${K} x`,
  );
  console.log(
    `findRecovery on 3,000,000 requests: ${perCall.toFixed(1)} ms per call, ${(perCall / perScan).toFixed(1)} x a plain scan of ${perScan.toFixed(1)} ms`,
  );
});

test('the candidate rule and the sliding window find the earliest holding window: checked against every request start', () => {
  // Reference (audit 1.21): brute force, sharing nothing with findRecovery's search. Every instant recovery
  // can start at is judged on its own with the record's summarize/scoreSlos, by a linear scan: the fault,
  // then every request scheduled after it that was answered well (ok, and faster than the strictest latency
  // bound, 300 ms here). The first whose complete window holds is the recovered instant. Recovery never starts
  // at a failed or slow request: at 99% over 500 requests a window starting 5 refusals before an outage's end
  // already holds, and the outage tests above pin recovered = the outage's end. It does not use
  // findRecovery's candidate rule (only the first good request after a bad one), so a rule that skips a
  // holding window is seen here. 100 req/s x 50 s after the fault: 5,000 starts at most.
  const slo: SloSet = {
    availability: [parseThreshold('rate>=99%')],
    errors: [],
    latency: [parseThreshold('p(95)<500ms'), parseThreshold('avg<300')],
  };
  const reference = (log: ReturnType<typeof buildLog>, faultMs: number, windowMs: number, nowMs: number): number | null => {
    const answeredWell = (i: number) => log.outcome[i] === Outcome.ok && log.latencyMs[i]! < 300;
    const starts: Array<{ t: number; first: number }> = [];
    for (let i = 0; i < log.count; i++) {
      if (log.scheduledMs[i]! >= faultMs && starts.length === 0) starts.push({ t: faultMs, first: i });
      if (log.scheduledMs[i]! > faultMs && answeredWell(i)) starts.push({ t: log.scheduledMs[i]!, first: i });
    }
    for (const { t, first } of starts) {
      if (t + windowMs > nowMs) return null; // not complete yet: nothing later can be judged either
      // Only to keep 200,000 judgements fast, windows that certainly fail skip the histogram: under 98% ok
      // (rate>=99%), over 6% of answers above 505 ms (p(95)<500ms, beyond HDR's 0.1% rounding), mean over 303 ms.
      let n = 0;
      let ok = 0;
      let over = 0;
      let sum = 0;
      for (let i = first; i < log.count && log.scheduledMs[i]! < t + windowMs; i++, n++) {
        if (log.outcome[i] === Outcome.ok) ok++;
        if (log.latencyMs[i]! > 505) over++;
        sum += log.latencyMs[i]!;
      }
      if (ok === 0) continue; // a dead service never counts as recovered
      if (ok < 0.98 * n || over > 0.06 * n || sum > 303 * n) continue;
      const s = summarize(log, t, t + windowMs);
      if (scoreSlos(slo, s, 'window', latencyHistogram(log, t, t + windowMs)).every((r) => r.met === true)) return t;
    }
    return null;
  };

  let seed = 42;
  const random = () => {
    seed = (seed * 1664525 + 1013904223) % 2 ** 32;
    return seed / 2 ** 32;
  };
  let recoveredRuns = 0;
  for (let run = 0; run < 40; run++) {
    // Random stretches: healthy, down, slow, or noisy, each 0.2 to 3 s long.
    const stretches: Array<{ until: number; fate: () => Fate }> = [];
    for (let t = 10_000; t < 60_000; ) {
      t += 200 + random() * 2800;
      const kind = Math.floor(random() * 4);
      const errorP = random() * 0.03;
      const slowP = random() * 0.12;
      const fate: () => Fate =
        kind === 0
          ? () => OK
          : kind === 1
            ? () => REFUSED
            : kind === 2
              ? () => ({ outcome: Outcome.ok, latencyMs: 400 + random() * 300 })
              : () => (random() < errorP ? REFUSED : random() < slowP ? { outcome: Outcome.ok, latencyMs: 450 + random() * 200 } : OK);
      stretches.push({ until: t, fate });
    }
    const log = buildLog(100, 60_000, (t) => (t < 10_000 ? OK : stretches.find((s) => t < s.until)!.fate()));
    const expected = reference(log, 10_000, 5_000, 60_000);
    const actual = findRecovery(log, { faultMs: 10_000, slo, windowMs: 5_000, nowMs: 60_000 }).recoveredMs;
    assert.equal(actual, expected, `run ${run}`);
    if (expected !== null) recoveredRuns++;
  }
  // Both outcomes must be exercised, or the comparison proves little.
  assert.ok(recoveredRuns > 5 && recoveredRuns < 35, `${recoveredRuns} of 40 recovered`);
});

// Found by the brute-force reference above: findRecovery judged only the first good request after a bad one,
// which loses nothing under rate, percentile and max bounds; under avg a request leaving the window can be
// faster than the good one entering it, so a later start can hold where the stretch's start failed.
test('an avg bound: a window that starts mid-stretch and holds is found (brute force says 10,020 ms)', () => {
  const slo: SloSet = { availability: [], errors: [], latency: [parseThreshold('avg<300')] };
  const slow = (30_100 - 299 - 50 * 20) / 49;
  // 100 req/s, fault at 10 s (request 1000): a timeout, then a good stretch starting with a 299 ms answer,
  // 50 fast ones, 49 slow ones, one 1 ms answer, then fast. Window 1 s = 100 requests.
  const log = buildLog(100, 30_000, (t) => {
    const i = Math.round(t / 10);
    if (i === 1000) return { outcome: Outcome.timeout, latencyMs: 2000 };
    if (i === 1001) return { outcome: Outcome.ok, latencyMs: 299 };
    if (i >= 1052 && i <= 1100) return { outcome: Outcome.ok, latencyMs: slow };
    if (i === 1101) return { outcome: Outcome.ok, latencyMs: 1 };
    return OK;
  });
  const holds = (t: number) =>
    scoreSlos(slo, summarize(log, t, t + 1000), 'window', latencyHistogram(log, t, t + 1000)).every((r) => r.met === true);
  assert.deepEqual(
    [holds(10_000), holds(10_010), holds(10_020)],
    [false, false, true],
    'the fixture: 10,020 is the first window that holds',
  );
  assert.equal(findRecovery(log, { faultMs: 10_000, slo, windowMs: 1000, nowMs: 30_000 }).recoveredMs, 10_020);
});
