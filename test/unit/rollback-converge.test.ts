/**
 * The one way a rollback runs (lib/engine/converge.ts), with a small in-memory world standing in for a target:
 * a condition already true is done with nothing done; one that converging reaches is done with what was found,
 * done and seen; one it cannot reach is failed with what is broken and what to do, never done.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convergeRollback } from '../../lib/engine/converge.ts';
import type { HoldResult, Rollback, ScenarioContext } from '../../lib/scenario/define.ts';

/** A replica set as a number: `ready` of `desired`; converging starts `fixes` of what is missing. */
function world(ready: number, desired: number, fixes = Infinity) {
  const w = {
    ready,
    converged: 0,
    checks: 0,
    rollback: {
      description: 'start what is missing',
      restores: (p: { want: string }) => `${p.want} replicas ready`,
      byHand: 'look at the replicas',
      async holds(): Promise<HoldResult> {
        w.checks++;
        return { ok: w.ready >= desired, detail: `${w.ready}/${desired} ready` };
      },
      async converge() {
        w.converged++;
        const started = Math.min(fixes, desired - w.ready);
        w.ready += started;
        return `started ${started}`;
      },
    } satisfies Rollback<{ want: string }, null, null>,
  };
  return w;
}

const ctx = (signal = new AbortController().signal) =>
  ({ params: { want: 'all' }, signal }) as unknown as ScenarioContext<{ want: string }>;

test('a condition that already holds is done without converging, and says so', async () => {
  const w = world(3, 3);
  const out = await convergeRollback(w.rollback, ctx(), { selected: null });
  assert.deepEqual(out, { status: 'done', alreadyHeld: true, restores: 'all replicas ready', detail: 'already held: 3/3 ready' });
  assert.equal(w.converged, 0);
});

test('a condition that does not hold is converged on and checked again', async () => {
  const w = world(1, 3);
  const out = await convergeRollback(w.rollback, ctx(), { selected: null });
  assert.deepEqual(out, {
    status: 'done',
    alreadyHeld: false,
    restores: 'all replicas ready',
    detail: 'found 1/3 ready; started 2; now 3/3 ready',
  });
  assert.deepEqual([w.converged, w.checks], [1, 2]);
  // Idempotent: run again on the world it left, it finds the condition true and does nothing.
  const again = await convergeRollback(w.rollback, ctx(), { selected: null });
  assert.equal(again.alreadyHeld, true);
  assert.equal(w.converged, 1);
});

test('converging that returns but does not reach the condition is failed, with what is broken and what to do', async () => {
  const w = world(0, 3, 1);
  const out = await convergeRollback(w.rollback, ctx(), { selected: null });
  assert.equal(out.status, 'failed');
  assert.equal(out.alreadyHeld, false);
  assert.equal(out.detail, 'not restored: all replicas ready. After converging (started 1): 1/3 ready. By hand: look at the replicas');
});

test('converging that throws is failed with the error and what was found', async () => {
  const w = world(2, 3);
  w.rollback.converge = async () => {
    throw new Error('the controller refused');
  };
  const out = await convergeRollback(w.rollback, ctx(), { selected: null });
  assert.equal(out.status, 'failed');
  assert.equal(
    out.detail,
    'not restored: all replicas ready. Found: 2/3 ready; converging failed: the controller refused. By hand: look at the replicas',
  );
});

test('a check that cannot answer is not a condition that holds: converging runs, and an unanswerable check after it fails the rollback', async () => {
  const w = world(3, 3);
  w.rollback.holds = async () => {
    throw new Error('connection refused');
  };
  const out = await convergeRollback(w.rollback, ctx(), { selected: null });
  assert.equal(w.converged, 1);
  assert.equal(out.status, 'failed');
  assert.match(out.detail, /After converging \(started 0\): could not check: connection refused\. By hand: look at the replicas$/);
});

test('a condition with no read-only check (ok: null) is decided by converging: done when it returns, failed when it throws', async () => {
  const unknown = async (): Promise<HoldResult> => ({ ok: null, detail: 'no check command' });
  const ok = world(0, 1);
  ok.rollback.holds = unknown;
  const done = await convergeRollback(ok.rollback, ctx(), { selected: null });
  assert.deepEqual([done.status, done.alreadyHeld, done.detail], ['done', false, 'started 1']);

  const bad = world(0, 1);
  bad.rollback.holds = unknown;
  bad.rollback.converge = async () => {
    throw new Error('rollback command exited 1');
  };
  const failed = await convergeRollback(bad.rollback, ctx(), { selected: null });
  assert.equal(failed.status, 'failed');
  assert.match(failed.detail, /Found: no check command; converging failed: rollback command exited 1/);
});

test('a converge cut by its time limit is failed as such', async () => {
  const w = world(0, 1);
  const ac = new AbortController();
  w.rollback.converge = async () => {
    ac.abort();
    throw new Error('aborted');
  };
  const out = await convergeRollback(w.rollback, ctx(ac.signal), { selected: null }, { timeoutMs: 10_000 });
  assert.equal(out.status, 'failed');
  assert.match(out.detail, /converging failed: did not finish within 10s/);
});
