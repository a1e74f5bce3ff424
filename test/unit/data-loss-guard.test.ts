/**
 * The guard on destructive data faults, as `drill validate` applies it: drop-table and delete-rows only on a
 * target with allowDataLoss: true and a reason; the reason goes with it; a Patroni lab is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';
import type { Target } from '../../lib/config/types.ts';
import dataLoss from '../../scenarios/data-loss.ts';

const catalog = new Map([[dataLoss.name, dataLoss]]);
// The lab's live restore comes with its Blob backups; said here so the guard is tested whatever the lab provides today.
const withLiveRestore = (t: Target) => [...new Set([...capabilitiesOf(t), ...(t.kind === 'lab' ? ['live-restore'] : [])])];

function drill(target: string, params: string): string {
  return `name: data-loss
kind: adhoc
service: { name: orders, tier: critical, dataClass: database }
target:
${target}
load:
  rate: 10
  requests:
    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' } }
scenarios:
  - scenario: data-loss
    name: drop
    params: ${params}
    timeout: 5m
`;
}

function problems(text: string): string[] {
  const r = validateDrillText('drill.yaml', text, catalog, { capabilitiesOf: withLiveRestore });
  return 'problems' in r ? r.problems.map(formatProblem) : [];
}

const LAB = '  kind: lab\n  replicas: 2';
const ALLOWED = `${LAB}\n  allowDataLoss: true\n  dataLossReason: the lab's orders are test data`;

test('drop-table and delete-rows on a target that does not allow data loss: refused, naming target.allowDataLoss', () => {
  for (const fault of ['drop-table', 'delete-rows']) {
    const p = problems(drill(LAB, `{ fault: ${fault} }`));
    assert.equal(p.length, 1, p.join('\n'));
    assert.match(
      p[0]!,
      /^drill\.yaml:\d+:\d+: scenarios\[0\]\.params\.fault: fault .* destroys data on the live database: .*target\.allowDataLoss: true and target\.dataLossReason/,
    );
  }
});

test('allowed with a reason: valid, and the normalised target carries the reason', () => {
  const r = validateDrillText('drill.yaml', drill(ALLOWED, '{ fault: drop-table }'), catalog, { capabilitiesOf: withLiveRestore });
  if ('problems' in r) assert.fail(r.problems.map(formatProblem).join('\n'));
  assert.deepEqual(r.drill.target.kind === 'lab' && r.drill.target.dataLoss, { reason: "the lab's orders are test data" });
  assert.deepEqual(r.drill.scenarios[0]!.params, { fault: 'drop-table', table: 'orders', restoreTimeout: '15m' });
});

test('allowDataLoss without a reason, or a reason without allowDataLoss: each named', () => {
  const noReason = problems(drill(`${LAB}\n  allowDataLoss: true`, '{ fault: drop-table }'));
  assert.ok(
    noReason.some((p) => /target\.allowDataLoss: allowDataLoss: true needs dataLossReason/.test(p)),
    noReason.join('\n'),
  );
  const noFlag = problems(drill(`${LAB}\n  dataLossReason: why not`, '{ fault: lose-cluster }'));
  assert.ok(
    noFlag.some((p) => /target\.dataLossReason: dataLossReason is given but allowDataLoss is not true/.test(p)),
    noFlag.join('\n'),
  );
});

test('lose-cluster needs no guard (nothing is destroyed by a statement); restoreTo latest after a destructive change is refused', () => {
  assert.deepEqual(problems(drill(LAB, '{ fault: lose-cluster }')), []);
  const p = problems(drill(ALLOWED, '{ fault: delete-rows, restoreTo: latest }'));
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0]!, /params\.restoreTo: restoreTo: latest would replay the delete-rows too/);
});

test('a Patroni lab is refused with what to use instead; a table name that is no identifier is refused', () => {
  const p = problems(drill(`${ALLOWED}\n  database: { provider: patroni }`, '{ fault: drop-table }'));
  assert.ok(
    p.some((x) => /params\.fault: the live restore rebuilds the lab pair without Patroni.*use provider: pg-promote/.test(x)),
    p.join('\n'),
  );
  const t = problems(drill(ALLOWED, "{ fault: drop-table, table: 'orders; DROP DATABASE x' }"));
  assert.ok(
    t.some((x) => /params\.table: expected a table name/.test(x)),
    t.join('\n'),
  );
});
