import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { labAzuriteStatus, startLabAzurite, stopLabAzurite } from '../../lib/lab/azurite.ts';
import { makeTempDir } from '../support/tmp.ts';
import { alive } from '../support/cli.ts';

test('the lab Azurite starts detached with its data in the lab dir, is found again by its state file, and stops by PID', {
  timeout: 60_000,
}, async () => {
  const tmp = await makeTempDir('lab-azurite');
  try {
    const a = await startLabAzurite(tmp.path);
    try {
      assert.equal(a.alreadyRunning, false);
      assert.ok(alive(a.pid));
      const again = await startLabAzurite(tmp.path);
      assert.equal(again.alreadyRunning, true);
      assert.equal(again.pid, a.pid);
      const svc = BlobServiceClient.fromConnectionString(a.connectionString);
      await svc.getContainerClient('lab-check').create();
      await svc.getContainerClient('lab-check').getBlockBlobClient('x').uploadData(Buffer.from('hello'));
      assert.equal((await svc.getContainerClient('lab-check').getBlobClient('x').downloadToBuffer()).toString(), 'hello');
      assert.equal((await labAzuriteStatus(tmp.path)).up, true);
    } finally {
      await stopLabAzurite(tmp.path);
    }
    assert.equal(alive(a.pid), false);
    assert.deepEqual(await labAzuriteStatus(tmp.path), { up: false, alive: false, azurite: null });
    assert.ok(existsSync(join(tmp.path, 'azurite')), 'blob data stays in the lab dir');
  } finally {
    await tmp.remove();
  }
});
