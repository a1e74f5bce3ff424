import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import { validateProfile } from '../../lib/load/templates.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';

const drill = (load: string) => `name: files
kind: adhoc
target: { kind: lab }
load: ${load}
scenarios:
  - scenario: pod-kill
`;

test('load.attachments.share is carried to the load; absent or 0 means no uploads, so existing drills are unchanged', () => {
  const r = validateDrillText('a.yaml', drill('{ rate: 10, attachments: { share: 0.2 } }'), testCatalog(), { capabilitiesOf });
  assert.ok('drill' in r, JSON.stringify(r));
  assert.deepEqual(r.drill.load?.attachments, { share: 0.2 });
  for (const load of ['{ rate: 10 }', '{ rate: 10, attachments: { share: 0 } }']) {
    const d = validateDrillText('b.yaml', drill(load), testCatalog(), { capabilitiesOf });
    assert.ok('drill' in d && d.drill.load?.attachments === undefined, load);
  }
});

test('a share of 1 or more is refused, naming file:line and the field', () => {
  const r = validateDrillText('c.yaml', drill('{ rate: 10, attachments: { share: 1 } }'), testCatalog(), { capabilitiesOf });
  assert.ok('problems' in r);
  const [p] = r.problems.map(formatProblem);
  assert.match(p!, /^c\.yaml:4:\d+: load\.attachments\.share: /);
});

test('the load generator refuses a share outside 0 to below 1 given directly', () => {
  const profile = {
    url: 'http://127.0.0.1:1',
    rate: 1,
    requests: [{ method: 'GET' as const, path: '/', weight: 1 }],
    timeoutMs: 1000,
    maxInFlight: 1,
    connections: 1,
  };
  assert.throws(() => validateProfile({ ...profile, attachments: { share: 1 } }), /attachments\.share must be a number from 0 to below 1/);
  assert.doesNotThrow(() => validateProfile({ ...profile, attachments: { share: 0.5 } }));
});
