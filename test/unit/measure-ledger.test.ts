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

test('a write acknowledged after the fault and lost (an old primary still answering) is lost data: RPO runs from the last safe ack to its ack, never 0', () => {
  const l = ledger(5);
  const v = checkLedger(l, new Set(['t0', 't1', 't2', 't3']), 10);
  assert.equal(v.lost, 1);
  // t3 (the last safe write) acked at 32 ms, t4 (lost) at 42 ms; the fault at 10 ms came before both.
  assert.ok(Math.abs(v.rpoSeconds - (42 - 32) / 1000) < 1e-9, String(v.rpoSeconds));
  assert.deepEqual(v.lostWindow, { firstAckMs: 42, lastAckMs: 42 });
});

test('a lost stretch in the middle, with unknowns around it: each write in exactly one class, RPO from the hole', () => {
  // 0-29 ok and present; 30-39 ok and lost (the standby never saw them); 40-44 unknown (timed out while the
  // primary was dying), two of them committed; 45-49 failed (refused on connect); 50-59 ok on the new primary.
  const l = ledger(60, (i) => (i >= 40 && i < 45 ? 'unknown' : i >= 45 && i < 50 ? 'failed' : 'ok'));
  const present = new Set(l.filter((e) => e.seq < 30 || e.seq === 41 || e.seq === 43 || e.seq >= 50).map((e) => e.token));
  const v = checkLedger(l, present, 450);
  assert.equal(v.total, 60);
  assert.equal(v.acknowledged, 50);
  assert.equal(v.survived, 40);
  assert.equal(v.lost, 10);
  assert.equal(v.unknownPresent, 2);
  assert.equal(v.unknownAbsent, 3);
  assert.equal(v.failedPresent, 0);
  assert.equal(v.failedAbsent, 5);
  assert.equal(v.unexpected, 0);
  assert.equal(v.survived + v.lost + v.unknownPresent + v.unknownAbsent + v.failedPresent + v.failedAbsent, v.total);
  // Newest write with an unbroken surviving prefix: seq 29, acked at 292 ms; later survivors (50-59) do not shorten it.
  assert.ok(Math.abs(v.rpoSeconds - (450 - 292) / 1000) < 1e-9, String(v.rpoSeconds));
  assert.deepEqual(v.lostWindow, { firstAckMs: 302, lastAckMs: 392 });
  assert.deepEqual(
    v.lostSample,
    Array.from({ length: 10 }, (_, k) => `t${30 + k}`),
  );
});

test('unexpected rows are counted once each and never make a write lost or safe', () => {
  const l = ledger(4);
  const present = new Set(['t0', 't1', 't2', 't3', 'x1', 'x2', 'x3']);
  const v = checkLedger(l, present, 100);
  assert.equal(v.unexpected, 3);
  assert.equal(v.survived, 4);
  assert.equal(v.lost, 0);
  assert.equal(v.rpoSeconds, 0);
});

test('RPO follows ack order, not send order: a slow write acked late that survived does not hide an earlier loss', () => {
  const l: LedgerEntry[] = [
    { seq: 0, token: 'a', sentMs: 0, ackMs: 5, outcome: 'ok' },
    { seq: 1, token: 'b', sentMs: 10, ackMs: 400, outcome: 'ok' }, // slow, survived
    { seq: 2, token: 'c', sentMs: 20, ackMs: 25, outcome: 'ok' }, // fast, lost
    { seq: 3, token: 'd', sentMs: 30, ackMs: 35, outcome: 'ok' },
  ];
  const v = checkLedger(l, new Set(['a', 'b', 'd']), 500);
  assert.equal(v.lost, 1);
  assert.equal(v.rpoSeconds, (500 - 5) / 1000);
  assert.deepEqual(v.lostWindow, { firstAckMs: 25, lastAckMs: 25 });
});

test('nothing acknowledged at all: RPO 0 and no window, however many unknowns are absent', () => {
  const l = ledger(5, () => 'unknown');
  const v = checkLedger(l, new Set(), 100);
  assert.equal(v.acknowledged, 0);
  assert.equal(v.unknownAbsent, 5);
  assert.equal(v.rpoSeconds, 0);
  assert.equal(v.lostWindow, null);
});

test('a ledger of 500,000 writes is checked without running out of stack', () => {
  const l = ledger(500_000);
  const present = new Set(l.filter((e) => e.seq % 1000 !== 999).map((e) => e.token));
  const v = checkLedger(l, present, 5_000_000);
  assert.equal(v.lost, 500);
  assert.equal(v.total, 500_000);
  assert.deepEqual(v.lostWindow, { firstAckMs: 9992, lastAckMs: 4_999_992 });
});
