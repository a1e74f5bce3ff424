import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recoveryCheckHeldFrom } from '../../lib/engine/phases/observe.ts';

test('a passing recovery check counts from the instant its evidence dates, kept between the fault and now', () => {
  assert.equal(recoveryCheckHeldFrom(undefined, 1000, 9000), 9000, 'undated: from the poll that saw it');
  assert.equal(recoveryCheckHeldFrom(4200, 1000, 9000), 4200, 'dated: from the first write after the repoint');
  assert.equal(recoveryCheckHeldFrom(500, 1000, 9000), 1000, 'never before the fault');
  assert.equal(recoveryCheckHeldFrom(12_000, 1000, 9000), 9000, 'never after it was seen');
  assert.equal(recoveryCheckHeldFrom(Number.NaN, 1000, 9000), 9000);
});
