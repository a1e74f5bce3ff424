import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadGenerator } from '../../lib/load/generator.ts';
import { Outcome, OUTCOME_NAMES, type OutcomeName } from '../../lib/measure/request-log.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { summarize } from '../../lib/measure/summary.ts';
import { profile, runFor, sleep, startServer, unusedPort } from '../support/load-servers.ts';

/** Outcome names seen per template index. */
function outcomesByTemplate(gen: LoadGenerator): Map<number, Set<OutcomeName>> {
  const m = new Map<number, Set<OutcomeName>>();
  for (let i = 0; i < gen.log.count; i++) {
    const t = gen.log.template[i]!;
    if (!m.has(t)) m.set(t, new Set());
    m.get(t)!.add(OUTCOME_NAMES[gen.log.outcome[i]!]!);
  }
  return m;
}

test('each way a service can fail becomes its outcome: 4xx, 5xx, reset, cut body, timeout; 3xx is ok', async () => {
  const clock = createClock();
  const server = await startServer((req, res) => {
    req.resume();
    switch (req.url) {
      case '/ok':
        return void res.end('fine');
      case '/moved':
        res.writeHead(302, { location: '/ok' });
        return void res.end();
      case '/missing':
        res.statusCode = 404;
        return void res.end('no');
      case '/broken':
        res.statusCode = 503;
        return void res.end('down');
      case '/reset':
        return void req.socket.destroy();
      case '/cut':
        // Headers promise 1000 bytes, the peer dies after 7.
        res.writeHead(200, { 'content-length': '1000' });
        res.write('partial');
        return void setTimeout(() => req.socket.destroy(), 5);
      case '/hang':
        return; // never answers
    }
  });
  const paths = ['/ok', '/moved', '/missing', '/broken', '/reset', '/cut', '/hang'];
  const expected: OutcomeName[] = ['ok', 'ok', 'http4xx', 'http5xx', 'refused', 'refused', 'timeout'];
  // 1500 ms: only /hang may reach it. At 400 ms (before) an answer from this process's own server took
  // longer on a loaded 2-core machine (a /reset became a timeout, 1 of 3 runs under stress-ng).
  const TIMEOUT = 1500;
  const gen = new LoadGenerator(
    profile(server.url, {
      rate: 140,
      timeoutMs: TIMEOUT,
      requests: paths.map((path) => ({ method: 'GET' as const, path, weight: 1 })),
    }),
    clock,
  );
  try {
    await runFor(gen, clock, 1000);
    const seen = outcomesByTemplate(gen);
    paths.forEach((path, k) => {
      assert.deepEqual([...(seen.get(k) ?? [])], [expected[k]], `${path}`);
    });
    for (let i = 0; i < gen.log.count; i++) {
      if (gen.log.outcome[i] === Outcome.timeout) assert.equal(gen.log.latencyMs[i], TIMEOUT, 'a timeout counts as the timeout');
      else assert.ok(gen.log.latencyMs[i]! < TIMEOUT);
    }
    const s = summarize(gen.log);
    assert.equal(s.scheduled, 140);
    assert.equal(s.ok, 40);
    assert.deepEqual(s.errorsByKind, { timeout: 20, refused: 40, http5xx: 20, http4xx: 20, other: 0 });
    assert.equal(s.dropped, 0);
  } finally {
    await gen.stop();
    await server.close();
  }
});

test('nobody listening: every request is refused, quickly', async () => {
  const port = await unusedPort();
  const clock = createClock();
  const gen = new LoadGenerator(profile(`http://127.0.0.1:${port}`, { rate: 100 }), clock);
  try {
    await runFor(gen, clock, 500);
    const s = summarize(gen.log);
    assert.equal(s.scheduled, 50);
    assert.equal(s.errorsByKind.refused, 50, JSON.stringify(s));
    // Counted from the scheduled send: a loopback ECONNREFUSED takes well under 1 ms, so this is the
    // generator's timer lateness on a loaded 2-core machine (tens of ms) with room to spare. It still fails
    // for a client that retries a refused connection with a backoff before reporting it, and is far under
    // the 2 s timeout, so a refusal noticed only at the timeout fails too.
    assert.ok(s.maxMs! < 300, `refused after ${s.maxMs} ms`);
  } finally {
    await gen.stop();
  }
});

test('a service that never answers: every request times out at the timeout, and stop() waits no longer than that', async () => {
  const clock = createClock();
  const server = await startServer((req) => req.resume());
  // Fewer connections than requests in flight: most time out while still queued inside undici.
  const gen = new LoadGenerator(profile(server.url, { rate: 200, timeoutMs: 300, connections: 4 }), clock);
  try {
    gen.start(500);
    while (gen.log.count === 0) await sleep(2);
    await sleep(gen.log.scheduledMs[0]! + 510 - clock.now());
    const stopAt = clock.now();
    await gen.stop();
    const waited = clock.now() - stopAt;
    const doneAt = clock.now();
    const lastDeadline = gen.log.scheduledMs[gen.log.count - 1]! + 300;
    assert.ok(doneAt >= lastDeadline, 'stop() waited for the last deadline');
    // From the log's own last deadline: the sweep timer that fires at it, aborting what undici still holds
    // and closing 4 connections; tens of ms on a loaded machine, 250 ms allowed. A stop() that waits for
    // undici's own 300 ms backstop timers (started at dispatch, later than the schedule) or a second
    // timeout ends 300 ms+ after it.
    assert.ok(doneAt - lastDeadline < 250, `stop() returned ${(doneAt - lastDeadline).toFixed(0)} ms after the last deadline`);
    // stop() came 10 ms after the last scheduled send, so it waits about 300 - 10 ms: the deadline above plus
    // 300 ms of slack for a loaded machine. 600 is still under two timeouts (a stop() that waits twice fails).
    assert.ok(waited < 300 + 300, `stop() took ${waited} ms`);
    const s = summarize(gen.log);
    assert.equal(s.scheduled, 100);
    assert.equal(s.errorsByKind.timeout, 100, JSON.stringify(s));
    assert.equal(s.maxMs, 300);
    assert.equal(gen.inFlight, 0, 'every slot came back, also those still queued in undici');
    for (let i = 0; i < gen.log.count; i++) assert.notEqual(gen.log.outcome[i], Outcome.pending);
  } finally {
    await gen.stop();
    await server.close();
  }
});
