import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBackupPolicy, failsDrill, type PolicyBackup } from '../../lib/backup/policy.ts';

const NOW = new Date('2026-12-02T06:00:00.000Z');
const H = 3_600_000;
const ago = (hours: number) => new Date(NOW.getTime() - hours * H).toISOString();
const daily = (days: number, offsetHours = 2): PolicyBackup[] =>
  Array.from({ length: days }, (_, i) => ({
    folder: `f${i}/`,
    kind: 'logical' as const,
    database: 'orders',
    takenAt: ago(offsetHours + 24 * i),
    usable: true,
  }));

test('thirty daily backups, the newest 2 h old: the policy holds', () => {
  assert.deepEqual(checkBackupPolicy(daily(30), NOW, 'logical backups of orders'), []);
});

test('no backup at all is SEV1 and fails a drill', () => {
  const f = checkBackupPolicy([], NOW, 'logical backups of orders');
  assert.deepEqual(
    f.map((x) => [x.check, x.severity, x.title]),
    [['exists', 'SEV1', 'no logical backups of orders']],
  );
  assert.equal(failsDrill(f[0]!), true);
});

test('newest older than 24 h is SEV2; older than 48 h SEV1', () => {
  const f = checkBackupPolicy(daily(30, 30), NOW, 'backups');
  const age = f.find((x) => x.check === 'newest-age');
  assert.equal(age?.severity, 'SEV2');
  assert.equal(age?.title, 'newest of the backups is 30.0 h old');
  assert.match(age!.detail, /taken 2026-12-01T00:00:00.000Z; the policy wants one younger than 24.0 h/);
  assert.equal(checkBackupPolicy(daily(30, 50), NOW, 'backups').find((x) => x.check === 'newest-age')?.severity, 'SEV1');
});

test('backups that do not reach back 30 days, and a gap, are SEV3 and do not fail a drill by default', () => {
  const f = checkBackupPolicy(daily(10), NOW, 'backups');
  assert.deepEqual(
    f.map((x) => [x.check, x.severity]),
    [['coverage', 'SEV3']],
  );
  assert.equal(f[0]!.title, 'backups reach back only 9.1 days');
  assert.equal(failsDrill(f[0]!), false);
  assert.equal(failsDrill(f[0]!, 'SEV3'), true);
  const gappy = daily(30).filter((_, i) => i < 5 || i > 8);
  const g = checkBackupPolicy(gappy, NOW, 'backups').filter((x) => x.check === 'gap');
  assert.equal(g.length, 1);
  assert.equal(g[0]!.title, '5.0 days without a backup in the backups');
});

test('anything older than the retention (with a day of slack) is a SEV3 finding naming the oldest', () => {
  const f = checkBackupPolicy(daily(40), NOW, 'backups').filter((x) => x.check === 'retention');
  assert.equal(f.length, 1);
  assert.equal(f[0]!.severity, 'SEV3');
  assert.equal(f[0]!.title, '9 of the backups older than the 30.0 days retention');
  assert.match(f[0]!.detail, /^oldest f39\/ taken 2026-10-24T04:00:00.000Z: retention clean-up is not running/);
});

test('a backup without a manifest does not count: the newest usable one is judged', () => {
  const list = daily(30);
  list[0] = { ...list[0]!, usable: false, problem: 'manifest.json is missing' };
  const f = checkBackupPolicy(list, NOW, 'backups');
  assert.deepEqual(
    f.map((x) => [x.check, x.severity]),
    [
      ['manifest', 'SEV3'],
      ['newest-age', 'SEV2'],
    ],
  );
  assert.match(f[0]!.detail, /manifest\.json is missing; it cannot be verified/);
});
