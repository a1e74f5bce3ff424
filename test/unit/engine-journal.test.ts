import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, pendingRollbacks, readJournal } from '../../lib/engine/journal.ts';
import { recoverRun } from '../../lib/engine/recover.ts';
import type { JournaledEvent } from '../../lib/engine/events.ts';
import type { ScenarioDefinition } from '../../lib/scenario/define.ts';
import { StopWatch } from '../../lib/engine/stop.ts';
import { worstExitCode } from '../../lib/engine/drill.ts';
import type { SecondStats } from '../../lib/measure/request-log.ts';
import type { StopCondition } from '../../lib/config/types.ts';
import { createHistogram, encodeHistogram, recordMs } from '../../lib/measure/histogram.ts';

test('the journal survives a torn last line and tells which rollbacks are pending', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drill-journal-'));
  try {
    const path = join(dir, 'events.jsonl');
    const j = new Journal(path);
    // Bare events: the journal keeps whatever it is given, and recovery needs only these fields.
    const ev = (type: string, extra: Record<string, unknown> = {}) =>
      j.append({ type, ...extra } as JournaledEvent, new Date(0).toISOString(), 0);
    ev('run.start');
    ev('action.intent', { action: 0, name: 'kill replicas', selected: ['orders-1'] });
    ev('action.done', { action: 0 });
    ev('action.intent', { action: 1, name: 'second' });
    ev('rollback.start', { action: 1 });
    ev('rollback.done', { action: 1 });
    j.close();
    appendFileSync(path, '{"type":"rollback.st'); // the crash happened mid-write
    const events = readJournal(path);
    assert.equal(events.length, 6);
    const pending = pendingRollbacks(events);
    assert.deepEqual(
      pending.map((e) => e.name),
      ['kill replicas'],
    );
    assert.deepEqual(pending[0]!.selected, ['orders-1']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A real run's journal (kill-half-oldest-first, cut after the action as if the harness died while observing):
// journals written before the events were typed must still recover.
const OLD_JOURNAL = new URL('../fixtures/journals/kill-half-crashed-in-observe.jsonl', import.meta.url);

test('a journal in the format of earlier versions still tells what to roll back, and recover hands the rollback what was journaled', async () => {
  const events = readJournal(OLD_JOURNAL.pathname);
  assert.equal(events.length, 6);
  const pending = pendingRollbacks(events);
  assert.equal(pending.length, 1);
  assert.equal(pending[0]!.action, 0);
  assert.equal(pending[0]!.name, 'kill replicas');
  assert.deepEqual(
    (pending[0]!.selected as { name: string }[]).map((r) => r.name),
    ['orders-c4f6-2', 'orders-c4f6-3'],
  );

  const results = mkdtempSync(join(tmpdir(), 'drill-old-journal-'));
  try {
    const id = '20261202T060010Z-kill-half-oldest-first-70efde';
    mkdirSync(join(results, 'runs', id), { recursive: true });
    const path = join(results, 'runs', id, 'events.jsonl');
    // The same journal, its target swapped for an http one so the rollback runs without a lab.
    const lines = readFileSync(OLD_JOURNAL, 'utf8').trimEnd().split('\n');
    const start = JSON.parse(lines[0]!);
    start.target = { kind: 'http', url: 'http://127.0.0.1:9' };
    writeFileSync(path, [JSON.stringify(start), ...lines.slice(1)].join('\n') + '\n');

    let handed: { selected: unknown; result?: unknown; params: unknown } | null = null;
    // The workload as the rollback finds it: one of three ready until it converges.
    let ready = 1;
    const podKill = {
      name: 'pod-kill',
      actions: [
        {
          name: 'kill replicas',
          rollback: {
            description: 'wait for replacements',
            restores: 'every replica ready',
            holds: async () => ({ ok: ready === 3, detail: `${ready}/3 ready` }),
            converge: async (ctx: { params: unknown }, journaled: { selected: unknown; result?: unknown }) => {
              handed = { ...journaled, params: ctx.params };
              ready = 3;
              return 'replicas back';
            },
          },
        },
      ],
    } as unknown as ScenarioDefinition;
    const out = await recoverRun(results, id, new Map([['pod-kill', podKill]]), () => undefined);
    assert.deepEqual(out, [{ run: id, action: 'kill replicas', status: 'done', detail: 'replicas back; 3/3 ready' }]);
    assert.ok(handed);
    const h = handed as { selected: unknown; result?: unknown; params: unknown };
    assert.deepEqual(h.selected, pending[0]!.selected);
    assert.deepEqual(
      (h.result as { pid: number }[]).map((r) => r.pid),
      [9645, 9646],
    );
    assert.deepEqual(h.params, { selector: 'app=orders', count: '50%', mode: 'oldest', gracePeriod: '0s' });

    const after = readJournal(path);
    assert.deepEqual(
      after.slice(6).map((e) => [e.type, e.recovered]),
      [
        ['rollback.start', true],
        ['rollback.done', true],
        ['run.recovered', true],
      ],
    );
    assert.deepEqual(pendingRollbacks(after), [], 'nothing left to recover');
  } finally {
    rmSync(results, { recursive: true, force: true });
  }
});

function second(t: number, ok: number, failed: number, latencies: number[] = []): SecondStats {
  const h = createHistogram();
  for (const l of latencies) recordMs(h, l);
  return {
    t,
    at: new Date(t * 1000).toISOString(),
    scheduled: ok + failed,
    sent: ok + failed,
    ok,
    errors: { timeout: 0, refused: failed, http5xx: 0, http4xx: 0, other: 0 },
    dropped: 0,
    p50Ms: null,
    p95Ms: null,
    p99Ms: null,
    maxMs: null,
    hdr: encodeHistogram(h),
  };
}

test('a stop condition fires only after holding for its whole duration', () => {
  const cond: StopCondition = { source: 'error_rate > 50% for 3s', metric: { kind: 'error_rate' }, op: '>', value: 0.5, forMs: 3000 };
  const w = new StopWatch([cond]);
  assert.equal(w.observe(second(0, 10, 90)), null);
  assert.equal(w.observe(second(1, 10, 90)), null);
  assert.equal(w.observe(second(2, 90, 10)), null, 'a good second breaks the streak');
  assert.equal(w.observe(second(3, 0, 0)), null, 'a second without traffic breaks it too');
  assert.equal(w.observe(second(4, 10, 90)), null);
  assert.equal(w.observe(second(5, 10, 90)), null);
  const fired = w.observe(second(6, 40, 60));
  assert.ok(fired);
  assert.equal(fired.condition, cond);
  assert.equal(fired.value, 0.6);
});

test("latency stop conditions read any percentile from the second's histogram", () => {
  const cond: StopCondition = {
    source: 'p(90) > 800ms for 1s',
    metric: { kind: 'latency', aggregate: { p: 90 } },
    op: '>',
    value: 800,
    forMs: 1000,
  };
  const w = new StopWatch([cond]);
  const fewSlow = Array.from({ length: 100 }, (_, i) => (i < 95 ? 10 : 1000));
  assert.equal(w.observe(second(0, 100, 0, fewSlow)), null, 'p90 is fast when only 5% are slow');
  const manySlow = Array.from({ length: 100 }, (_, i) => (i < 85 ? 10 : 1000));
  const fired = w.observe(second(1, 100, 0, manySlow));
  assert.ok(fired, 'p90 lands among the slow 15%');
  assert.ok(Math.abs(fired.value - 1000) < 1, `p90 ${fired.value}`);
});

test('the drill exits with its most serious scenario code', () => {
  assert.equal(worstExitCode([]), 0);
  assert.equal(worstExitCode([0, 1, 0]), 1);
  assert.equal(worstExitCode([1, 3]), 3);
  assert.equal(worstExitCode([3, 4, 1]), 4);
  assert.equal(worstExitCode([4, 5]), 5);
  assert.equal(worstExitCode([5, 70, 0]), 5);
  assert.equal(worstExitCode([70, 4]), 70);
});
