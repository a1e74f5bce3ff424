/**
 * The write ledger after a point-in-time restore: writes acknowledged before the restore point and missing are
 * lost (RPO), writes acknowledged after it (on the damaged database) and missing were discarded by the restore on
 * purpose, counted apart; the record carries the count and a finding names them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLedger, ledgerCounts, type LedgerEntry } from '../../lib/measure/ledger.ts';
import { judgeReadBack } from '../../lib/measure/ledger-readback.ts';
import { deriveFindings } from '../../lib/score/findings.ts';
import { rpoFromLedger, scoreRpo } from '../../lib/score/objectives.ts';

/** One write every 10 ms, acknowledged 2 ms after it was sent; `outcome` per index. */
function ledger(n: number, outcome: (i: number) => LedgerEntry['outcome'] = () => 'ok'): LedgerEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const o = outcome(i);
    return { seq: i, token: `t${i}`, sentMs: i * 10, ackMs: o === 'ok' ? i * 10 + 2 : null, outcome: o };
  });
}

// The destructive change ran at 500 ms; the restore point was read right before it.
const RESTORE_POINT_MS = 500;

test('after a restore to the point before the fault: writes acked later and missing are discarded, not lost; RPO 0', () => {
  const l = ledger(100);
  // Writes 0..49 (acked at 2..492 ms) were restored; 50..79 went to the damaged database and were thrown away;
  // 80..99 came after the restore and are there.
  const present = new Set(l.filter((e) => e.seq < 50 || e.seq >= 80).map((e) => e.token));
  const v = checkLedger(l, present, RESTORE_POINT_MS, RESTORE_POINT_MS);
  assert.equal(v.lost, 0);
  assert.equal(v.discarded, 30);
  assert.equal(v.survived, 70);
  assert.equal(v.rpoSeconds, 0);
  assert.equal(v.lostWindow, null);
  assert.deepEqual(v.discardedSample.slice(0, 3), ['t50', 't51', 't52']);
  assert.match(v.method, /discarded by the restore/);
});

test('a write acknowledged before the restore point and missing is lost even when later ones were discarded', () => {
  const l = ledger(100);
  // Write 45 (acked at 452 ms, before the restore point) is missing: the archive did not have it.
  const present = new Set(l.filter((e) => (e.seq < 50 && e.seq !== 45) || e.seq >= 80).map((e) => e.token));
  const v = checkLedger(l, present, RESTORE_POINT_MS, RESTORE_POINT_MS);
  assert.equal(v.lost, 1);
  assert.equal(v.discarded, 30);
  assert.deepEqual(v.lostSample, ['t45']);
  // RPO from the newest acked write whose predecessors all survived (write 44, acked 442 ms) to the fault; the
  // discarded writes after it do not stretch the window.
  assert.ok(Math.abs(v.rpoSeconds - (500 - 442) / 1000) < 1e-9, String(v.rpoSeconds));
  assert.deepEqual(v.lostWindow, { firstAckMs: 452, lastAckMs: 452 });
});

test('without a restore point every missing acknowledged write is lost (a failover, a lost cluster restored to latest)', () => {
  const l = ledger(100);
  const present = new Set(l.filter((e) => e.seq < 50 || e.seq >= 80).map((e) => e.token));
  const v = checkLedger(l, present, RESTORE_POINT_MS);
  assert.equal(v.lost, 30);
  assert.equal(v.discarded, 0);
  assert.ok(v.rpoSeconds > 0);
  assert.equal(ledgerCounts(v, RESTORE_POINT_MS).discardedByRestore, undefined);
});

test('unknown and refused writes after the restore point keep their own classes', () => {
  const l = ledger(20, (i) => (i === 12 ? 'unknown' : i === 13 ? 'failed' : 'ok'));
  const present = new Set(l.filter((e) => e.seq < 5).map((e) => e.token));
  const v = checkLedger(l, present, 50, 50);
  assert.equal(v.unknownAbsent, 1);
  assert.equal(v.failedAbsent, 1);
  assert.equal(v.discarded, 13);
  assert.equal(v.lost, 0);
  assert.equal(v.survived + v.lost + v.discarded, v.acknowledged);
});

test('the read-back classifies every write once with discards counted, and the record carries the count', () => {
  const l = ledger(100);
  const kept = l.filter((e) => e.seq < 50 || e.seq >= 80);
  const rows = {
    byToken: new Map(kept.map((e) => [e.token, e.seq] as const)),
    byScan: kept.map((e) => ({ token: e.token, seq: e.seq })),
  };
  const r = judgeReadBack(l, new Set(), rows, RESTORE_POINT_MS, RESTORE_POINT_MS);
  assert.equal(r.consistency.ok, true, r.consistency.problems.join('; '));
  const counts = ledgerCounts(r.verdict, RESTORE_POINT_MS, RESTORE_POINT_MS);
  assert.deepEqual(counts.discardedByRestore, {
    writes: 30,
    restorePointMs: RESTORE_POINT_MS,
    sample: l.slice(50, 70).map((e) => e.token),
  });
  assert.equal(counts.lost, 0);
});

test('a finding names the discarded writes and what the runbook must say; none when nothing was discarded', () => {
  const l = ledger(100);
  const present = new Set(l.filter((e) => e.seq < 50 || e.seq >= 80).map((e) => e.token));
  const v = checkLedger(l, present, RESTORE_POINT_MS, RESTORE_POINT_MS);
  const rpo = scoreRpo({
    dataClass: 'database',
    policy: { rpoMs: { database: 900_000, 'file-storage': 3_600_000, logs: 86_400_000 } },
    measurement: { ...rpoFromLedger(v), ledger: ledgerCounts(v, RESTORE_POINT_MS, RESTORE_POINT_MS) },
  });
  assert.equal(rpo.met, true);
  assert.equal(rpo.lostWrites, 0);
  const base = {
    tier: 'critical' as const,
    rto: { targetSeconds: 60, measuredSeconds: 12, method: 'window', met: true },
    slo: [],
    verification: [],
    actions: [],
    dropped: 0,
    endedAt: '2026-12-04T12:00:00.000Z',
  };
  const f = deriveFindings({ ...base, rpo });
  assert.equal(f.length, 1);
  assert.equal(f[0]!.severity, 'SEV3');
  assert.equal(f[0]!.objective, 'rpo');
  assert.match(f[0]!.title, /^30 acknowledged writes discarded by the point-in-time restore$/);
  assert.match(f[0]!.detail, /runbook must say what happens to them/);
  assert.match(f[0]!.detail, /t50, t51, t52, t53, t54/);

  const none = checkLedger(l, new Set(l.map((e) => e.token)), RESTORE_POINT_MS, RESTORE_POINT_MS);
  const clean = scoreRpo({
    dataClass: 'database',
    policy: { rpoMs: { database: 900_000, 'file-storage': 3_600_000, logs: 86_400_000 } },
    measurement: { ...rpoFromLedger(none), ledger: ledgerCounts(none, RESTORE_POINT_MS, RESTORE_POINT_MS) },
  });
  assert.deepEqual(deriveFindings({ ...base, rpo: clean }), []);
});
