import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { labDown } from '../../lib/lab/index.ts';
import { blobServiceFromEnv, startAzurite, type AzuriteHandle } from '../../lib/adapters/blob/index.ts';
import { parseQuarter, previousQuarter, quarterOfInstant } from '../../lib/record/quarterly/quarter.ts';
import { checkChain } from '../../lib/record/quarterly/integrity.ts';
import type { QuarterlyRecord } from '../../lib/record/quarterly/types.ts';
import { drillCli, runFolders, REPO } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

/**
 * `drill record`, `drill verify` and `drill report` through the CLI, over real runs of the lab drill
 * (drills/lab.yaml, run once here on its own lab), from a results folder and from Blob (Azurite).
 */

const ws = {
  lab: scratchDir('lab-record'),
  results: scratchDir('results-record'),
  drills: scratchDir('drills-record'),
  scratch: scratchDir('record-scratch'),
  azurite: scratchDir('azurite-record'),
};
let azurite: AzuriteHandle | null = null;
let quarter = '';
let runDirs: string[] = [];

after(async () => {
  await azurite?.stop();
  await labDown({ dir: ws.lab }).catch(() => undefined);
  for (const d of Object.values(ws)) rmSync(d, { recursive: true, force: true });
});

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const readRecord = (dir: string) => JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as QuarterlyRecord;

before(
  async () => {
    // The two pod-kill entries of the lab drill (its database failover entry is tested in db-failover.test.ts).
    const r = await drillCli(
      ['run', 'drills/lab.yaml', '--scenario', 'kill-one-replica', '--scenario', 'kill-half-oldest-first', '--results', ws.results],
      { DRILL_LAB_DIR: ws.lab },
    ).done;
    // A loaded machine can miss the steady state (exit 3): still a real run, with a record to count.
    assert.ok([0, 1, 3].includes(r.code ?? -1), `drill run exit ${r.code}: ${r.stderr.slice(-2000)}`);
    runDirs = runFolders(ws.results);
    assert.equal(runDirs.length, 2, 'two run folders from drills/lab.yaml');
    const first = JSON.parse(readFileSync(join(runDirs[0]!, 'run.json'), 'utf8'));
    quarter = quarterOfInstant(first.startedAt)!.id;
    // The policy: the lab drill as a quarterly drill, and a monthly restore test that has never run.
    writeFileSync(
      join(ws.drills, 'lab-quarterly.yaml'),
      readFileSync(join(REPO, 'drills/lab.yaml'), 'utf8')
        .replace(/(\n {2}#[^\n]*)*\n {2}- scenario: db-failover\n( {4}[^\n]*\n?)*/g, '\n')
        .replace(/^kind: adhoc$/m, 'kind: quarterly')
        .replace(/^owner: .*$/m, 'owner: platform-sre\nparticipants: [alice, bob]\napprover: carol'),
    );
    writeFileSync(
      join(ws.drills, 'monthly-restore.yaml'),
      'name: monthly-restore\nkind: monthly\nowner: dba-team\nscenarios:\n  - scenario: blob-restore\n    name: restore-orders\n',
    );
  },
  { timeout: 400_000 },
);

test('a record built from real runs of the lab drill: counts, RTO with method, coverage, trend, digests, Markdown and HTML', {
  timeout: 300_000,
}, async () => {
  const prev = previousQuarter(parseQuarter(quarter)!).id;
  const p = await drillCli(['record', '--quarter', prev, '--results', ws.results, '--drills', ws.drills]).done;
  // The previous quarter has no run at all: every entry of the policy is a gap there, so `drill record` exits 1.
  const prevRec = readRecord(join(ws.results, 'records', prev));
  assert.equal(prevRec.summary.runs, 0);
  assert.ok(prevRec.coverage.gaps > 0, JSON.stringify(prevRec.coverage.items));
  assert.equal(p.code, 1, p.stdout + p.stderr);
  const r = await drillCli(['record', '--quarter', quarter, '--results', ws.results, '--drills', ws.drills]).done;
  const dir = join(ws.results, 'records', quarter);
  for (const f of ['record.json', 'record.md', 'record.html']) assert.ok(existsSync(join(dir, f)), f);
  const rec = readRecord(dir);

  assert.equal(rec.summary.runs, 2);
  assert.deepEqual(rec.runs.map((x) => x.id).sort(), runDirs.map((d) => basename(d)).sort());
  assert.equal(rec.scenarios.length, 2);
  for (const run of rec.runs) {
    const raw = JSON.parse(readFileSync(join(ws.results, 'runs', run.id, 'run.json'), 'utf8'));
    assert.equal(run.status, raw.status);
    assert.equal(run.rto.measuredSeconds, raw.objectives.rto.measuredSeconds);
    assert.equal(run.rto.targetSeconds, 3600);
    assert.equal(run.digest, sha(join(ws.results, 'runs', run.id, 'run.json')));
    assert.ok(run.series.points.length >= 10, `${run.id}: ${run.series.points.length} chart points from metrics.jsonl`);
    const perSecond = readFileSync(join(ws.results, 'runs', run.id, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { scheduled: number });
    assert.equal(
      run.series.points.reduce((s, x) => s + x.scheduled, 0),
      perSecond.reduce((s, x) => s + x.scheduled, 0),
      'every second of metrics.jsonl is charted',
    );
    if (raw.status !== 'aborted') {
      assert.ok(
        run.marks.some((m) => m.name === 'fault-injected') && run.marks.some((m) => m.name === 'recovered'),
        'marks for the charts',
      );
      assert.ok(run.rto.method && run.rto.resolutionMs !== null && run.rto.windowSeconds === 10, 'RTO method, resolution and window');
    }
  }
  assert.equal(rec.summary.byStatus.passed + rec.summary.byStatus.failed + rec.summary.byStatus.aborted + rec.summary.byStatus.error, 2);
  assert.deepEqual(rec.people.participants, ['alice', 'bob']);
  assert.equal(rec.people.approver, 'carol');
  assert.equal(rec.signOff.signedBy, null, 'left blank for a person to sign');

  // Coverage: the two lab scenarios run here ran this quarter; the monthly restore test never ran.
  const q = parseQuarter(quarter)!;
  const lab = rec.coverage.items.filter((i) => i.drill === 'lab-pod-kill');
  // A run aborted before injection (a starved machine misses the steady state) does not cover its entry yet.
  const judged = (scenario: string) => rec.runs.some((x) => x.scenario === scenario && (x.status === 'passed' || x.status === 'failed'));
  // restore-after-drop, the lab drill's third entry, was not run here: due.
  assert.deepEqual(lab.map((i) => [i.scenario, i.status]).sort(), [
    ...['kill-half-oldest-first', 'kill-one-replica'].map((s) => [s, judged(s) ? 'ran' : 'due']),
    ['restore-after-drop', 'due'],
  ]);
  const month = rec.runs[0]!.startedAt.slice(0, 7);
  const restore = rec.coverage.items.filter((i) => i.drill === 'monthly-restore');
  assert.deepEqual(
    restore.map((i) => i.period),
    q.months,
  );
  for (const i of restore) assert.equal(i.status, i.period < month ? 'missing' : 'due', i.period);
  const gaps = q.months.filter((m) => m < month).length;
  assert.equal(rec.coverage.gaps, gaps);
  assert.equal(rec.findings.filter((f) => f.source === 'coverage').length, gaps);
  const anyFailed = rec.runs.some((x) => x.status === 'failed');
  assert.equal(r.code, gaps > 0 || anyFailed ? 1 : 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`drill record ${quarter}: 2 runs of 2 scenarios`));

  assert.equal(rec.trend.available, true, rec.trend.reason);
  assert.equal(rec.trend.previousQuarter, prev);
  assert.equal(
    rec.integrity.genesis,
    readRecord(join(ws.results, 'records', prev)).integrity.head,
    'the chain continues from the previous quarter',
  );
  assert.deepEqual(checkChain(rec.integrity, new Map(rec.runs.map((x) => [x.id, x.digest]))), []);

  const md = readFileSync(join(dir, 'record.md'), 'utf8');
  assert.match(md, /^# Drill record \d{4}-Q\d/);
  for (const h of [
    '## Summary',
    '## Participants and sign-off',
    '## Coverage against the policy',
    '## Scenarios: RTO and RPO',
    '## SLOs per phase',
    '## Findings',
    '## Remediation actions',
    '## Integrity',
  ])
    assert.ok(md.includes(h), h);
  assert.match(md, /\| Signed off by \| _{8,} \|/);
  for (const run of rec.runs) assert.ok(md.includes(run.id));

  const html = readFileSync(join(dir, 'record.html'), 'utf8');
  for (const run of rec.runs) {
    assert.ok(html.includes(`<svg class="chart latency" data-run="${run.id}"`), `latency chart of ${run.id}`);
    assert.ok(html.includes(`<svg class="chart errors" data-run="${run.id}"`), `error chart of ${run.id}`);
    assert.ok(html.includes(`<svg class="chart objectives" data-run="${run.id}"`), `RTO/RPO bars of ${run.id}`);
  }
  assert.doesNotMatch(html, /<script|<link|src="http|href="http|url\(http/i, 'self-contained: no script, no external asset');
});

test('drill verify: the record matches its run records; one changed byte in a run record fails it, naming the file', {
  timeout: 300_000,
}, async () => {
  const dir = join(ws.results, 'records', quarter);
  const ok = await drillCli(['verify', dir]).done;
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /2 run records match their sha256 digests; chain head [0-9a-f]{64} holds/);

  const file = join(runDirs[1]!, 'run.json');
  const original = readFileSync(file);
  const changed = Buffer.from(original);
  const at = changed.indexOf('"scheduled": ') + '"scheduled": '.length;
  changed[at] = changed[at] === 0x39 ? 0x38 : changed[at]! + 1; // one digit, one byte
  writeFileSync(file, changed);
  try {
    const bad = await drillCli(['verify', dir]).done;
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(
      bad.stdout,
      new RegExp(
        `FAIL ${join(ws.results, 'runs', basename(runDirs[1]!), 'run.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: digest mismatch`,
      ),
    );
    assert.match(bad.stdout, /1 problem in 2 run records/);
  } finally {
    writeFileSync(file, original);
  }
  // A damaged record.json is reported as such, not as a harness crash.
  const copy = join(ws.scratch, 'damaged');
  cpSync(dir, copy, { recursive: true });
  writeFileSync(join(copy, 'record.json'), readFileSync(join(dir, 'record.json'), 'utf8').slice(0, 500));
  const dam = await drillCli(['verify', copy]).done;
  assert.equal(dam.code, 1, dam.stderr);
  assert.match(dam.stderr, /record\.json is not valid JSON/);
});

test('bad input: a truncated and a foreign run.json and a stray file are excluded by name with the reason; the other runs are counted', {
  timeout: 300_000,
}, async () => {
  const results = join(ws.scratch, 'bad-results');
  mkdirSync(join(results, 'runs'), { recursive: true });
  for (const d of runDirs) cpSync(d, join(results, 'runs', basename(d)), { recursive: true });
  const stamp = basename(runDirs[0]!).slice(0, 16);
  const truncated = join(results, 'runs', `${stamp}-cut-aaaaaa`);
  const foreign = join(results, 'runs', `${stamp}-foreign-bbbbbb`);
  mkdirSync(truncated);
  mkdirSync(foreign);
  writeFileSync(join(truncated, 'run.json'), readFileSync(join(runDirs[0]!, 'run.json'), 'utf8').slice(0, 700));
  writeFileSync(join(foreign, 'run.json'), readFileSync(join(REPO, 'package.json')));
  writeFileSync(join(results, 'runs', 'notes.json'), '{"note": "not a run"}');

  const r = await drillCli(['record', '--quarter', quarter, '--results', results, '--drills', join(ws.scratch, 'no-drills')]).done;
  assert.match(
    r.stderr,
    new RegExp(`excluded ${truncated.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/run\\.json: not valid JSON, the file looks truncated`),
  );
  assert.match(
    r.stderr,
    /foreign-bbbbbb\/run\.json: not a drill run record: no schemaVersion or id \(keys: name, version, description, type\)/,
  );
  assert.match(r.stderr, /notes\.json: not a run folder/);
  assert.match(r.stderr, /3 files excluded \(listed in the record\); the other 2 runs are counted/);
  const rec = readRecord(join(results, 'records', quarter));
  assert.equal(r.code, rec.summary.byStatus.failed > 0 ? 1 : 0, 'bad files are reported, not a reason to refuse the record');
  assert.equal(rec.summary.runs, 2);
  assert.equal(rec.summary.excluded, 3);
  assert.deepEqual(
    rec.excluded.map((e) => basename(e.file === join(results, 'runs', 'notes.json') ? e.file : e.file.replace(/\/run\.json$/, ''))).sort(),
    [`${stamp}-cut-aaaaaa`, `${stamp}-foreign-bbbbbb`, 'notes.json'].sort(),
  );
  assert.match(rec.coverage.reason ?? '', /no drills folder/);
  assert.match(
    readFileSync(join(results, 'records', quarter, 'record.html'), 'utf8'),
    /cut-aaaaaa\/run\.json<\/code><\/td><td>not valid JSON, the file looks truncated/,
  );

  const q5 = await drillCli(['record', '--quarter', '2026-Q5', '--results', results]).done;
  assert.equal(q5.code, 2);
  assert.match(q5.stderr, /--quarter "2026-Q5" is not a quarter: write YYYY-Qn with n from 1 to 4/);
  assert.ok(!existsSync(join(results, 'records', '2026-Q5')), 'nothing written');
  const none = await drillCli(['record', '--quarter', quarter, '--results', join(ws.scratch, 'nowhere')]).done;
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no run folders: .*nowhere\/runs does not exist/);
});

test('drill report RUN_ID renders one run as HTML and Markdown with its charts', { timeout: 300_000 }, async () => {
  const id = basename(runDirs[1]!);
  const r = await drillCli(['report', id, '--results', ws.results]).done;
  assert.equal(r.code, 0, r.stderr);
  const html = readFileSync(join(runDirs[1]!, 'report.html'), 'utf8');
  assert.ok(html.includes(`<svg class="chart latency" data-run="${id}"`));
  assert.ok(html.includes(`<svg class="chart objectives" data-run="${id}"`));
  assert.match(readFileSync(join(runDirs[1]!, 'report.md'), 'utf8'), /\| RTO \| 1 h \|/);
  const missing = await drillCli(['report', 'no-such-run', '--results', ws.results]).done;
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no run no-such-run in/);
});

test('from Blob (Azurite): runs uploaded by CI machines are read back, digests equal the local files; verify reads the container', {
  timeout: 300_000,
}, async () => {
  azurite = await startAzurite({ dir: ws.azurite });
  const env = { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };
  const container = blobServiceFromEnv(env).getContainerClient('drill-runs');
  await container.create();
  for (const d of runDirs) {
    for (const f of readdirSync(d).filter((x) => x !== 'requests.tsv' && !x.startsWith('report'))) {
      await container.getBlockBlobClient(`ci/${basename(d)}/${f}`).uploadData(readFileSync(join(d, f)));
    }
  }
  const stamp = basename(runDirs[0]!).slice(0, 16);
  await container.getBlockBlobClient(`ci/${stamp}-cut-cccccc/run.json`).uploadData(Buffer.from('{"schemaVersion": 1, "id": "x'));

  const out = join(ws.scratch, 'blob-records');
  const r = await drillCli(['record', '--quarter', quarter, '--from', 'blob://drill-runs/ci', '--out', out, '--drills', ws.drills], env)
    .done;
  const rec = readRecord(join(out, quarter));
  // The same runs and policy as the local record: the same exit code rule (1 for a failed run or a coverage gap).
  assert.equal(r.code, rec.coverage.gaps > 0 || rec.runs.some((x) => x.status === 'failed') ? 1 : 0, r.stdout + r.stderr);
  assert.deepEqual(rec.source, { kind: 'blob', url: 'blob://drill-runs/ci', endpoint: azurite.blobEndpoint });
  assert.equal(rec.summary.runs, 2);
  for (const run of rec.runs)
    assert.equal(run.digest, sha(join(ws.results, 'runs', run.id, 'run.json')), 'same bytes as the local run record');
  assert.deepEqual(
    rec.excluded.map((e) => e.file),
    [`blob://drill-runs/ci/${stamp}-cut-cccccc/run.json`],
  );
  assert.ok(
    rec.runs.every((x) => x.series.points.length > 0),
    'metrics.jsonl came along',
  );
  assert.ok(!readFileSync(join(out, quarter, 'record.json'), 'utf8').includes('AccountKey'), 'no secret in the record');

  const ok = await drillCli(['verify', join(out, quarter)], env).done;
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /runs read from blob:\/\/drill-runs\/ci/);
  const target = `ci/${basename(runDirs[0]!)}/run.json`;
  const body = readFileSync(join(runDirs[0]!, 'run.json'), 'utf8').replace('"schemaVersion": 1', '"schemaVersion":  1');
  await container.getBlockBlobClient(target).uploadData(Buffer.from(body));
  const bad = await drillCli(['verify', join(out, quarter)], env).done;
  assert.equal(bad.code, 1, bad.stdout);
  assert.match(bad.stdout, new RegExp(`FAIL blob://drill-runs/${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: digest mismatch`));
  const noCreds = await drillCli(['record', '--quarter', quarter, '--from', 'blob://drill-runs/ci', '--out', out], {
    AZURE_STORAGE_CONNECTION_STRING: '',
  }).done;
  assert.equal(noCreds.code, 2, noCreds.stderr);
  const badUrl = await drillCli(['record', '--quarter', quarter, '--from', 'https://example/x', '--out', out]).done;
  assert.equal(badUrl.code, 2);
  assert.match(badUrl.stderr, /is not a Blob location/);
});

test('drill verify without a record folder checks every record under <results>/records: the committed example holds', {
  timeout: 120_000,
}, async () => {
  const r = await drillCli(['verify', '--results', 'results/examples']).done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /drill verify 2026-Q4: 4 run records match their sha256 digests; chain head [0-9a-f]{64} holds \(runs read from results\/examples\/runs\)/,
  );
  const none = await drillCli(['verify', '--results', ws.scratch]).done;
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no quarterly records in .*records/);
});
