import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';

const drill = (target: string) => `name: archive
kind: adhoc
target: ${target}
load: { rate: 10 }
scenarios:
  - scenario: pod-kill
`;

test("the lab target's archiveLag is a duration, in ms after validation; absent, the lab keeps its own", () => {
  const r = validateDrillText('a.yaml', drill('{ kind: lab, archiveLag: 5s }'), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in r, JSON.stringify(r));
  assert.deepEqual(r.drill.target, { kind: 'lab', replicas: 3, archiveLagMs: 5000 });
  const d = validateDrillText('b.yaml', drill('{ kind: lab }'), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in d && d.drill.target.kind === 'lab' && d.drill.target.archiveLagMs === undefined);
});

test('an archiveLag under 2s or not a duration is refused, naming file:line and the field', () => {
  for (const [lag, why] of [
    ['1s', 'expected at least 2s, got "1s"'],
    ['soon', '"soon"'],
  ] as const) {
    const r = validateDrillText('c.yaml', drill(`{ kind: lab, archiveLag: ${lag} }`), testCatalog(), { capabilitiesOf });
    assert.ok('problems' in r);
    const [p] = r.problems.map(formatProblem);
    assert.match(p!, /^c\.yaml:3:\d+: target\.archiveLag: /);
    assert.ok(p!.includes(why), p);
  }
});
