import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFiles, checkLogs, type FileLedgerEntry, type LogLedgerEntry } from '../../lib/measure/data-classes.ts';
import {
  attachmentBody,
  FileLedger,
  filesTsv,
  LogLedger,
  logsTsv,
  parseFilesTsv,
  parseLogsTsv,
  sha256Hex,
} from '../../lib/load/class-ledgers.ts';

function files(n: number): FileLedgerEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const body = attachmentBody(`tok-${i}`, i);
    return { seq: i, name: `orders/${i}/attachment`, sha256: sha256Hex(body), sentMs: i * 100, ackMs: i * 100 + 5, outcome: 'ok' };
  });
}

function logs(n: number, replicas = ['orders-1', 'orders-2']): LogLedgerEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    seq: i,
    token: `tok-${i}`,
    replica: replicas[i % replicas.length]!,
    sentMs: i * 100,
    ackMs: i * 100 + 5,
    outcome: 'ok',
  }));
}

test('files: every upload stored with its bytes: 0 lost, RPO 0', () => {
  const l = files(50);
  const v = checkFiles(l, new Map(l.map((e) => [e.name, e.sha256])), 6000);
  assert.deepEqual([v.acknowledged, v.survived, v.lost, v.rpoSeconds], [50, 50, 0, 0]);
});

test('files: the newest 10 missing: 10 lost, RPO from the last surviving ack to the fault', () => {
  const l = files(50);
  const stored = new Map(l.filter((e) => e.seq < 40).map((e) => [e.name, e.sha256]));
  const v = checkFiles(l, stored, 6000);
  assert.equal(v.lost, 10);
  // Newest surviving prefix ends at file 39, acknowledged at 3905 ms; the fault at 6000 ms.
  assert.equal(v.rpoSeconds, (6000 - 3905) / 1000);
  assert.deepEqual(v.lostSample.slice(0, 2), ['orders/40/attachment', 'orders/41/attachment']);
});

test('files: a blob of the right name with other bytes is not the file', () => {
  const l = files(5);
  const stored = new Map(l.map((e) => [e.name, e.sha256]));
  stored.set('orders/2/attachment', sha256Hex('truncated'));
  const v = checkFiles(l, stored, 1000);
  assert.equal(v.lost, 1);
  // File 1 (ack 105 ms) is the newest of the surviving prefix.
  assert.equal(v.rpoSeconds, (1000 - 105) / 1000);
});

test('files: an upload that timed out is unknown, neither lost nor safe', () => {
  const l = files(3);
  l[2] = { ...l[2]!, outcome: 'unknown', ackMs: null };
  const v = checkFiles(l, new Map(l.slice(0, 2).map((e) => [e.name, e.sha256])), 1000);
  assert.deepEqual([v.lost, v.unknown, v.rpoSeconds], [0, 1, 0]);
});

test('logs: an unshipped tail on one replica: lost lines counted exactly, newest surviving line per replica', () => {
  const l = logs(40);
  // orders-2 (odd seqs) shipped nothing after seq 21; orders-1 shipped everything.
  const shipped = new Set(l.filter((e) => e.replica === 'orders-1' || e.seq <= 21).map((e) => e.token));
  const v = checkLogs(l, shipped, 4000);
  assert.equal(v.lost, 9); // 23, 25, ..., 39
  assert.equal(v.rpoSeconds, (4000 - 2205) / 1000); // seq 22 (ack 2205 ms) is the last of the unbroken prefix
  assert.deepEqual(v.replicas, [
    { replica: 'orders-1', acknowledged: 20, lost: 0, newestSurvivingAckMs: 3805 },
    { replica: 'orders-2', acknowledged: 20, lost: 9, newestSurvivingAckMs: 2105 },
  ]);
});

test('files.tsv and logs.tsv round-trip; a request still pending at the end is unknown', () => {
  const fl = new FileLedger();
  const a = fl.push({ seq: 0, name: 'orders/1/attachment', sha256: sha256Hex('x'), sentMs: 10 });
  const b = fl.push({ seq: 1, name: 'orders/2/attachment', sha256: sha256Hex('y'), sentMs: 20 });
  fl.settle(a, 'ok', 15.5);
  void b;
  const fe = fl.entries();
  assert.deepEqual(parseFilesTsv(filesTsv(fe)), fe);
  assert.equal(fe[1]!.outcome, 'unknown');

  const ll = new LogLedger();
  const r = ll.push({ seq: 3, token: 'tok', replica: 'orders-1', sentMs: 1 });
  ll.settle(r, 'failed', 9);
  const le = ll.entries();
  assert.equal(le[0]!.ackMs, null);
  assert.deepEqual(parseLogsTsv(logsTsv(le)), le);
  assert.throws(() => parseLogsTsv('seq\ttoken\n'), /not a logs.tsv/);
});
