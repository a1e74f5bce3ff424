import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closest, distance, show, unknownKeyMessage } from '../../lib/config/messages.ts';
import { formatPath } from '../../lib/config/yaml-source.ts';
import { parsePath } from '../../lib/config/scenarios.ts';

test('edit distance', () => {
  assert.equal(distance('scenaros', 'scenarios'), 1);
  assert.equal(distance('', 'abc'), 3);
  assert.equal(distance('kitten', 'sitting'), 3);
});

test('closest suggests near misses and refuses wild guesses', () => {
  assert.equal(closest('scenaros', ['name', 'scenarios', 'stopConditions']), 'scenarios');
  assert.equal(closest('critcal', ['critical', 'important', 'standard']), 'critical');
  assert.equal(closest('GETT', ['GET', 'POST']), 'GET');
  assert.equal(closest('get', ['GET', 'POST']), 'GET');
  assert.equal(closest('stop', ['stopConditions', 'scenarios']), 'stopConditions');
  assert.equal(closest('disk-fill', ['exec', 'pod-kill']), undefined);
  assert.equal(closest('anything', []), undefined);
});

test('unknown key messages suggest the closest key and list the allowed ones', () => {
  assert.equal(unknownKeyMessage('timout', ['rate', 'timeout']), 'unknown key "timout"; did you mean "timeout"? allowed: rate, timeout');
  assert.equal(unknownKeyMessage('zzz', ['rate', 'timeout']), 'unknown key "zzz"; allowed: rate, timeout');
  assert.equal(unknownKeyMessage('x', []), 'unknown key "x"; this mapping takes no keys');
});

test('values are shown as the YAML author sees them', () => {
  assert.equal(show('10'), '"10"');
  assert.equal(show(10), '10');
  assert.equal(show(null), 'an empty value');
  assert.equal(show([1]), 'a list');
  assert.equal(show({ a: 1 }), 'a mapping');
  assert.equal(show('x'.repeat(100)).length, 62);
});

test('paths are dotted with indices, and parse back', () => {
  assert.equal(formatPath(['scenarios', 0, 'params', 'count']), 'scenarios[0].params.count');
  assert.equal(formatPath(['load', 'requests', 1, 'headers', 'X-Id']), 'load.requests[1].headers.X-Id');
  assert.equal(formatPath(['headers', 'a b']), 'headers["a b"]');
  assert.equal(formatPath([]), '');
  assert.deepEqual(parsePath('count'), ['count']);
  assert.deepEqual(parsePath('steps[2].command'), ['steps', 2, 'command']);
});
