import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outcome } from '../../lib/measure/request-log.ts';
import { buildRunRecord } from '../../lib/record/run-record.ts';
import { renderProgress, renderSummary, visibleWidth, WIDTH } from '../../lib/record/summary.ts';
import { sampleLog, sampleMark, sampleRunInput } from '../support/record-sample.ts';

function assertFits(text: string) {
  for (const line of text.split('\n')) assert.ok(visibleWidth(line) <= WIDTH, `${visibleWidth(line)} columns: ${line}`);
}

test('a passed run: the verdict first, then RTO measured vs target, SLO table, budget and files', () => {
  const r = buildRunRecord(sampleRunInput());
  const text = renderSummary(r, { color: false, dir: 'results/runs/x' });
  const lines = text.split('\n');
  assert.match(lines[0]!, /^PASSED \(exit 0\) {2}checkout-quarterly \/ pod-kill/);
  assert.match(text, /RTO {11}2 s measured vs 1 h target {2}✓ met/);
  assert.match(text, /RPO {11}– scenario writes no data; RPO not measured/);
  assert.match(text, /Verification {2}1 of 1 probes passed {2}✓ met/);
  assert.match(text, /Error budget {2}2 s downtime = 0\.076% of the 43\.8 min monthly budget/);
  assert.match(text, /availability rate>=99\.9% +100% ✓ +0\.99% ✗ +100% ✓/);
  assert.match(text, /8,000 scheduled, 7,600 ok, 400 errors, 0 dropped/);
  assert.match(text, /1 interval, 2 s down \(SLO window 10 s, resolution 5 ms\)/);
  assert.match(text, /SEV2 {2}Availability SLO missed during the fault/);
  assert.match(text, /results\/runs\/x\/run\.json/);
  assert.ok(!text.includes('\x1b'), 'no escape codes without color');
  assertFits(text);
});

test('a failed run: FAILED with exit 1, why, and the SEV1 findings', () => {
  const input = sampleRunInput();
  input.marks = input.marks.filter((m) => m.name !== 'recovered' && m.name !== 'verified');
  input.load = {
    log: sampleLog(200, 40_000, (t) => (t >= 10_000 ? { outcome: Outcome.refused, latencyMs: 1 } : { outcome: Outcome.ok, latencyMs: 20 })),
    startMs: 0,
    endMs: 40_000,
  };
  const text = renderSummary(buildRunRecord(input), { color: false });
  assert.match(text.split('\n')[0]!, /^FAILED \(exit 1\)/);
  assert.match(text, /^ {2}RTO missed$/m);
  assert.match(text, /RTO {11}not recovered vs 1 h target {2}✗ missed {2}\(not recovered within the scenario timeout of/);
  assert.doesNotMatch(text, /\d\n +(s|ms|min|h)\b/, 'a number is never wrapped away from its unit');
  assert.match(text, /SEV1 {2}RTO missed: not recovered \(target 1 h\)/);
  assert.match(text, /results\/runs\/20261001T090000Z-pod-kill-a1b2c3\/run\.json/);
  assertFits(text);
});

test('an aborted run says why it stopped and that nothing was measured', () => {
  const input = sampleRunInput();
  input.marks = [sampleMark('load-started', 0), sampleMark('load-stopped', 10_000)];
  input.abort = { kind: 'steady-state', message: 'steady state not met: SLO availability rate>=99.9% (measured 0.41)' };
  input.verification = [];
  const text = renderSummary(buildRunRecord(input), { color: false });
  assert.match(text.split('\n')[0]!, /^ABORTED \(exit 3\)/);
  assert.match(text, /steady state not met: SLO availability/);
  assert.match(text, /RTO {11}– not measured: the run stopped \(aborted\)/);
  assert.equal(text.split('steady state not met').length - 1, 1, 'the stop reason is printed once');
  assertFits(text);
});

test('a harness error before any load: ERROR with exit 70, and nothing claimed about SLOs', () => {
  const input = sampleRunInput();
  input.marks = [];
  input.load = null;
  input.actions = [];
  input.verification = [];
  input.harnessError = { message: 'lab did not start: port 18080 in use' };
  const text = renderSummary(buildRunRecord(input), { color: false });
  assert.match(text.split('\n')[0]!, /^ERROR \(exit 70\)/);
  assert.match(text, /harness error: lab did not start: port 18080 in use/);
  assert.match(text, /SLOs {10}– not judged: no load ran/);
  assert.match(text, /0 scheduled, 0 ok, 0 errors, 0 dropped; availability n\/a, p95 n\/a/);
  assertFits(text);
});

test('long names and details wrap within 100 columns; color adds escapes but no width', () => {
  const input = sampleRunInput();
  input.drill = { ...input.drill, name: 'a-very-long-drill-name-that-someone-thought-was-descriptive-enough-for-the-quarterly-record' };
  input.entry = { ...input.entry, name: 'postgres-failover-with-walsender-stall-and-synchronous-commit-off' };
  input.verification = [
    { name: 'ledger', ok: false, detail: 'x'.repeat(30) + ' ' + 'missing rows '.repeat(20) + 'y'.repeat(140), at: input.endedAt },
  ];
  const r = buildRunRecord(input);
  const plain = renderSummary(r, { color: false });
  assertFits(plain);
  const colored = renderSummary(r, { color: true });
  assert.ok(colored.includes('\x1b[31m'), 'missed objectives in red');
  assertFits(colored);
});

test('the live progress line: phase, elapsed, rate, p95 and errors in one line', () => {
  const line = renderProgress({ phase: 'observe', reqPerSec: 199.6, p95Ms: 12.34, errors: 1234, elapsedMs: 83_400 });
  assert.equal(line, '  [observe]      01:23     200 req/s  p95  12.3 ms  errors 1,234');
  assert.ok(!line.includes('\n'));
  assert.match(renderProgress({ phase: 'baseline', reqPerSec: 0, p95Ms: null, errors: 0, elapsedMs: 0 }), /00:00 .* p95 +n\/a/);
  assert.ok(visibleWidth(renderProgress({ phase: 'x'.repeat(200), reqPerSec: 1, p95Ms: 1, errors: 1, elapsedMs: 1 })) <= WIDTH);
});

test('the files line names writes.tsv when a write ledger measured the RPO, and never cuts the path to copy', () => {
  const input = sampleRunInput();
  input.rpo = {
    measuredSeconds: 0.98,
    lostWrites: 24,
    unknownWrites: 11,
    method: 'write ledger read back',
    ledger: {
      total: 400,
      acknowledged: 380,
      survived: 356,
      lost: 24,
      unknownPresent: 3,
      unknownAbsent: 11,
      failedPresent: 0,
      failedAbsent: 6,
      unexpected: 0,
      faultMs: 12_000,
      lostWindow: null,
      lostSample: [],
    },
  };
  const dir = `/var/lib/ci/workspace/a-rather-deep/checkout/results/runs/20261202T101216Z-fail-over-primary-eccfee`;
  const text = renderSummary(buildRunRecord(input), { color: false, dir });
  assert.ok(text.includes(`${dir}/run.json,`), text);
  assert.match(text, /with events\.jsonl, metrics\.jsonl, requests\.tsv and writes\.tsv/);
  assert.match(text, /RPO {11}0\.98 s measured vs 15 min target {2}✓ met {2}\(24 lost, 11 unknown writes\)/);
  const plain = renderSummary(buildRunRecord(sampleRunInput()), { color: false, dir: 'results/runs/x' });
  assert.match(plain, /with events\.jsonl, metrics\.jsonl and requests\.tsv$/);
  input.rpo = { ...input.rpo, lostWrites: 0, unknownWrites: 1 };
  assert.match(renderSummary(buildRunRecord(input), { color: false }), /\(0 lost, 1 unknown write\)/);
});

test('a skipped read-back: the record keeps it under verification.skipped, its reason stands for the RPO, and the summary names it', () => {
  const reason = 'the target names no database to read the write ledger back from; RPO not measured';
  const r = buildRunRecord({ ...sampleRunInput(), skippedChecks: [{ name: 'acknowledged writes survived the kill', reason }] });
  assert.deepEqual(r.objectives.verification.skipped, [{ name: 'acknowledged writes survived the kill', reason }]);
  assert.equal(r.objectives.verification.met, true, 'a skipped probe neither passes nor fails the verification');
  assert.equal(r.objectives.rpo.measuredSeconds, null);
  assert.equal(r.objectives.rpo.reason, reason);
  const text = renderSummary(r, { color: false });
  assert.match(text, /RPO {11}– the target names no database to read the write ledger back from; RPO not measured/);
  assert.match(text, /Verification {2}1 of 1 probes passed {2}✓ met {2}\(acknowledged writes survived the kill: skipped\)/);
  assertFits(text);
});
