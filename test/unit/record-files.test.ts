import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequestLog, Outcome, type SecondStats } from '../../lib/measure/request-log.ts';
import { metricsLine, readJsonLines, readRequestsTsv, readRunFolder, writeRequestsTsv } from '../../lib/record/files.ts';
import { writeJsonAtomic } from '../../lib/util/atomic-file.ts';
import { buildRunRecord } from '../../lib/record/run-record.ts';
import { sampleRunInput } from '../support/record-sample.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'drill-record-'));
}

const SECOND: SecondStats = {
  t: 12,
  at: '2026-10-01T09:00:12.000Z',
  scheduled: 200,
  sent: 198,
  ok: 190,
  errors: { timeout: 1, refused: 5, http5xx: 2, http4xx: 0, other: 0 },
  dropped: 2,
  p50Ms: 20.1,
  p95Ms: 44.5,
  p99Ms: 81,
  maxMs: 2000,
  hdr: 'HISTFAAAACB4nJNpmSzMwMDAxQABzFCaEUzOmQKiAR7eAz0=',
};

test('writeJsonAtomic: the file holds the object, overwrites whole, and leaves no temporary file', (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'run.json');
  writeJsonAtomic(path, { a: 1, nested: { b: [1, 2] } });
  writeJsonAtomic(path, { a: 2 });
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { a: 2 });
  assert.deepEqual(readdirSync(dir), ['run.json']);
});

test('metricsLine: one JSON object per line', () => {
  const line = metricsLine(SECOND);
  assert.ok(line.endsWith('\n'));
  assert.equal(line.indexOf('\n'), line.length - 1);
  assert.deepEqual(JSON.parse(line), SECOND);
});

test('requests.tsv round-trips every column exactly, float32 latencies included', (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = createRequestLog(4);
  const outcomes = [
    Outcome.ok,
    Outcome.timeout,
    Outcome.refused,
    Outcome.http5xx,
    Outcome.http4xx,
    Outcome.other,
    Outcome.dropped,
    Outcome.pending,
  ];
  for (let i = 0; i < 1000; i++) {
    const j = log.push(i * 0.2 + 1e-7 * i, i % 3);
    log.outcome[j] = outcomes[i % outcomes.length]!;
    log.latencyMs[j] = Math.PI * i + 0.123456789;
  }
  const path = join(dir, 'requests.tsv');
  writeRequestsTsv(path, log);
  const back = readRequestsTsv(path);
  assert.equal(back.count, 1000);
  assert.deepEqual(back.scheduledMs, log.scheduledMs.subarray(0, 1000));
  assert.deepEqual(back.latencyMs, log.latencyMs.subarray(0, 1000));
  assert.deepEqual(back.outcome, log.outcome.subarray(0, 1000));
  assert.deepEqual(back.template, log.template.subarray(0, 1000));
  const lines = readFileSync(path, 'utf8').split('\n');
  assert.equal(lines[0], 'scheduledMs\tlatencyMs\toutcome\ttemplate');
  // Float64 schedule times print exactly, float32 latencies in their shortest exact form.
  assert.equal(lines[2], '0.20000010000000001\t3.2650495\ttimeout\t1');
});

test('readRequestsTsv refuses a file that is not one, naming the line', (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'requests.tsv');
  writeFileSync(path, 'time,latency\n1,2\n');
  assert.throws(() => readRequestsTsv(path), /not a requests\.tsv/);
  writeFileSync(path, 'scheduledMs\tlatencyMs\toutcome\ttemplate\n0\t1\tok\t0\n5\t1\tsmashed\t0\n');
  assert.throws(() => readRequestsTsv(path), /requests\.tsv:3: expected/);
});

test('JSON lines cut short by a crash: the last line is left out, a broken middle line is an error', (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'events.jsonl');
  writeFileSync(path, '{"type":"run.start"}\n{"type":"probe"}\n{"type":"act');
  assert.deepEqual(readJsonLines(path), [{ type: 'run.start' }, { type: 'probe' }]);
  writeFileSync(path, '{"type":"run.start"}\n{"type\n{"type":"probe"}\n');
  assert.throws(() => readJsonLines(path), /events\.jsonl:2/);
});

test('a run folder re-scores offline to the same record', (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const input = sampleRunInput();
  const record = buildRunRecord(input);
  writeJsonAtomic(join(dir, 'run.json'), record);
  writeRequestsTsv(join(dir, 'requests.tsv'), input.load!.log);
  appendFileSync(join(dir, 'metrics.jsonl'), metricsLine(SECOND) + metricsLine({ ...SECOND, t: 13 }));
  appendFileSync(join(dir, 'events.jsonl'), JSON.stringify({ type: 'run.start', id: record.id }) + '\n');

  const folder = readRunFolder(dir);
  assert.deepEqual(folder.record, record);
  assert.deepEqual(
    folder.metrics.map((m) => m.t),
    [12, 13],
  );
  assert.equal(folder.events[0]!.type, 'run.start');
  assert.ok(folder.requests);
  const again = buildRunRecord({ ...input, marks: folder.record!.marks, load: { ...input.load!, log: folder.requests } });
  assert.deepEqual(again, record);
});

test('a crashed run folder: no run.json and no requests.tsv yet, still readable', (t) => {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  appendFileSync(join(dir, 'events.jsonl'), '{"type":"run.start"}\n');
  const folder = readRunFolder(dir);
  assert.deepEqual([folder.record, folder.requests, folder.metrics], [null, null, []]);
  assert.equal(folder.events.length, 1);
  assert.throws(() => readRunFolder(join(dir, 'missing')), /no such run folder/);
});
