import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LoadGenerator } from '../../lib/load/generator.ts';
import { Outcome } from '../../lib/measure/request-log.ts';
import { createClock } from '../../lib/measure/clock.ts';
import { summarize } from '../../lib/measure/summary.ts';
import { profile, runFor, sleep, startServer } from '../support/load-servers.ts';

const CHILD_ENV = 'DRILL_LOAD_LIFECYCLE_CHILD';

/**
 * The child half of the exit test: load against a server that answers some requests and sits on the
 * others, stop, close the server, report, and then fall off the end of the module. If the generator
 * left a timer or a socket behind, the process would not exit on its own.
 */
async function child(): Promise<void> {
  const clock = createClock();
  let n = 0;
  const server = await startServer((req, res) => {
    req.resume();
    if (++n % 2 === 0) res.end('ok');
  });
  const gen = new LoadGenerator(profile(server.url, { rate: 200, timeoutMs: 300, connections: 8 }), clock);
  await runFor(gen, clock, 500);
  await server.close();
  // Closed handles leave the list in libuv's close phase, after the close callbacks above.
  await sleep(20);
  let pending = 0;
  for (let i = 0; i < gen.log.count; i++) if (gen.log.outcome[i] === Outcome.pending) pending++;
  const resources = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
  process.stdout.write(JSON.stringify({ summary: summarize(gen.log), pending, resources }) + '\n');
}

if (process.env[CHILD_ENV]) {
  await child();
} else {
  test('after stop() nothing is pending and nothing keeps the process alive', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, [CHILD_ENV]: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    try {
      const code = await exited;
      assert.equal(code, 0, `child exit ${code}; it did not exit by itself or failed:\n${out}\n${err}`);
      const report = JSON.parse(out.trim()) as { summary: ReturnType<typeof summarize>; pending: number; resources: string[] };
      assert.equal(report.pending, 0);
      assert.deepEqual(report.resources, []);
      assert.equal(report.summary.scheduled, 100);
      assert.ok(report.summary.ok > 0 && report.summary.errorsByKind.timeout > 0, JSON.stringify(report.summary));
    } finally {
      clearTimeout(killer);
      if (proc.exitCode === null && proc.pid !== undefined) proc.kill('SIGKILL');
    }
  });

  test('start and stop are safe to repeat: stop before start, start after stop, concurrent stops', async () => {
    const clock = createClock();
    const server = await startServer((req, res) => {
      req.resume();
      res.end();
    });
    try {
      const unused = new LoadGenerator(profile(server.url), clock);
      await unused.stop();
      unused.start();
      await sleep(30);
      assert.equal(unused.log.count, 0, 'start() after stop() schedules nothing');
      assert.deepEqual(unused.seconds(), []);

      const gen = new LoadGenerator(profile(server.url, { rate: 100 }), clock);
      gen.start();
      gen.start();
      await sleep(300);
      const stopFrom = clock.now();
      const first = gen.stop();
      const stopTo = clock.now();
      const second = gen.stop();
      assert.equal(first, second);
      await first;
      const count = gen.log.count;
      // The count follows from the log's own t0 and the instant stop() was called, not from how long sleep(300)
      // really slept (a loaded machine oversleeps): stop() sends everything scheduled up to its call, one request
      // every 10 ms from t0 on, so exactly floor((stop - t0) / 10) + 1, with stop somewhere in [stopFrom, stopTo].
      const t0 = gen.log.scheduledMs[0]!;
      const expected = (at: number) => Math.floor((at - t0) / 10) + 1;
      assert.ok(
        count >= expected(stopFrom) && count <= expected(stopTo),
        `scheduled ${count}; ${(stopFrom - t0).toFixed(1)} ms from t0 to stop() at 100 req/s is ${expected(stopFrom)}`,
      );
      // And start() did start it: at least 150 ms of the 300 ms sleep ran on schedule (the rest is warm-up).
      assert.ok(count >= 15, `scheduled ${count}`);
      await sleep(50);
      assert.equal(gen.log.count, count, 'nothing scheduled after stop()');
      assert.equal(summarize(gen.log).ok, count);
      assert.equal(
        gen.seconds().reduce((n, s) => n + s.scheduled, 0),
        count,
        'the partial last second is emitted at stop()',
      );
    } finally {
      await server.close();
    }
  });

  test('an invalid profile throws at construction; a listener that throws does not stop the load', async () => {
    const clock = createClock();
    assert.throws(() => new LoadGenerator(profile('ftp://127.0.0.1:1'), clock), /load profile: url .* must be http or https/);
    assert.throws(() => new LoadGenerator(profile('http://127.0.0.1:1', { rate: 0 }), clock), /rate must be a positive number/);
    assert.throws(
      () => new LoadGenerator(profile('http://127.0.0.1:1', { maxInFlight: 1.5 }), clock),
      /maxInFlight must be a positive integer/,
    );

    const server = await startServer((req, res) => {
      req.resume();
      res.end();
    });
    const gen = new LoadGenerator(profile(server.url, { rate: 200 }), clock);
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => void uncaught.push(e);
    // The listener's error is rethrown on its own; catch it here so it does not fail the test run.
    process.prependListener('uncaughtException', onUncaught);
    const listeners = process.listeners('uncaughtException').filter((l) => l !== onUncaught);
    for (const l of listeners) process.removeListener('uncaughtException', l);
    let calls = 0;
    gen.onSecond(() => {
      throw new Error('listener bug');
    });
    gen.onSecond(() => void calls++);
    try {
      await runFor(gen, clock, 1500);
      assert.ok(calls >= 2, `second listener called ${calls} times`);
      assert.equal(calls, gen.seconds().length);
      assert.ok(uncaught.length >= 2 && uncaught.every((e) => (e as Error).message === 'listener bug'));
      assert.equal(summarize(gen.log).ok, 300);
    } finally {
      process.removeListener('uncaughtException', onUncaught);
      for (const l of listeners) process.on('uncaughtException', l);
      await gen.stop();
      await server.close();
    }
  });
}
