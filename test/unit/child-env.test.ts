import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { childEnv, readSecretsFile, serverUserEnv, writeSecretsFile } from '../../lib/util/child-env.ts';

test('a child gets what a program needs to run, the names its caller passes, and nothing else of ours', () => {
  process.env.DRILL_TEST_CANARY = 'canary-value-1234';
  process.env.DRILL_TEST_PASSED = 'passed-value';
  try {
    const env = childEnv({ pass: ['DRILL_TEST_PASSED', 'DRILL_TEST_UNSET'], set: { MADE: 'here', SKIPPED: undefined } });
    assert.equal(env.DRILL_TEST_CANARY, undefined);
    assert.equal(env.DRILL_TEST_PASSED, 'passed-value');
    assert.equal(env.MADE, 'here');
    assert.ok(!('DRILL_TEST_UNSET' in env) && !('SKIPPED' in env));
    assert.equal(env.PATH, process.env.PATH);
    assert.ok(Object.values(env).every((v) => !v.includes('canary-value-1234')));
    // A server binary running as postgres gets none of ours, not even PATH or HOME.
    assert.deepEqual(Object.keys(serverUserEnv({ HOME: '/x' })).sort(), ['HOME', 'LC_ALL', 'PATH']);
  } finally {
    delete process.env.DRILL_TEST_CANARY;
    delete process.env.DRILL_TEST_PASSED;
  }
});

test('handed-over secrets: a 0600 file in a 0700 folder, read back exactly, sourced by bash alike, gone after remove()', () => {
  const values = {
    PLAIN: 'DefaultEndpointsProtocol=http;AccountKey=abc+/==;',
    QUOTED: `it's "x" $HOME \`id\``,
    LINES: 'a\nb\n',
    EMPTY: '',
  };
  const f = writeSecretsFile(values);
  try {
    assert.equal(statSync(f.path).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(f.path)).mode & 0o777, 0o700);
    assert.deepEqual(readSecretsFile(f.path), values);
    // The format is shell: a runbook command can source it and sees the same values, nothing expanded.
    const seen = execFileSync('bash', ['-c', `set -a; . "$1"; printf '%s\\0' "$PLAIN" "$QUOTED" "$LINES" "$EMPTY"`, 'x', f.path], {
      env: { PATH: '/usr/bin:/bin' },
      encoding: 'utf8',
    });
    assert.deepEqual(seen.split('\0').slice(0, 4), [values.PLAIN, values.QUOTED, values.LINES, values.EMPTY]);
  } finally {
    f.remove();
  }
  assert.equal(existsSync(dirname(f.path)), false);
});

test('a secrets file that is not ours is refused, naming the line', () => {
  const f = writeSecretsFile({ A: 'one' });
  try {
    writeFileSync(f.path, "A='one'\nexport B=two\n");
    assert.throws(() => readSecretsFile(f.path), /not NAME='value' at line 2/);
  } finally {
    f.remove();
  }
});
