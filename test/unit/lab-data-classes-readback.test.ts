import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBackLabClasses } from '../../lib/lab/data-classes.ts';

test('a lab whose Azurite does not answer: both classes carry the reason, neither is guessed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'drill-no-azurite-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = [{ seq: 0, name: 'orders/a/attachment', sha256: 'x', sentMs: 0, ackMs: 5, outcome: 'ok' as const }];
  const logs = [{ seq: 0, token: 'a', replica: '', sentMs: 0, ackMs: 5, outcome: 'ok' as const }];
  const got = await readBackLabClasses(dir, { files, logs }, 100);
  assert.deepEqual(
    got.map((c) => [c.dataClass, 'reason' in c ? c.reason : null]),
    [
      ['file-storage', `attachments could not be read back: the lab's Azurite in ${dir} is not answering (start it with \`drill lab up\`)`],
      [
        'logs',
        `shipped log segments could not be read back: the lab's Azurite in ${dir} is not answering (start it with \`drill lab up\`)`,
      ],
    ],
  );
});
