// The engine's data-classes phase on a run state made by the engine itself (no target opened): a target
// without a read-back, a run stopped before its fault and an interrupted run each leave both classes not
// measured with the reason, journaled, and scored as null, never as nothing lost; a load without attachments
// measures nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExec } from '../../lib/adapters/exec.ts';
import { RunAbort } from '../../lib/engine/context.ts';
import { measureDataClasses } from '../../lib/engine/phases/data-classes.ts';
import { openRun } from '../../lib/engine/phases/state.ts';
import { createRequestLog } from '../../lib/measure/request-log.ts';
import { scoreRpoClasses } from '../../lib/score/rpo-classes.ts';
import podKill from '../../scenarios/pod-kill.ts';
import { sampleDrill } from '../support/record-sample.ts';

function runState(t: { after(f: () => void): void }) {
  const resultsDir = mkdtempSync(join(tmpdir(), 'drill-engine-classes-'));
  t.after(() => rmSync(resultsDir, { recursive: true, force: true }));
  const drill = sampleDrill();
  const s = openRun({
    drill,
    entry: drill.scenarios[0]!,
    scenario: podKill as never,
    adapters: { exec: createExec() },
    serviceUrl: null,
    resultsDir,
    targetDetails: { kind: 'lab' },
    signal: new AbortController().signal,
    hooks: { event: () => {} },
  });
  t.after(() => {
    s.release();
    s.journal.close();
  });
  const classes = {
    files: [{ seq: 0, name: 'orders/a/attachment', sha256: 'x', sentMs: 10, ackMs: 20, outcome: 'ok' as const }],
    logs: [{ seq: 0, token: 'a', replica: 'orders-1', sentMs: 10, ackMs: 20, outcome: 'ok' as const }],
  };
  s.facts.load = { log: createRequestLog(), seconds: [], startMs: 0, endMs: 100, classes };
  return s;
}

const journaled = (s: { facts: { dir: string } }) =>
  readFileSync(join(s.facts.dir, 'events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'rpo.classes');

test('a target that cannot read the classes back reports both not measured, with the reason, scored null', async (t) => {
  const s = runState(t);
  s.timeline.mark('fault-injected', 50);
  await measureDataClasses(s);
  assert.deepEqual(
    s.facts.rpoClasses?.map((c) => [c.dataClass, 'reason' in c ? c.reason : 'measured']),
    [
      ['file-storage', 'target lab cannot read the file-storage and logs classes back (no data-class read-back)'],
      ['logs', 'target lab cannot read the file-storage and logs classes back (no data-class read-back)'],
    ],
  );
  assert.equal(journaled(s).length, 1);
  const scored = scoreRpoClasses({
    entryClass: 'database',
    entryRpo: { targetSeconds: 900, measuredSeconds: null, method: null, lostWrites: null, unknownWrites: null, met: null },
    measured: s.facts.rpoClasses!,
    policy: s.drill.policy,
  });
  assert.deepEqual(
    scored.map((c) => [c.dataClass, c.measuredSeconds, c.lost, c.met, c.targetSeconds]),
    [
      ['file-storage', null, null, null, 3600],
      ['logs', null, null, null, 86_400],
    ],
  );
});

test('no fault injected, or an interrupted run: not measured, and why', async (t) => {
  const before = runState(t);
  await measureDataClasses(before);
  assert.match((before.facts.rpoClasses![0] as { reason: string }).reason, /^no fault was injected/);
  const cut = runState(t);
  cut.timeline.mark('fault-injected', 50);
  cut.facts.abort = new RunAbort('signal', 'interrupted (SIGINT)');
  await measureDataClasses(cut);
  assert.match((cut.facts.rpoClasses![1] as { reason: string }).reason, /^the run was interrupted \(interrupted \(SIGINT\)\)/);
});

test('a load without attachments has no file ledger: nothing is read back, nothing journaled', async (t) => {
  const s = runState(t);
  s.timeline.mark('fault-injected', 50);
  s.facts.load = { ...s.facts.load!, classes: undefined };
  await measureDataClasses(s);
  assert.equal(s.facts.rpoClasses, undefined);
  assert.deepEqual(journaled(s), []);
});
