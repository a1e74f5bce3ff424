import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLabLiveRestore } from '../../lib/targets/lab/live-restore.ts';

test('a Patroni lab: preflight refuses the live restore and says why, restoreLive touches nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'drill-live-restore-patroni-'));
  try {
    const config = {
      version: 1,
      createdAt: new Date().toISOString(),
      replicas: 1,
      primary: 'n1',
      nodes: { n1: { port: 1 }, n2: { port: 2 } },
      provider: 'patroni',
    };
    await writeFile(join(dir, 'lab.json'), JSON.stringify(config));
    const live = createLabLiveRestore(dir, async () => 'http://127.0.0.1:1');
    const signal = new AbortController().signal;
    const f = await live.preflight({ signal });
    assert.match(f.problems.join('\n'), /this lab runs under Patroni: use a pg-promote lab/);
    assert.equal(f.backup, null);
    const o = await live.restoreLive({ runId: 'r1', target: 'latest', signal });
    assert.equal(o.ok, false);
    assert.equal(o.replaced, false);
    assert.match(o.problem ?? '', /Patroni/);
    assert.equal(existsSync(live.quarantineOf('r1')), false);
    assert.equal(live.quarantineOf('r1'), join(dir, 'quarantine', 'r1'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('no lab: preflight says to bring it up', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'drill-live-restore-nolab-'));
  try {
    const f = await createLabLiveRestore(dir, async () => '').preflight({ table: 'orders', signal: new AbortController().signal });
    assert.match(f.problems.join('\n'), /not set up \(no lab.json\): run `drill lab up`/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
