/**
 * The halt switch on the lab: the file named by DRILL_HALT_FILE. Present before a run, nothing starts (not
 * even the lab); written during one, the run aborts and rolls back within 2 s of the file appearing (exit 4).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labDown } from '../../lib/lab/index.ts';
import { haltFileReader, watchHalt } from '../../lib/engine/halt.ts';
import type { RunAbort } from '../../lib/engine/context.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

const dirs: string[] = [];
const labs: string[] = [];
after(async () => {
  for (const dir of labs) await labDown({ dir }).catch(() => undefined);
  for (const dir of [...labs, ...dirs]) rmSync(dir, { recursive: true, force: true });
});

function workspace(name: string) {
  const lab = scratchDir(`lab-halt-${name}`);
  const results = scratchDir(`results-halt-${name}`);
  const marks = scratchDir(`marks-halt-${name}`);
  labs.push(lab);
  dirs.push(results, marks);
  const halt = join(marks, 'halt');
  return { lab, results, marks, halt, env: { DRILL_LAB_DIR: lab, DRILL_TEST_MARKS: marks, DRILL_HALT_FILE: halt } };
}

test('halt file present: no drill starts (exit 2), the lab is not even brought up, the reason is named', { timeout: 60_000 }, async () => {
  const w = workspace('before');
  writeFileSync(w.halt, 'database migration running, ask #sre\n');
  const r = await drillCli(['run', 'test/fixtures/drills/slow-fault.yaml', '--results', w.results], w.env).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`halt switch set: halt file ${w.halt} by uid \\d+ at \\S+: database migration running, ask #sre`));
  assert.deepEqual(runFolders(w.results), []);
  assert.equal(existsSync(join(w.lab, 'lab.json')) || existsSync(join(w.lab, 'daemon.json')), false, 'the lab was not started');
  assert.equal(existsSync(join(w.marks, 'fault-started')), false);
});

test('halt file written during the fault: aborted within 2 s, the rollback ran, exit 4', { timeout: 180_000 }, async (t) => {
  const w = workspace('during');
  const run = drillCli(['run', 'test/fixtures/drills/slow-fault.yaml', '--results', w.results], w.env);
  await waitFor('the fault to start', () => existsSync(join(w.marks, 'fault-started')), 120_000);
  writeFileSync(w.halt, 'customer incident INC-9');
  const setAt = Date.now();
  const r = await run.done;
  assert.equal(r.code, 4, r.stderr);
  const [dir] = runFolders(w.results);
  const events = readEvents(dir!);
  const abort = events.find((e) => e.type === 'run.abort');
  assert.ok(abort, events.map((e) => e.type).join(', '));
  assert.match(String(abort.reason), /halt switch set: halt file .* customer incident INC-9/);
  const latencyMs = Date.parse(String(abort.at)) - setAt;
  t.diagnostic(`halt to abort on the lab: ${latencyMs} ms`);
  assert.ok(latencyMs <= 2000, `aborted ${latencyMs} ms after the halt file appeared`);
  assert.ok(existsSync(join(w.marks, 'rolled-back')), 'the rollback command ran');
  const rec = JSON.parse(readFileSync(join(dir!, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'aborted');
  assert.equal(rec.abort.kind, 'stop-condition');
  assert.equal(rec.actions[0].rollback.status, 'done');
  assert.equal(rec.window, null, 'no maintenance window applies to the lab');
});

test('the switch is polled at least once a second: ten halts at random moments are each seen within 1 s', {
  timeout: 60_000,
}, async (t) => {
  const w = workspace('poll');
  const latencies: number[] = [];
  for (let i = 0; i < 10; i++) {
    rmSync(w.halt, { force: true });
    const seen = new Promise<RunAbort>((resolve) => {
      const stop = watchHalt(
        [haltFileReader(w.halt)!],
        (reason) => {
          stop();
          resolve(reason);
        },
        () => {},
      );
    });
    // A random phase against the poll timer: a slow poll cannot pass ten of these by luck.
    await new Promise((r) => setTimeout(r, Math.random() * 1000));
    writeFileSync(w.halt, `halt ${i}`);
    const setAt = Date.now();
    const reason = await seen;
    latencies.push(Date.now() - setAt);
    assert.match(reason.message, new RegExp(`halt ${i}$`));
  }
  t.diagnostic(`halt seen after ${latencies.join(', ')} ms`);
  assert.ok(Math.max(...latencies) <= 1000, `slowest ${Math.max(...latencies)} ms`);
});
