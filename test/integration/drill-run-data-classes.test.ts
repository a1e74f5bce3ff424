// RPO per data class through `drill run` on the real lab (PostgreSQL pair, replica processes, Azurite, the log
// shipper): a pod-kill drill whose load uploads attachments (share 0.2), the lab shipping logs every 20 s (1) or 3 s (2).
// 1. Everything survives (logs shipped every 20 s, so the last lines reach Blob only through the pass the drill
//    asks for): run.json's objectives.rpoClasses holds the database, file-storage and logs classes,
//    each met against policy.rpo, 0 lost; every count checked against files.tsv and logs.tsv and against the
//    lab's Azurite read here independently (each file by name and sha256, every shipped segment); logs.tsv's
//    replica column names the replica whose shipped line carries the token; the summary, JUnit, Markdown and
//    HTML show the three classes.
// 2. The log shipper is SIGSTOPped (by its PID) during the baseline, before the fault: every line acknowledged
//    after that is lost, counted exactly against Azurite read independently before the shipper is continued,
//    and the logs RPO runs from the newest line shipped before the stop, within the ship interval of it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blobServiceFromEnv } from '../../lib/adapters/blob/index.ts';
import { LAB_FILES_CONTAINER, LAB_LOGS_CONTAINER, labBlobEnv } from '../../lib/lab/azurite.ts';
import { labDown, labStatus, labUp } from '../../lib/lab/index.ts';
import { shipPendingNow } from '../../lib/lab/log-shipping.ts';
import { labPaths } from '../../lib/lab/paths.ts';
import { readDaemonState } from '../../lib/lab/state.ts';
import { parseFilesTsv, parseLogsTsv } from '../../lib/load/class-ledgers.ts';
import type { LogLedgerEntry } from '../../lib/measure/data-classes.ts';
import { formatCount } from '../../lib/score/format.ts';
import { isProcessUnder } from '../../lib/util/proc.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

const SHIP_MS = 3000;
const LONG_SHIP_MS = 20_000;
const dirs: string[] = [];
const labsUp: string[] = [];
after(async () => {
  for (const dir of labsUp) await labDown({ dir }).catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function workspace(name: string, baseline: string, shipEvery: number) {
  const lab = scratchDir(`lab-${name}`);
  const results = scratchDir(`results-${name}`);
  dirs.push(lab, results);
  const drill = join(results, 'drill.yaml');
  writeFileSync(
    drill,
    `name: data-classes-${name}
kind: adhoc
service: { name: orders, tier: critical, dataClass: database }
target: { kind: lab, replicas: 3, logShipInterval: ${shipEvery / 1000}s }
# The storage SDK loads on a replica's first upload (a second of CPU, by design: replicas start fast without
# it), and this machine runs other labs' tests beside this one (p50 1 s seen at 100 req/s and load 11), so the
# load is light and latency judged loosely: this drill is about the data classes.
policy:
  recoveryWindow: 3s
  slo: { availability: ['rate>=90%'], errors: ['rate<10%'], latency: ['p(95)<4s'] }
load:
  rate: 60
  requests:
    - { method: GET, path: '/orders?limit=10', weight: 6 }
    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' }, weight: 4 }
  attachments: { share: 0.2 }
  timeout: 4s
  baseline: ${baseline}
  cooldown: 2s
stopConditions: ['error_rate > 50% for 10s']
scenarios:
  - scenario: pod-kill
    name: kill-one
    params: { count: 1 }
    timeout: 1m
`,
  );
  return { lab, results, drill, env: { DRILL_LAB_DIR: lab } };
}

type Mark = { name: string; ms: number; at: string };
type ClassRow = {
  dataClass: string;
  targetSeconds: number;
  measuredSeconds: number | null;
  lost: number | null;
  unknown: number | null;
  acknowledged?: number;
  survived?: number;
  met: boolean | null;
  method: string | null;
};
const markOf = (rec: { marks: Mark[] }, name: string) => rec.marks.find((m) => m.name === name)!;

/** One upload per replica and then some, so the first uploads of the drill do not wait for the storage SDK to load. */
async function warmUploads(serviceUrl: string): Promise<void> {
  for (let k = 0; k < 9; k++) {
    const r = await fetch(`${serviceUrl}/orders/warm-${k}-${Date.now()}/attachment`, { method: 'PUT', body: 'warm' });
    await r.arrayBuffer();
  }
}

/** What the lab's Azurite holds, read here without the harness's read-back: stored files by name, shipped lines by token. */
async function readAzurite(labDir: string, fileNames: string[]) {
  const blob = (await labBlobEnv(labDir))!;
  const svc = blobServiceFromEnv(blob.env);
  const files = new Map<string, string>();
  const fc = svc.getContainerClient(LAB_FILES_CONTAINER);
  for (const name of fileNames) {
    const got = await fc
      .getBlockBlobClient(name)
      .downloadToBuffer()
      .catch((e: { statusCode?: number }) => {
        if (e.statusCode === 404) return null;
        throw e;
      });
    if (got) files.set(name, createHash('sha256').update(got).digest('hex'));
  }
  const lines = new Map<string, string>();
  for await (const b of svc.getContainerClient(LAB_LOGS_CONTAINER).listBlobsFlat()) {
    const text = (await svc.getContainerClient(LAB_LOGS_CONTAINER).getBlockBlobClient(b.name).downloadToBuffer()).toString('utf8');
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      const l = JSON.parse(raw) as { token: string | null; replica: string };
      if (l.token) lines.set(l.token, l.replica);
    }
  }
  return { files, lines };
}

describe('drill run measures file storage and logs beside the database', { timeout: 300_000 }, () => {
  test('a pod kill loses no file and no log line; every count matches the ledgers and Azurite', async (t) => {
    // A 20 s interval: lines written in the last 20 s of the run are still waiting when the drill reads the class
    // back, so 0 lost needs the pass the drill asks the shipper for.
    const w = workspace('all-kept', '4s', LONG_SHIP_MS);
    const info = await labUp({ dir: w.lab, replicas: 3, logShipIntervalMs: LONG_SHIP_MS });
    labsUp.push(w.lab);
    await warmUploads(info.serviceUrl);
    const junit = join(w.results, 'junit.xml');
    const r = await drillCli(['run', w.drill, '--results', w.results, '--junit', junit], w.env).done;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const [runDir] = runFolders(w.results);
    const rec = JSON.parse(readFileSync(join(runDir!, 'run.json'), 'utf8'));
    const classes: ClassRow[] = rec.objectives.rpoClasses;
    assert.deepEqual(
      classes.map((c) => c.dataClass),
      ['database', 'file-storage', 'logs'],
    );
    const by = Object.fromEntries(classes.map((c) => [c.dataClass, c])) as Record<string, ClassRow>;
    assert.deepEqual(
      classes.map((c) => [c.dataClass, c.targetSeconds, c.met]),
      [
        ['database', 900, true],
        ['file-storage', 3600, true],
        ['logs', 86_400, true],
      ],
    );

    const files = parseFilesTsv(readFileSync(join(runDir!, 'files.tsv'), 'utf8'));
    const logs = parseLogsTsv(readFileSync(join(runDir!, 'logs.tsv'), 'utf8'));
    const okFiles = files.filter((f) => f.outcome === 'ok');
    const okLogs = logs.filter((l) => l.outcome === 'ok');
    assert.ok(okFiles.length > 40, `${okFiles.length} files acknowledged`);
    const az = await readAzurite(
      w.lab,
      okFiles.map((f) => f.name),
    );
    // Files: every acknowledged upload stored with the bytes the load sent.
    const storedSame = okFiles.filter((f) => az.files.get(f.name) === f.sha256).length;
    assert.equal(storedSame, okFiles.length, 'every acknowledged file is in Azurite with its sha256');
    assert.deepEqual(
      [by['file-storage']!.acknowledged, by['file-storage']!.survived, by['file-storage']!.lost, by['file-storage']!.measuredSeconds],
      [okFiles.length, storedSame, 0, 0],
    );
    // Logs: every acknowledged request's line shipped, counted against logs.tsv.
    const shippedLines = okLogs.filter((l) => az.lines.has(l.token)).length;
    assert.equal(shippedLines, okLogs.length, 'every acknowledged line is in a shipped segment');
    assert.deepEqual(
      [by.logs!.acknowledged, by.logs!.survived, by.logs!.lost, by.logs!.measuredSeconds],
      [okLogs.length, shippedLines, 0, 0],
    );
    // logs.tsv's replica: the one that wrote the line, as the shipped line itself says.
    const wrongReplica = okLogs.filter((l) => l.replica === '' || az.lines.get(l.token) !== l.replica);
    assert.deepEqual(wrongReplica.slice(0, 3), [], `${wrongReplica.length} lines with a replica other than their shipped line's`);
    assert.ok(new Set(okLogs.map((l) => l.replica)).size >= 3, 'answers came from at least three replicas (one killed and replaced)');
    t.diagnostic(
      `files ${by['file-storage']!.survived}/${okFiles.length} acknowledged read back; log lines ${by.logs!.survived}/${okLogs.length}; ${by.logs!.method}`,
    );
    // The database class beside them, from the write ledger.
    assert.equal(by.database!.lost, 0);

    const journal = readEvents(runDir!);
    const read = journal.find((e) => e.type === 'rpo.classes') as { classes: { dataClass: string; lost: number }[] } | undefined;
    assert.deepEqual(
      read?.classes.map((c) => [c.dataClass, c.lost]),
      [
        ['file-storage', 0],
        ['logs', 0],
      ],
    );
    assert.match(by.logs!.method!, /asking the log shipper for a pass \(the log shipper shipped every pending line in \d+ ms\)/);

    // Every rendering shows the three classes.
    const summary = r.stdout + r.stderr;
    assert.match(summary, /RPO\s+0 s measured vs 15 min target/);
    assert.match(summary, new RegExp(`RPO files\\s+0 s measured vs 1 h target\\s+✓ met\\s+\\(0 of ${formatCount(okFiles.length)} lost`));
    assert.match(summary, new RegExp(`RPO logs\\s+0 s measured vs 24 h target\\s+✓ met\\s+\\(0 of ${formatCount(okLogs.length)} lost`));
    const xml = readFileSync(junit, 'utf8');
    for (const name of ['RPO', 'RPO file-storage', 'RPO logs']) assert.match(xml, new RegExp(`<testcase [^>]*name="${name}"[^>]*/>`));
    const rep = await drillCli(['report', rec.id, '--results', w.results], w.env).done;
    assert.equal(rep.code, 0, rep.stderr);
    const md = readFileSync(join(runDir!, 'report.md'), 'utf8');
    assert.match(md, /\| RPO file-storage \| 1 h \| 0 s \| met \|/);
    assert.match(md, /\| RPO logs \| 24 h \| 0 s \| met \|/);
    const html = readFileSync(join(runDir!, 'report.html'), 'utf8');
    assert.ok(html.includes('<td>RPO logs</td>') && html.includes('<td>RPO file-storage</td>'), 'HTML rows for both classes');

    // lab status: the shipper running, caught up.
    const s = await labStatus({ dir: w.lab });
    assert.equal(s.logShipping?.state, 'running');
    assert.ok(s.logShipping?.pid, 'shipper PID');
    assert.equal(s.logShipping?.intervalSeconds, 20);
    assert.deepEqual(
      s.problems.filter((p) => p.part === 'log-shipper'),
      [],
    );
    const cli = await drillCli(['lab', 'status'], { DRILL_LAB_DIR: w.lab }).done;
    assert.match(
      cli.stdout,
      /log shipper {2}running \(pid \d+\), last pass [\d.]+s ago, last shipped [\d.]+s ago, lag [\d.]+s \(interval 20s\), \d+ bytes pending/,
    );
  });

  test('a log shipper stopped before the fault: the lines acknowledged after are lost, the RPO from the last one shipped', async (t) => {
    const w = workspace('shipper-stopped', '12s', SHIP_MS);
    const info = await labUp({ dir: w.lab, replicas: 3, logShipIntervalMs: SHIP_MS });
    labsUp.push(w.lab);
    await warmUploads(info.serviceUrl);
    const run = drillCli(['run', w.drill, '--results', w.results, '--json'], w.env);
    let stoppedPid: number | null = null;
    try {
      // Well inside the 12 s baseline: a few passes shipped before, the fault still 7 s or more away.
      await waitFor('the baseline to start', () => run.output().includes('baseline:'), 90_000);
      await sleep(5000);
      const pid = (await readDaemonState(labPaths(w.lab).daemonState))?.logShipper?.pid;
      assert.ok(pid && (await isProcessUnder(pid, w.lab)), 'the log shipper runs');
      process.kill(pid, 'SIGSTOP');
      stoppedPid = pid;
      const stoppedAt = new Date().toISOString();
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const [runDir] = runFolders(w.results);
      const rec = JSON.parse(readFileSync(join(runDir!, 'run.json'), 'utf8'));
      const fault = markOf(rec, 'fault-injected');
      // The stop on the run's own clock.
      const stopMs = fault.ms + (Date.parse(stoppedAt) - Date.parse(fault.at));
      assert.ok(stopMs < fault.ms - 2000, `stopped ${((fault.ms - stopMs) / 1000).toFixed(1)} s before the fault`);

      const logs = parseLogsTsv(readFileSync(join(runDir!, 'logs.tsv'), 'utf8'));
      const okLogs = logs.filter((l) => l.outcome === 'ok');
      // Read before the shipper is continued: what the log store held when the drill measured it.
      const az = await readAzurite(w.lab, []);
      const lost = okLogs.filter((l) => !az.lines.has(l.token));
      const logsClass = (rec.objectives.rpoClasses as ClassRow[]).find((c) => c.dataClass === 'logs')!;
      assert.deepEqual([logsClass.acknowledged, logsClass.lost], [okLogs.length, lost.length]);
      assert.ok(lost.length > 100, `${lost.length} lines lost`);
      // Every line acknowledged after the stop (and its pass) is lost; the ones shipped were written before it.
      const ackedAfter = okLogs.filter((l) => l.ackMs! > stopMs + 500);
      assert.deepEqual(ackedAfter.filter((l) => az.lines.has(l.token)).slice(0, 3), [], 'no line acknowledged after the stop was shipped');
      // RPO by the ledger's rule, worked out here: from the newest line acknowledged before the first lost one, to
      // the fault or the last lost line's ack, whichever is later (lines were lost after the fault too).
      const byAck = [...okLogs].sort((a, b) => a.ackMs! - b.ackMs! || a.seq - b.seq);
      const firstLost = byAck.findIndex((l) => !az.lines.has(l.token));
      assert.ok(firstLost > 0, 'lines were shipped before the stop');
      const anchor = byAck[firstLost - 1]!.ackMs!;
      const lastLostAck = Math.max(...lost.map((l: LogLedgerEntry) => l.ackMs!));
      const expected = Math.max(1, Math.max(fault.ms, lastLostAck) - anchor) / 1000;
      // logs.tsv holds ack times to the microsecond, run.json's mark to the millisecond.
      assert.ok(Math.abs(logsClass.measuredSeconds! - expected) < 0.002, `logs RPO ${logsClass.measuredSeconds} s, by hand ${expected} s`);
      // Within the measured resolution: the newest line kept was acknowledged at most one interval (plus up to 3 s for
      // a pass on a loaded machine: uploads to Azurite) before the stop, and not after it.
      assert.ok(
        anchor <= stopMs + 500 && anchor >= stopMs - SHIP_MS - 3000,
        `newest kept line acknowledged ${((stopMs - anchor) / 1000).toFixed(2)} s before the stop (interval ${SHIP_MS / 1000} s)`,
      );
      assert.equal(logsClass.met, true, 'well inside 24 h');
      t.diagnostic(
        `stopped ${((fault.ms - stopMs) / 1000).toFixed(2)} s before the fault; ${lost.length} of ${okLogs.length} acknowledged lines lost; newest kept line acked ${((stopMs - anchor) / 1000).toFixed(2)} s before the stop; logs RPO ${logsClass.measuredSeconds} s (fault − anchor ${((fault.ms - anchor) / 1000).toFixed(2)} s, last lost ack ${((lastLostAck - fault.ms) / 1000).toFixed(2)} s after the fault)`,
      );
      assert.match(logsClass.method!, /still unshipped: the log shipper \(pid \d+\) did not ship them within \d+ ms/);
      // Files and database were untouched by the shipper's stop.
      const filesClass = (rec.objectives.rpoClasses as ClassRow[]).find((c) => c.dataClass === 'file-storage')!;
      assert.equal(filesClass.lost, 0);

      const s = await labStatus({ dir: w.lab });
      assert.equal(s.logShipping?.state, 'stopped');
      const cli = await drillCli(['lab', 'status'], { DRILL_LAB_DIR: w.lab }).done;
      assert.equal(cli.code, 1, cli.stdout);
      assert.match(cli.stdout, new RegExp(`log shipper {2}stopped \\(pid ${pid}\\)`));
      assert.match(cli.stdout, new RegExp(`problem: log-shipper: the log shipper \\(pid ${pid}\\) is stopped \\(SIGSTOP\\)`));
      assert.ok(
        s.problems.some((p) => p.part === 'log-shipper' && p.detail.includes(`pid ${pid}) is stopped`)),
        JSON.stringify(s.problems),
      );
      // Only late, not gone: continued, the shipper ships every one of them.
      process.kill(pid, 'SIGCONT');
      stoppedPid = null;
      const caughtUp = await shipPendingNow(w.lab, { timeoutMs: 20_000 });
      assert.equal(caughtUp.shipped, true, caughtUp.detail);
      const later = await readAzurite(w.lab, []);
      assert.deepEqual(
        lost.filter((l) => !later.lines.has(l.token)).slice(0, 3),
        [],
        'every lost line is shipped once the shipper runs again',
      );
    } finally {
      if (stoppedPid !== null) process.kill(stoppedPid, 'SIGCONT');
      if (run.child.exitCode === null) run.child.kill('SIGINT');
      await run.done;
    }
  });
});
