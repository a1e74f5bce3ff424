import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pendingRollbacks, readJournal } from '../../lib/engine/journal.ts';
import { labDown, labStatus, labUp, type LabStatus } from '../../lib/lab/index.ts';
import { signal } from '../../lib/util/proc.ts';
import { drillCli, REPO } from './cli.ts';
import {
  CRASH_DRILLS,
  type Cell,
  type CrashDrill,
  eventLabel,
  type KillPoint,
  killPointDensity,
  killPoints,
  matrixTable,
  onlyRun,
  readJournalLines,
  recovered,
  runDrill,
  writeMatrix,
} from './crash-points.ts';
import { labFixture } from './lab.ts';

/**
 * One row of the crash-point matrix, as its own test file under test/integration/crash-points/: the harness
 * SIGKILLed right after each step of the drill's journal (see killPoints: DRILL_CRASH_POINTS=lines or
 * every-line for denser matrices), then `drill recover`: the lab must be healthy by its
 * own status, the run's journal closed, and a write through the front acknowledged. The full following drill
 * runs once, at the end (each kill point is already a whole run: one more per point would double the time).
 *
 * The rows are files so that `npm test` runs two at a time, each on its own lab: a row is mostly waiting (CLI
 * starts, probes, rollbacks) and asserts recovery, not timing. A long row is cut into parts (every `of`-th
 * kill point from `part`), each with its own lab and reference run. Each part writes its table to
 * test-results/crash-points/<row>.md (or under $DRILL_CRASH_MATRIX, a folder).
 */
const MATRIX_DIR = process.env.DRILL_CRASH_MATRIX || join(REPO, 'test-results', 'crash-points');

/** Polls the lab's status until it lists no problem; a converging lab (a replica starting) gets a few seconds. */
async function settle(dir: string, ms: number): Promise<LabStatus> {
  const deadline = performance.now() + ms;
  for (;;) {
    const s = await labStatus({ dir });
    if ((s.up && s.problems.length === 0) || performance.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A write through the front, acknowledged (201) within a few seconds. */
async function writeThroughFront(s: LabStatus, tag: string): Promise<boolean> {
  if (!s.info) return false;
  const deadline = performance.now() + 8000;
  for (let seq = 0; performance.now() < deadline; seq++) {
    const code = await fetch(`${s.info.serviceUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'crash-check', token: `${tag}-${seq}`, seq }),
      signal: AbortSignal.timeout(2000),
    }).then(
      async (r) => (await r.arrayBuffer(), r.status),
      () => 0,
    );
    if (code === 201) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** PIDs of processes running from the lab's restore scratch folder (a restore's cluster left behind). */
async function scratchProcesses(labDir: string): Promise<number[]> {
  const prefix = join(labDir, 'restores') + '/';
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (argv.split('\0').some((a) => a.startsWith(prefix))) out.push(Number(name));
  }
  return out;
}

/** After a cell that did not recover: put the lab back, so the next kill point starts from a healthy lab. */
async function repair(dir: string, s: LabStatus, seen: Set<number>): Promise<void> {
  for (const w of s.database?.walsenders ?? []) if (w.stopped) signal(w.pid, 'SIGCONT');
  for (const pid of await scratchProcesses(dir)) {
    seen.add(pid);
    signal(pid, 'SIGKILL');
  }
  await labUp({ dir, replicas: 2 });
  // `lab up` leaves a running lab's dead standby alone: a full restart mends the pair.
  if ((await settle(dir, 5000)).problems.length > 0) {
    await labDown({ dir });
    await labUp({ dir, replicas: 2 });
  }
  const after = await settle(dir, 10_000);
  assert.deepEqual(after.problems, [], 'the lab could be repaired between kill points');
}

async function crashAndRecover(d: CrashDrill, file: string, root: string, labDir: string, point: KillPoint, seen: Set<number>) {
  const { line, event } = point;
  const t0 = performance.now();
  const results = join(root, `results-${line}`);
  const run = await runDrill(file, results, labDir, point.spec);
  const runDir = await onlyRun(results);
  const lines = await readJournalLines(runDir);
  const killed = run.signal === 'SIGKILL';
  const t1 = performance.now();
  const rec = drillCli(['recover', '--results', results], { DRILL_LAB_DIR: labDir, DRILL_CRASH_AFTER_EVENT: '' });
  const timer = setTimeout(() => rec.child.kill('SIGKILL'), 120_000);
  const r = await rec.done.finally(() => clearTimeout(timer));
  const t2 = performance.now();
  const pending = pendingRollbacks(readJournal(join(runDir, 'events.jsonl'))).length;
  const s = await settle(labDir, 10_000);
  const write = await writeThroughFront(s, `crash-${d.scenario}-${line}-${Date.now()}`);
  const leftovers = await scratchProcesses(labDir);
  const cell: Cell = {
    drill: d.label,
    line,
    event,
    crashedAfter: killed ? eventLabel(lines[lines.length - 1]!) : null,
    run: killed ? 'SIGKILL' : `exit ${run.code}`,
    recoverExit: r.code,
    pending,
    healthy: s.up && s.problems.length === 0,
    problems: s.problems.map((p) => `${p.part}: ${p.detail}`),
    write,
    leftovers: leftovers.length,
    runMs: Math.round(t1 - t0),
    recoverMs: Math.round(t2 - t1),
    ms: Math.round(performance.now() - t0),
  };
  const last = lines[lines.length - 1]!;
  if (killed)
    assert.equal(
      `${last.name ? `${last.type}:${last.name}` : last.type}#`,
      point.spec.replace(/#\d+$/, '#'),
      'the run died at its kill point',
    );
  if (!recovered(cell)) {
    cell.problems.push(`recover said: ${(r.stdout + r.stderr).trim().split('\n').slice(-3).join(' / ')}`);
    await repair(labDir, s, seen);
  }
  return cell;
}

// A hang fails at its own point: each run is cut at 180 s and each recover at 120 s (runDrill, crashAndRecover).
// This bound is only a backstop over up to 21 points; 900 s measured the machine: at load average 17-19 on
// 2 cores every db-failover point recovered, at about 60 s each, and the matrix still ran out of time.
const MATRIX_BACKSTOP_MS = 3_600_000;

/** Registers the row `label` of CRASH_DRILLS (or its part `part` of `of`) as this file's test. */
export function crashMatrixRow(label: string, split: { part: number; of: number } = { part: 1, of: 1 }): void {
  const d = CRASH_DRILLS.find((x) => x.label === label);
  if (!d) throw new Error(`no crash drill labelled ${label}: ${CRASH_DRILLS.map((x) => x.label).join(', ')}`);
  const name = split.of === 1 ? d.label : `${d.label}, part ${split.part} of ${split.of}`;
  const cells: Cell[] = [];
  after(async () => {
    if (cells.length === 0) return;
    const file = join(MATRIX_DIR, `${name.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}.md`);
    await mkdir(MATRIX_DIR, { recursive: true });
    await writeMatrix(file, cells);
    console.log(`\ncrash-point matrix (${file}):\n${matrixTable(cells)}\n`);
  });
  describe(`crash points: ${name}`, { timeout: MATRIX_BACKSTOP_MS }, () => {
    const lab = labFixture(`crash-${d.scenario}`);

    test('SIGKILL after each journal line, then drill recover: the lab is healthy, the journal closed, the next drill passes', async (t) => {
      const t0 = performance.now();
      await labUp({ dir: lab.dir, replicas: 2, ...d.lab });
      await d.prepare?.(lab.dir);
      const file = join(lab.root, 'drill.yaml');
      await writeFile(file, d.yaml);

      // The kill points come from a real passing run of this drill, never from a count written here.
      const ref = await runDrill(file, join(lab.root, 'results-reference'), lab.dir);
      assert.equal(ref.code, 0, `the reference run passes:\n${ref.stdout}${ref.stderr}`);
      const all = killPoints(
        await readJournalLines(await onlyRun(join(lab.root, 'results-reference'))),
        killPointDensity(process.env, d.density),
      );
      // Every of-th point: the later points are the longer runs, so the parts take about the same time.
      const points = all.filter((_, i) => i % split.of === split.part - 1);
      const mine: Cell[] = [];
      for (const p of points) {
        await d.beforeEachRun?.(lab.dir);
        const cell = await crashAndRecover(d, file, lab.root, lab.dir, p, lab.seen);
        t.diagnostic(
          `line ${p.line} ${p.event}: ${cell.run}, recover exit ${cell.recoverExit}, ${recovered(cell) ? 'recovered' : `NOT recovered (${cell.problems.join('; ')})`} in ${cell.ms} ms (run ${cell.runMs}, recover ${cell.recoverMs})`,
        );
        mine.push(cell);
        cells.push(cell);
      }

      // The lab by its own CLI, as a person checks it, then the following drill, once.
      const status = await drillCli(['lab', 'status', '--dir', lab.dir, '--json']).done;
      assert.deepEqual(JSON.parse(status.stdout).problems, []);
      assert.equal(status.code, 0);
      await d.beforeEachRun?.(lab.dir);
      const next = await runDrill(file, join(lab.root, 'results-next'), lab.dir);
      assert.equal(next.code, 0, `the following drill passes:\n${next.stdout}${next.stderr}`);
      t.diagnostic(`${points.length} kill points in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

      assert.deepEqual(
        mine.filter((c) => !recovered(c)).map((c) => `line ${c.line} ${c.event}: recover exit ${c.recoverExit}; ${c.problems.join('; ')}`),
        [],
        'every kill point recovered',
      );
    });
  });
}
