import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeVerdict, judgeReadBack, type ReadBackRows } from '../../lib/measure/ledger-readback.ts';
import { ledgerCounts, type LedgerEntry } from '../../lib/measure/ledger.ts';
import { parseWritesTsv, WriteFate, WriteLedger, writesTsv } from '../../lib/load/ledger.ts';
import { createRequestLog, Outcome } from '../../lib/measure/request-log.ts';

function entries(n: number, outcome: (i: number) => LedgerEntry['outcome'] = () => 'ok'): LedgerEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const o = outcome(i);
    return { seq: i * 10, token: `abcd0123-${i}`, sentMs: i * 10, ackMs: o === 'ok' ? i * 10 + 2 : null, outcome: o };
  });
}

function rows(
  present: Array<{ token: string; seq: number | null }>,
  opts: { notIndexed?: string[]; notScanned?: string[] } = {},
): ReadBackRows {
  return {
    byToken: new Map(present.filter((p) => !opts.notIndexed?.includes(p.token)).map((p) => [p.token, p.seq])),
    byScan: present.filter((p) => !opts.notScanned?.includes(p.token)),
  };
}

test('a clean read-back: lookup and scan agree, later writes set aside, every write classified once', () => {
  const e = entries(20, (i) => (i === 5 ? 'unknown' : 'ok'));
  const later = new Set(['abcd0123-later-1', 'abcd0123-later-2']);
  const present = [...e.filter((x) => x.seq < 150).map((x) => ({ token: x.token, seq: x.seq })), { token: 'abcd0123-later-1', seq: 200 }];
  const { verdict, consistency } = judgeReadBack(e, later, rows(present), 160);
  assert.equal(verdict.lost, 5, 'seq 150..190 acknowledged and absent');
  assert.equal(verdict.unknownPresent, 1);
  assert.equal(verdict.unexpected, 0, 'a write sent after the cut-off is not a stranger');
  assert.equal(consistency.later, 1);
  assert.equal(consistency.rowsByToken, 15);
  assert.equal(consistency.rowsByScan, 15);
  assert.equal(consistency.ok, true, consistency.problems.join('; '));
  assert.match(
    describeVerdict(verdict),
    /^20 writes: 19 acknowledged \(14 survived, 5 lost\); unknown 1 present \/ 0 absent; failed 0 absent \/ 0 present; 0 unexpected; lost acks from 0\.152s to 0\.192s$/,
  );
  const counts = ledgerCounts(verdict, 160);
  assert.equal(counts.faultMs, 160);
  assert.equal(counts.lost, 5);
  assert.deepEqual(counts.lostWindow, { firstAckMs: 152, lastAckMs: 192 });
});

test('strangers, duplicates, wrong seqs and index/heap disagreement are each a named problem', () => {
  const e = entries(10, (i) => (i === 9 ? 'failed' : 'ok'));
  const present = [
    ...e.map((x) => ({ token: x.token, seq: x.seq })),
    { token: 'abcd0123-0', seq: 0 }, // a second row for token 0
    { token: 'abcd0123-stranger', seq: 999 },
  ];
  present[3] = { token: 'abcd0123-3', seq: 31 }; // stored seq differs from the one sent (30)
  const r = rows(present, { notIndexed: ['abcd0123-4'], notScanned: ['abcd0123-5'] });
  const { verdict, consistency } = judgeReadBack(e, new Set(), r, 1000);
  assert.equal(verdict.unexpected, 1);
  assert.equal(verdict.failedPresent, 1);
  assert.equal(verdict.lost, 0, 'a token only one access path found is still present');
  assert.equal(consistency.duplicates, 1);
  assert.equal(consistency.seqMismatches, 1);
  assert.equal(consistency.onlyByToken, 1);
  assert.equal(consistency.onlyByScan, 1);
  assert.equal(consistency.ok, false);
  assert.deepEqual(consistency.problems, [
    '1 tokens found by index lookup but not by a table scan',
    '1 tokens found by a table scan but not by index lookup',
    '1 tokens stored more than once',
    '1 rows whose seq differs from the one their write carried',
    '1 writes the service refused are present',
    "1 rows carry this run's tag but no token it sent",
  ]);
});

test('writes.tsv carries every write and reads back into the same entries', () => {
  const log = createRequestLog(16);
  const ledger = new WriteLedger(log, 2, Buffer.from('0badc0de', 'hex'));
  const fates = [WriteFate.ok, WriteFate.failed, WriteFate.unknown, WriteFate.ok, WriteFate.ok];
  for (let i = 0; i < 10; i++) {
    const idx = log.push(i * 5, 0);
    if (i % 2 === 1) continue; // reads are not in the ledger
    log.outcome[idx] = Outcome.ok;
    log.latencyMs[idx] = 1.5;
    const row = ledger.push(idx);
    ledger.settle(row, fates[row]!);
  }
  assert.equal(ledger.count, 5, 'grew past its initial capacity of 2');
  const tsv = writesTsv(ledger);
  const back = parseWritesTsv(tsv);
  assert.deepEqual(back, ledger.entries());
  assert.deepEqual(
    back.map((b) => b.seq),
    [0, 2, 4, 6, 8],
  );
  assert.ok(back.every((b) => b.token.startsWith('0badc0de-')));
  assert.equal(new Set(back.map((b) => b.token)).size, 5);
  assert.deepEqual(back[0], { seq: 0, token: ledger.tokenOf(0), sentMs: 0, ackMs: 1.5, outcome: 'ok' });
  assert.equal(back[1]!.ackMs, null);
  assert.throws(() => parseWritesTsv('seq\ttoken\n'), /not a writes\.tsv/);
  const pending = new WriteLedger(log);
  pending.push(0);
  assert.throws(() => pending.entries(), /still pending/);
  assert.throws(() => parseWritesTsv(writesTsv(pending)), /outcome "pending"/);
});

test('firstAckSince: the earliest acknowledgement among writes sent from then on, not the first one sent', () => {
  const log = createRequestLog(16);
  const ledger = new WriteLedger(log);
  // Sent at 0, 10, 20, 30 ms; the one sent at 10 fails, the one sent at 20 answers slowly (acked at 60).
  const latency = [1, 5, 40, 2];
  const fates = [WriteFate.ok, WriteFate.failed, WriteFate.ok, WriteFate.ok];
  for (let i = 0; i < 4; i++) {
    const idx = log.push(i * 10, 0);
    log.outcome[idx] = Outcome.ok;
    log.latencyMs[idx] = latency[i]!;
    ledger.settle(ledger.push(idx), fates[i]!);
  }
  assert.equal(ledger.firstAckSince(0), 1);
  assert.equal(ledger.firstAckSince(5), 32, 'the write sent at 30 was acknowledged (32) before the one sent at 20 (60)');
  assert.equal(ledger.firstAckSince(25), 32);
  assert.equal(ledger.firstAckSince(31), null);
});
