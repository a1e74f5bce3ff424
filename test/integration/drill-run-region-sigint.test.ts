// SIGINT at each step of the region-loss runbook (failback: true), through `drill run` on the real two-region lab:
// the harness sends itself SIGINT right after the step's intent is journaled (DRILL_CRASH_SIGNAL=SIGINT, an
// operator's Ctrl-C at that exact moment). Every point must end with exit 4, the lab serving from one healthy
// region through the global front, nothing of the other region running, and the record saying which region.
// (SIGINT mid-restore and mid-failback are in drill-run-region-loss and drill-run-region-failback; SIGKILL at every
// journal line plus `drill recover` is the crash matrix's region-loss row.)
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning } from '../../lib/adapters/postgres/cluster.ts';
import { stopLabAzurite } from '../../lib/lab/azurite.ts';
import { labDown } from '../../lib/lab/index.ts';
import { globalFrontStatus } from '../../lib/lab/regions/global-front.ts';
import { primaryRegionParts } from '../../lib/lab/regions/region-loss.ts';
import { secondaryComputeStatus } from '../../lib/lab/regions/secondary-compute.ts';
import { secondaryPgPaths } from '../../lib/lab/regions/secondary-restore.ts';
import { drillCli, runFolders } from '../support/cli.ts';
import { forgetConfiguredBlobStorage } from '../support/lab.ts';
import { keptLabCopy } from '../support/lab-copy.ts';
import { type RegionDrill, upRegionLabInTurn, writeRegionDrill } from '../support/region-drill.ts';
import { scratchDir } from '../support/tmp.ts';

forgetConfiguredBlobStorage();
const dirs: string[] = [];
const labsUp: string[] = [];
after(async () => {
  for (const dir of labsUp) {
    await stopLabAzurite(dir).catch(() => undefined);
    await labDown({ dir }).catch(() => undefined);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const DRILL: RegionDrill = { name: 'sigint', failback: true, rate: 30, attachments: false, baselineS: 3, cooldownS: 1 };

/** Which region answers through the global front, with nothing of the other running; fails otherwise. */
async function servingRegion(lab: string): Promise<'primary' | 'secondary'> {
  const gf = (await globalFrontStatus(lab))!;
  const res = await fetch(`http://127.0.0.1:${gf.port}/orders?limit=1`);
  await res.arrayBuffer();
  assert.equal(res.status, 200, 'the global front serves');
  assert.equal(res.headers.get('x-drill-region'), gf.active, 'the region the front names answers');
  if (gf.active === 'secondary') {
    const running = (await primaryRegionParts(lab)).filter((x) => x.alive).map((x) => `${x.part} (${x.pid})`);
    assert.deepEqual(running, [], 'nothing of the primary region runs');
  } else {
    assert.equal((await secondaryComputeStatus(lab)).daemonPid, null, 'no secondary compute');
    assert.equal(await isRunning(secondaryPgPaths(lab).dataDir), false, 'no secondary database');
  }
  return gf.active;
}

// One folder the four tests take in turn, each from the same kept lab (upRegionLabInTurn).
const lab = scratchDir('lab-rl-int');
dirs.push(lab, keptLabCopy(lab));
labsUp.push(lab);

describe('SIGINT at each step of the region-loss runbook', { timeout: 900_000 }, () => {
  for (const [step, ends] of [
    ['lose the primary region', 'secondary'],
    ['start the service in the secondary', 'secondary'],
    ['switch the global front', 'secondary'],
    ['fail back to the primary region', 'secondary'],
  ] as const) {
    test(`SIGINT once "${step}" is journaled: exit 4, one healthy region (${ends}), the record says which`, async () => {
      const results = scratchDir('results-rl-int');
      dirs.push(results);
      const drill = join(results, 'drill.yaml');
      writeRegionDrill(drill, DRILL);
      await upRegionLabInTurn(lab, DRILL);
      const r = await drillCli(['run', drill, '--results', results], {
        DRILL_LAB_DIR: lab,
        DRILL_CRASH_AFTER_EVENT: `action.intent:${step}`,
        DRILL_CRASH_SIGNAL: 'SIGINT',
      }).done;
      assert.equal(r.code, 4, r.stdout + r.stderr);
      const [runDir] = runFolders(results);
      const rec = JSON.parse(readFileSync(join(runDir!, 'run.json'), 'utf8'));
      assert.equal(rec.abort?.kind, 'signal');
      assert.equal(await servingRegion(lab), ends);
      const rolled = (rec.actions as { name: string; rollback?: { status: string; detail?: string } }[]).filter((a) => a.rollback);
      // Actions that never ran have nothing to roll back (not-run), those that heal themselves none; none failed.
      assert.ok(
        rolled.every((a) => ['done', 'none', 'not-run'].includes(a.rollback!.status)),
        JSON.stringify(
          rolled.map((a) => [a.name, a.rollback]),
          null,
          1,
        ),
      );
      const lose = rolled.find((a) => a.name === 'lose the primary region')!;
      assert.equal(lose.rollback!.status, 'done');
      assert.match(lose.rollback!.detail ?? '', new RegExp(`serves from its ${ends} region|runbook finished in the ${ends}`));
    });
  }
});
