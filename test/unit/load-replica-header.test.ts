// logs.tsv's replica column: a slot carrying a ledgered request keeps the replica its answer named
// (x-drill-replica, as the lab service sends it); other requests do not pay for the header scan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Slot } from '../../lib/load/slots.ts';

const owner = { responded: () => {}, failed: () => {} };
const raw = (pairs: [string, string][]) => pairs.flatMap(([k, v]) => [Buffer.from(k, 'latin1'), Buffer.from(v, 'latin1')]);

test('a write or an upload remembers which replica answered it, whatever the header case', () => {
  const write = new Slot(owner);
  write.begin(7, 3, -1);
  write.onHeaders(
    201,
    raw([
      ['Content-Type', 'application/json'],
      ['X-Drill-Replica', ' orders-ab12-2 '],
    ]),
  );
  assert.equal(write.replica, 'orders-ab12-2');
  const upload = new Slot(owner);
  upload.begin(8, -1, 0);
  upload.onHeaders(503, raw([['x-drill-replica', 'orders-ab12-1']]));
  assert.equal(upload.replica, 'orders-ab12-1');
});

test('a read is not scanned, an answer without the header leaves it empty, and a reused slot forgets it', () => {
  const read = new Slot(owner);
  read.begin(1, -1, -1);
  read.onHeaders(200, raw([['x-drill-replica', 'orders-1']]));
  assert.equal(read.replica, '');
  const s = new Slot(owner);
  s.begin(2, 0, -1);
  s.onHeaders(201, raw([['x-drill-replica', 'orders-1']]));
  s.free();
  s.begin(3, 1, -1);
  assert.equal(s.replica, '');
  s.onHeaders(201, raw([['server', 'elsewhere']]));
  assert.equal(s.replica, '');
});
