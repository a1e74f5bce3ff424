import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { completeLinesLength, readSegments, segmentBlobName } from '../../lib/lab/log-ship.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';

const drill = (target: string) => `name: ship
kind: adhoc
target: ${target}
load: { rate: 10 }
scenarios:
  - scenario: pod-kill
`;

test("the lab target's logShipInterval is a duration, in ms after validation; absent, the lab keeps its own", () => {
  const r = validateDrillText('a.yaml', drill('{ kind: lab, logShipInterval: 10s }'), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in r, JSON.stringify(r));
  assert.deepEqual(r.drill.target, { kind: 'lab', replicas: 3, logShipIntervalMs: 10_000 });
  const d = validateDrillText('b.yaml', drill('{ kind: lab }'), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in d && d.drill.target.kind === 'lab' && d.drill.target.logShipIntervalMs === undefined);
});

test('a logShipInterval under 1s is refused, naming file:line and the field', () => {
  const r = validateDrillText('c.yaml', drill('{ kind: lab, logShipInterval: 500ms }'), testCatalog(), { capabilitiesOf });
  assert.ok('problems' in r);
  const [p] = r.problems.map(formatProblem);
  assert.match(p!, /^c\.yaml:3:\d+: target\.logShipInterval: /);
  assert.ok(p!.includes('expected at least 1s'), p);
});

test('only complete lines are shipped; a line being written waits for the next pass', () => {
  assert.equal(completeLinesLength(Buffer.from('{"a":1}\n{"b":2}\n{"c"')), 16);
  assert.equal(completeLinesLength(Buffer.from('{"c"')), 0);
  assert.equal(completeLinesLength(Buffer.alloc(0)), 0);
});

test("segment names sort by offset, so a replica's segments read back in order", () => {
  const names = [segmentBlobName('orders-1', 10_000), segmentBlobName('orders-1', 999), segmentBlobName('orders-1', 0)];
  assert.deepEqual([...names].sort(), [
    segmentBlobName('orders-1', 0),
    segmentBlobName('orders-1', 999),
    segmentBlobName('orders-1', 10_000),
  ]);
});

test('read-back of shipped segments: tokens, lines and newest line per replica; a torn line is counted apart', () => {
  const line = (replica: string, ts: string, token: string | null) =>
    JSON.stringify({ ts, replica, method: 'POST', path: '/orders', status: 201, token, ms: 3 });
  const r = readSegments([
    {
      name: 'orders-1/0.jsonl',
      text: `${line('orders-1', '2026-12-04T10:00:01Z', 't1')}\n${line('orders-1', '2026-12-04T10:00:03Z', 't3')}\n`,
    },
    {
      name: 'orders-2/0.jsonl',
      text: `${line('orders-2', '2026-12-04T10:00:02Z', 't2')}\n${line('orders-2', '2026-12-04T10:00:04Z', null)}\n{"ts":`,
    },
  ]);
  assert.deepEqual([...r.tokens].sort(), ['t1', 't2', 't3']);
  assert.deepEqual(Object.fromEntries(r.replicas), {
    'orders-1': { lines: 2, newestTs: '2026-12-04T10:00:03Z' },
    'orders-2': { lines: 2, newestTs: '2026-12-04T10:00:04Z' },
  });
  assert.equal(r.unreadable, 1);
});
