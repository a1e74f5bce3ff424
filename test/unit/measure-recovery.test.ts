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

test('fast enough to run every 250 ms on 10 minutes at 5,000 req/s', () => {
  // 3 million requests; a fault at 60 s and a service that never settles (noisy, failing latency),
  // the worst case: every call scans from the fault to now.
  let n = 0;
  const log = buildLog(5000, 600_000, (t) => {
    n++;
    if (t < 60_000) return OK;
    if (t < 62_000) return REFUSED;
    return n % 10 === 0 ? { outcome: Outcome.ok, latencyMs: 900 } : OK;
  });
  assert.equal(log.count, 3_000_000);
  // The median of a few calls: other suites may share the machine, and one slow call says little.
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const r = findRecovery(log, { faultMs: 60_000, slo: SLO, windowMs: WINDOW, nowMs: 600_000 - i * 250 });
    times.push(performance.now() - started);
    assert.equal(r.recoveredMs, null);
  }
  const perCall = times.sort((a, b) => a - b)[2]!;
  assert.ok(perCall < 250, `${perCall.toFixed(1)} ms per call`);
  console.log(`findRecovery on 3,000,000 requests: ${perCall.toFixed(1)} ms per call`);
});

test('the sliding-window shortcuts agree with judging every candidate window from scratch', () => {
  // Reference: the same candidates, each window summarized and scored on its own.
  const slo: SloSet = {
    availability: [parseThreshold('rate>=99%')],
    errors: [],
    latency: [parseThreshold('p(95)<500ms'), parseThreshold('avg<300')],
  };
  const reference = (log: ReturnType<typeof buildLog>, faultMs: number, windowMs: number, nowMs: number): number | null => {
    const good = (i: number) => log.outcome[i] === Outcome.ok && log.latencyMs[i]! < 300;
    const candidates = [faultMs];
    for (let i = lowerBound(log, faultMs); i < log.count; i++) {
      if (good(i) && !(i > 0 && good(i - 1)) && log.scheduledMs[i]! > faultMs) candidates.push(log.scheduledMs[i]!);
    }
    for (const t of candidates) {
      if (t + windowMs > nowMs) return null;
      const s = summarize(log, t, t + windowMs);
      if (s.ok === 0) continue;
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
