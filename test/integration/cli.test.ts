import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { labDown, labUp } from '../../lib/lab/index.ts';
import { drillCli } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

/** The CLI's contract for bad input and read-only commands: exit codes, messages, and nothing touched. */
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) {
    await labDown({ dir: d }).catch(() => undefined);
    rmSync(d, { recursive: true, force: true });
  }
});
function dir(name: string): string {
  const d = scratchDir(name);
  dirs.push(d);
  return d;
}

test('drill list names the shipped scenarios and drills', async () => {
  const r = await drillCli(['list']).done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /pod-kill/);
  assert.match(r.stdout, /exec/);
  assert.match(r.stdout, /drills\/lab\.yaml\s+adhoc/);
});

test('every shipped drill validates', async () => {
  const files = readdirSync('drills')
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join('drills', f));
  assert.ok(files.length >= 2);
  const r = await drillCli(['validate', ...files]).done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const f of files) assert.match(r.stdout, new RegExp(`${f}: ok`));
});

test('validate prints file:line:col: path: message and exits 2', async () => {
  const r = await drillCli(['validate', 'test/fixtures/drills/too-many-kills.yaml', 'drills/lab.yaml']).done;
  assert.equal(r.code, 2);
  assert.match(r.stdout, /^test\/fixtures\/drills\/too-many-kills\.yaml:\d+:\d+: scenarios\[0\]\.params\.count: cannot kill 5 replicas/m);
  assert.match(r.stdout, /drills\/lab\.yaml: ok/);
  assert.match(r.stderr, /1 problem in 1 of 2 files/);
});

test('a selector that matches no lab replica, or does not parse, is invalid input', async () => {
  const r = await drillCli(['validate', 'test/fixtures/drills/selector-matches-nothing.yaml']).done;
  assert.equal(r.code, 2);
  assert.match(
    r.stdout,
    /selector-matches-nothing\.yaml:7:\d+: scenarios\[0\]\.params\.selector: "app=payments" matches no replica of the lab, whose replicas are labelled app=orders,tier=web/,
  );
  assert.match(
    r.stdout,
    /selector-matches-nothing\.yaml:10:\d+: scenarios\[1\]\.params\.selector: label selector "app in \(orders": unbalanced parentheses/,
  );
});

test('run refuses an invalid drill before touching anything', async () => {
  const lab = join(dir('cli-invalid'), 'lab');
  const r = await drillCli(['run', 'test/fixtures/drills/too-many-kills.yaml', '--results', dir('cli-invalid-results')], {
    DRILL_LAB_DIR: lab,
  }).done;
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not a valid drill/);
  assert.match(r.stderr, /not touched: nothing/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for an expected failure');
  assert.equal(existsSync(lab), false, 'the lab was not started');
});

test('an unknown --scenario is invalid input', async () => {
  const r = await drillCli(['run', 'drills/lab.yaml', '--scenario', 'nope']).done;
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--scenario nope: no such scenario entry/);
  assert.match(r.stderr, /kill-one-replica/);
});

test('an unreachable target is invalid input: exit 2, no load sent', async () => {
  const results = dir('cli-unreachable');
  const r = await drillCli(['run', 'test/fixtures/drills/unreachable-http.yaml', '--yes', '--results', results]).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /target http:\/\/127\.0\.0\.1:9 is unreachable/);
  assert.equal(existsSync(join(results, 'runs')), false, 'no run was started');
});

test('a non-lab target is not acted on without confirmation', async () => {
  const r = await drillCli(['run', 'test/fixtures/drills/unreachable-http.yaml']).done;
  assert.equal(r.code, 2);
  assert.match(r.stderr, /refusing to act on http target/);
});

test('plan touches nothing when the lab is down, and names what would be hit when it is up', { timeout: 90_000 }, async () => {
  const lab = join(dir('cli-plan'), 'lab');
  const down = await drillCli(['plan', 'drills/lab.yaml'], { DRILL_LAB_DIR: lab }).done;
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /action 1\. kill replicas: SIGKILL the selected replicas/);
  assert.match(down.stdout, /rollback: make sure the workload is back at its desired replica count/);
  assert.match(down.stdout, /\(resolved at run time\)/);
  assert.equal(existsSync(lab), false, 'plan did not start the lab');

  // The lab lives below the scratch dir, which the file's after hook only removes: it is taken down here.
  try {
    await labUp({ dir: lab, replicas: 3 });
    const up = await drillCli(['plan', 'drills/lab.yaml', '--json'], { DRILL_LAB_DIR: lab }).done;
    assert.equal(up.code, 0, up.stderr);
    const plan = JSON.parse(up.stdout);
    const first = plan.scenarios[0].actions[0];
    assert.equal(first.targets.length, 1);
    assert.match(first.targets[0], /^orders-\S+ \(pid \d+\)$/);
    assert.equal(plan.scenarios[1].actions[0].targets.length, 2, '50% of 3 rounds up to 2');
    const failover = plan.scenarios[2].actions.find((a: { name: string }) => a.name === 'fail over');
    assert.deepEqual(failover.targets, ['pg-promote: promote n2, the one that replayed the most WAL, and repoint the endpoint']);
  } finally {
    const stopped = await labDown({ dir: lab });
    assert.ok(stopped.stopped.length > 0, `lab down stopped what lab up started: ${JSON.stringify(stopped)}`);
  }
});
