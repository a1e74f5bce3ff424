import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../lib/errors.ts';
import { ensureDebianPackages, type DebianNeed, type PackageInstaller } from '../../lib/util/system-packages.ts';

/** A machine where the named packages are installed; apt-get "installs" by adding to that set. */
function machine(installed: string[], isRoot: boolean, aptWorks = true) {
  const have = new Set(installed);
  const ran: string[] = [];
  const installer: PackageInstaller = {
    isRoot,
    run(command, args) {
      ran.push([command, ...args].join(' '));
      if (!aptWorks) return 100;
      if (args[0] === 'install') for (const p of args.slice(1)) if (!p.startsWith('-')) have.add(p);
      return 0;
    },
  };
  const need = (pkg: string, why: string): DebianNeed => ({ package: pkg, present: () => have.has(pkg), why });
  const needs = [need('postgresql-15', 'the lab database'), need('etcd-server', "Patroni's store"), need('patroni', 'failover')];
  return { installer, ran, needs };
}

test('nothing is installed or said when every package is there', () => {
  const m = machine(['postgresql-15', 'etcd-server', 'patroni'], true);
  const said: string[] = [];
  ensureDebianPackages(m.needs, (l) => said.push(l), m.installer);
  assert.deepEqual([said, m.ran], [[], []]);
});

test('not root: the error names what is missing, why, and the exact command, and nothing runs', () => {
  const m = machine(['etcd-server'], false);
  assert.throws(
    () => ensureDebianPackages(m.needs, () => {}, m.installer),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.message, 'missing Debian packages: postgresql-15 (the lab database), patroni (failover)');
      assert.equal(e.next, 'as root: apt-get update && apt-get install -y postgresql-15 patroni');
      assert.equal(e.untouched, 'nothing');
      return true;
    },
  );
  assert.deepEqual(m.ran, []);
});

test('root: only the missing packages are installed, after one apt-get update, saying so', () => {
  const m = machine(['etcd-server'], true);
  const said: string[] = [];
  ensureDebianPackages(m.needs, (l) => said.push(l), m.installer);
  assert.deepEqual(said, ['installing postgresql-15 (the lab database), patroni (failover)']);
  assert.deepEqual(m.ran, ['apt-get update -qq', 'apt-get install -y -qq postgresql-15 patroni']);
});

test('root: a failing apt-get is a UserError that still names the command', () => {
  const m = machine([], true, false);
  assert.throws(() => ensureDebianPackages(m.needs, () => {}, m.installer), {
    name: 'UserError',
    message: 'apt-get update -qq failed (exit 100)',
    next: 'as root: apt-get update && apt-get install -y postgresql-15 etcd-server patroni',
  });
  assert.deepEqual(m.ran, ['apt-get update -qq']);
});

test('root: a package that installs but leaves its file missing is reported', () => {
  const m = machine([], true);
  const needs = [...m.needs, { package: 'chromium', present: () => false, why: 'the browser' }];
  assert.throws(() => ensureDebianPackages(needs, () => {}, m.installer), {
    message: 'installed postgresql-15 etcd-server patroni chromium, but still missing: chromium',
  });
});
