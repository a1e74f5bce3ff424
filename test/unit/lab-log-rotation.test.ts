// Request-log rotation and the shipping wait, as pure logic and on real files in a scratch lab folder (no
// processes): which files a replica no longer writes, how segments of later generations are named, when the
// wait for a shipping pass is over, and what `drill lab status` calls a problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedLogFiles, logFileName, newestGeneration, parseLogFileName, segmentBlobName } from '../../lib/lab/log-ship.ts';
import { logShippingStatus, shipPendingNow, shippingProblems, type LogShippingStatus } from '../../lib/lab/log-shipping.ts';
import { labPaths } from '../../lib/lab/paths.ts';

test('a log file name gives its replica and generation back, generation 0 keeping the old name', () => {
  for (const [replica, gen] of [
    ['orders-ab12-3', 0],
    ['orders-ab12-3', 7],
    ['orders-4711', 12],
  ] as const) {
    assert.deepEqual(parseLogFileName(logFileName(replica, gen)), { replica, gen });
  }
  assert.equal(logFileName('orders-1', 0), 'orders-1.jsonl');
  assert.equal(parseLogFileName('shipped.json'), null);
  assert.equal(parseLogFileName('shipper.json'), null);
  assert.equal(parseLogFileName('.shipped.json.12.ab.tmp'), null);
});

test('only an older generation of a replica that has a newer one is closed; the newest is never', () => {
  const files = ['orders-1.jsonl', 'orders-1~1.jsonl', 'orders-1~2.jsonl', 'orders-2.jsonl', 'orders-3~4.jsonl', 'shipped.json'];
  assert.deepEqual([...closedLogFiles(files)].sort(), ['orders-1.jsonl', 'orders-1~1.jsonl']);
  assert.equal(newestGeneration(files, 'orders-1'), 2);
  assert.equal(newestGeneration(files, 'orders-3'), 4);
  assert.equal(newestGeneration(files, 'orders-9'), -1);
  // A dead replica's last file stays: nothing says it will not be written again under its name.
  assert.deepEqual([...closedLogFiles(['orders-2.jsonl'])], []);
});

test('segments of later generations sort after earlier ones, and by offset inside one', () => {
  const names = [
    segmentBlobName('orders-1', 500, 2),
    segmentBlobName('orders-1', 0, 2),
    segmentBlobName('orders-1', 9_000_000, 1),
    segmentBlobName('orders-1', 10_000_000, 0),
    segmentBlobName('orders-1', 0, 0),
  ];
  assert.deepEqual([...names].sort(), [
    'orders-1/00000000000000.jsonl',
    'orders-1/00000010000000.jsonl',
    'orders-1/g000001-00000009000000.jsonl',
    'orders-1/g000002-00000000000000.jsonl',
    'orders-1/g000002-00000000000500.jsonl',
  ]);
});

function scratchLab(t: { after(f: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'drill-log-rotation-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(labPaths(dir).serviceLogs.dir, { recursive: true });
  return dir;
}

const line = (ts: string, token: string) =>
  `${JSON.stringify({ ts, replica: 'orders-1', method: 'POST', path: '/orders', status: 201, token, ms: 3 })}\n`;

test('the wait for a pass is over at once when everything written is shipped, a torn last line not counted', async (t) => {
  const dir = scratchLab(t);
  const p = labPaths(dir).serviceLogs;
  const shippedPart = line('2026-12-04T20:00:00.000Z', 'a') + line('2026-12-04T20:00:01.000Z', 'b');
  writeFileSync(join(p.dir, 'orders-1.jsonl'), `${shippedPart}{"ts":"2026-12-04T20:00:02`);
  writeFileSync(p.shipState, JSON.stringify({ 'orders-1.jsonl': Buffer.byteLength(shippedPart) }));
  const out = await shipPendingNow(dir, { timeoutMs: 5000 });
  assert.deepEqual(out, { shipped: true, detail: 'nothing was waiting to be shipped' });
});

test('with lines pending and no shipper running, the wait ends at its limit and names the file and the bytes', async (t) => {
  const dir = scratchLab(t);
  const p = labPaths(dir).serviceLogs;
  const first = line('2026-12-04T20:00:00.000Z', 'a');
  const pendingPart = line(new Date(Date.now() - 4000).toISOString(), 'b');
  writeFileSync(join(p.dir, 'orders-1~3.jsonl'), first + pendingPart);
  writeFileSync(p.shipState, JSON.stringify({ 'orders-1~3.jsonl': Buffer.byteLength(first) }));
  const t0 = performance.now();
  const out = await shipPendingNow(dir, { timeoutMs: 600 });
  assert.ok(performance.now() - t0 >= 600, 'waited until the limit');
  assert.equal(out.shipped, false);
  assert.match(out.detail, /^the log shipper is not running: \d+ bytes of request-log lines in orders-1~3\.jsonl were not in Blob/);
  assert.ok(out.detail.includes(`${Buffer.byteLength(pendingPart)} bytes`), out.detail);

  // What status says of the same lab: no shipper, the pending line's age as the lag.
  const s = (await logShippingStatus(dir, false)) ?? null;
  assert.equal(s, null, 'a lab that never recorded a shipper has no shipper line');
  writeFileSync(join(p.dir, 'shipper.json'), JSON.stringify({ pid: 1, intervalMs: 5000, lastPassAt: null }));
  const s2 = (await logShippingStatus(dir, false))!;
  assert.equal(s2.state, 'down');
  assert.equal(s2.pendingBytes, Buffer.byteLength(pendingPart));
  assert.ok(s2.lagSeconds! >= 4 && s2.lagSeconds! < 30, `lag ${s2.lagSeconds}`);
});

test('the wait is over when the shipper deleted a rotated file: it deletes only what it shipped', async (t) => {
  const dir = scratchLab(t);
  const p = labPaths(dir).serviceLogs;
  writeFileSync(join(p.dir, 'orders-1.jsonl'), line('2026-12-04T20:00:00.000Z', 'a'));
  writeFileSync(p.shipState, JSON.stringify({}));
  const waiting = shipPendingNow(dir, { timeoutMs: 5000 });
  setTimeout(() => rmSync(join(p.dir, 'orders-1.jsonl')), 200);
  const out = await waiting;
  assert.equal(out.shipped, true, out.detail);
});

test('status calls a shipper down, stopped or lagging past twice its interval plus 5 s a problem', () => {
  const base: LogShippingStatus = {
    pid: 42,
    state: 'running',
    restarts: 0,
    lastExit: null,
    intervalSeconds: 5,
    lastPassAt: null,
    lastPassOk: true,
    lastShippedAt: null,
    lastError: null,
    pendingBytes: 0,
    lagSeconds: 0,
  };
  assert.deepEqual(shippingProblems(base), []);
  assert.deepEqual(shippingProblems({ ...base, lagSeconds: 15 }), []);
  assert.match(
    shippingProblems({ ...base, lagSeconds: 15.1, pendingBytes: 300 })[0]!,
    /wait 15\.1s to be shipped \(interval 5s, allowed 15s\), 300 bytes pending/,
  );
  assert.match(shippingProblems({ ...base, state: 'stopped' })[0]!, /pid 42\) is stopped \(SIGSTOP\).*kill -CONT 42/);
  assert.match(
    shippingProblems({ ...base, state: 'down', pid: null, lastExit: 'SIGKILL at x' })[0]!,
    /not running \(last exit: SIGKILL at x\)/,
  );
  assert.deepEqual(shippingProblems(null), []);
});
