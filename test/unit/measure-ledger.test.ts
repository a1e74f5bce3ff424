import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLedger, type LedgerEntry } from '../../lib/measure/ledger.ts';

function ledger(n: number, outcome: (i: number) => LedgerEntry['outcome'] = () => 'ok'): LedgerEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const o = outcome(i);
    return { seq: i, token: `t${i}`, sentMs: i * 10, ackMs: o === 'ok' ? i * 10 + 2 : null, outcome: o };
  });
}

test('nothing lost: RPO 0, every write classified once', () => {
  const l = ledger(100);
  const v = checkLedger(l, new Set(l.map((e) => e.token)), 1000);
  assert.equal(v.lost, 0);
  assert.equal(v.survived, 100);
  assert.equal(v.rpoSeconds, 0);
  assert.equal(v.lostWindow, null);
});

test('a lost tail: RPO runs from the newest surviving prefix to the fault', () => {
  const l = ledger(100);
  // Writes 90..99 (acked at 902..992 ms) were acknowledged by the old primary and never reached the standby.
  const present = new Set(l.filter((e) => e.seq < 90).map((e) => e.token));
  const v = checkLedger(l, present, 1000);
  assert.equal(v.lost, 10);
  assert.equal(v.survived, 90);
  assert.ok(Math.abs(v.rpoSeconds - (1000 - 892) / 1000) < 1e-9, String(v.rpoSeconds));
  assert.deepEqual(v.lostWindow, { firstAckMs: 902, lastAckMs: 992 });
  assert.equal(v.lostSample.length, 10);
});

test('a hole in the middle counts from the hole, not from the newest survivor', () => {
  const l = ledger(100);
  const present = new Set(l.filter((e) => e.seq !== 40).map((e) => e.token));
  const v = checkLedger(l, present, 1000);
  assert.equal(v.lost, 1);
  assert.ok(Math.abs(v.rpoSeconds - (1000 - 392) / 1000) < 1e-9);
});

test('unknowns are neither lost nor safe; failures and strangers are counted apart', () => {
  const l = ledger(10, (i) => (i === 3 || i === 4 ? 'unknown' : i === 7 || i === 8 ? 'failed' : 'ok'));
  const present = new Set(['t0', 't1', 't2', 't3', 't5', 't6', 't7', 't9', 'stranger']);
  const v = checkLedger(l, present, 200);
  assert.equal(v.acknowledged, 6);
  assert.equal(v.survived, 6);
  assert.equal(v.lost, 0);
  assert.equal(v.unknownPresent, 1);
  assert.equal(v.unknownAbsent, 1);
  assert.equal(v.failedPresent, 1);
  assert.equal(v.failedAbsent, 1);
  assert.equal(v.unexpected, 1);
  assert.equal(v.survived + v.lost + v.unknownPresent + v.unknownAbsent + v.failedPresent + v.failedAbsent, v.total);
  assert.equal(v.rpoSeconds, 0);
});

test('first write lost: the surviving prefix is empty, RPO reaches back to the first send', () => {
  const l = ledger(5);
  const v = checkLedger(l, new Set(['t1', 't2', 't3', 't4']), 100);
  assert.equal(v.lost, 1);
  assert.equal(v.rpoSeconds, 0.1);
});

test('a write lost after the fault does not make RPO negative', () => {
  const l = ledger(5);
  const v = checkLedger(l, new Set(['t0', 't1', 't2', 't3']), 10);
  assert.equal(v.lost, 1);
  assert.equal(v.rpoSeconds, 0);
  assert.deepEqual(v.lostWindow, { firstAckMs: 42, lastAckMs: 42 });
});
