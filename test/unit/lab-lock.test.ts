import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withLabLock } from '../../lib/lab/lock.ts';
import { makeTempDir } from '../support/tmp.ts';

test('an empty lock left by a holder that died between create and write is taken over after 5 s, a fresh one is waited for', async () => {
  const tmp = await makeTempDir('lock');
  try {
    const lock = join(tmp.path, 'lock');
    await writeFile(lock, '');
    const old = new Date(Date.now() - 10_000);
    await utimes(lock, old, old);
    const t0 = performance.now();
    assert.equal(await withLabLock(lock, async () => 'ran'), 'ran');
    assert.ok(performance.now() - t0 < 2000, 'the stale empty lock did not make it wait');
    assert.equal(existsSync(lock), false);

    await writeFile(lock, '');
    await assert.rejects(
      withLabLock(lock, async () => 'ran', 300),
      /locked by pid \?/,
      'an empty lock just written belongs to a holder about to write its PID',
    );
  } finally {
    await tmp.remove();
  }
});
