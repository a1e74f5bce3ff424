/**
 * The lab's two regions as a RegionAdapter: the primary region lost in one SIGKILL sweep (its Azurite with it),
 * the secondary's database restored from the secondary account alone, the secondary's compute started against
 * it, and the global front switched. Each step is the lab's own (lib/lab/regions/*) and idempotent, so the
 * region-loss rollback and `drill recover` can call them again from whatever state a run left.
 */
import { isRunning } from '../../adapters/postgres/cluster.ts';
import type { RegionAdapter, RegionName, RegionView } from '../../adapters/types.ts';
import { labUp } from '../../lab/lifecycle.ts';
import { labPaths } from '../../lab/paths.ts';
import { LAB_DB } from '../../lab/postgres/status.ts';
import { readSecondaryDb } from '../../lab/regions/contract.ts';
import { globalFrontStatus, globalFrontUrl, switchGlobalFront } from '../../lab/regions/global-front.ts';
import { failbackToPrimary, failbackUnderway } from '../../lab/regions/failback.ts';
import { losePrimaryRegion, primaryRegionParts } from '../../lab/regions/region-loss.ts';
import { secondaryComputeStatus, startSecondaryCompute, stopSecondaryCompute } from '../../lab/regions/secondary-compute.ts';
import { restoreSecondaryDb, secondaryPgPaths, stopSecondaryRestore } from '../../lab/regions/secondary-restore.ts';
import { secondaryAzuriteStatus } from '../../lab/regions/secondary.ts';
import { readConfig } from '../../lab/state.ts';

/** One request through the global front, as a user makes it: the region that answered, or why none did. */
async function askThroughFront(url: string, signal: AbortSignal): Promise<{ status: number | null; region: string | null; why: string }> {
  try {
    const r = await fetch(`${url}/orders?limit=1`, { signal: AbortSignal.any([signal, AbortSignal.timeout(3000)]) });
    await r.arrayBuffer();
    return { status: r.status, region: r.headers.get('x-drill-region'), why: `GET /orders answered ${r.status}` };
  } catch (e) {
    return { status: null, region: null, why: `GET /orders through the global front failed: ${(e as Error).message}` };
  }
}

export async function regionView(dir: string): Promise<RegionView> {
  const [gf, parts, compute, db] = await Promise.all([
    globalFrontStatus(dir),
    primaryRegionParts(dir),
    secondaryComputeStatus(dir),
    readSecondaryDb(dir).catch(() => null),
  ]);
  const secondaryRunning: string[] = [];
  if (compute.daemonPid !== null) secondaryRunning.push(`compute (daemon pid ${compute.daemonPid}, ${compute.ready} replicas ready)`);
  // The data directory, not db.json: a restore cut short runs a server db.json does not name yet.
  if (await isRunning(secondaryPgPaths(dir).dataDir))
    secondaryRunning.push(`database${db ? ` on port ${db.port}` : ' (a restore not finished)'}`);
  return {
    active: gf?.active ?? null,
    globalFront: { alive: gf?.alive === true, url: gf ? globalFrontUrl(gf.port) : null, switchedAt: gf?.switchedAt ?? null },
    primaryRunning: parts.filter((x) => x.alive).map((x) => x.part),
    secondaryRunning,
    secondaryDb: db ? { port: db.port, restoredAt: db.restoredAt, backupFolder: db.backupFolder, reachedLsn: db.reachedLsn } : null,
    secondaryFrontPort: compute.up ? compute.frontPort : null,
    failbackUnderway: failbackUnderway(dir),
  };
}

export function createLabRegion(dir: string): RegionAdapter {
  return {
    where: `lab:${dir} (two regions behind the global front)`,
    async preflight() {
      const problems: string[] = [];
      const config = await readConfig(labPaths(dir).config);
      if (config?.regions !== 2)
        problems.push(
          `the lab in ${dir} runs one region: a region loss needs target.regions: 2 (the lab is then brought up with its secondary)`,
        );
      else {
        if (!(await secondaryAzuriteStatus(dir)).up)
          problems.push(
            "the secondary region's storage (its Azurite) does not answer: there is nothing to restore from (`drill lab up` starts it)",
          );
        const gf = await globalFrontStatus(dir);
        if (!gf?.alive) problems.push('the global front is not running: the load could not be switched (`drill lab up` starts it)');
        else if (gf.active !== 'primary')
          problems.push(
            `the lab already serves from its ${gf.active} region (since ${gf.switchedAt ?? 'an unrecorded time'}): \`drill lab down\` then \`drill lab up\` starts it over in the primary`,
          );
      }
      return { problems };
    },
    view: () => regionView(dir),
    losePrimary: () => losePrimaryRegion(dir),
    async restoreSecondaryDb(o) {
      const r = await restoreSecondaryDb(dir, o);
      return {
        ok: r.ok,
        problem: r.problem,
        missing: r.missing,
        db: r.db ? { host: '127.0.0.1', port: r.db.port, database: LAB_DB.database, user: LAB_DB.superuser } : null,
        backupFolder: r.backupFolder,
        reachedLsn: r.reachedLsn,
        timings: r.timings,
      };
    },
    async startSecondaryCompute(o) {
      const r = await startSecondaryCompute(dir, o);
      return { frontPort: r.frontPort, replicas: r.replicas };
    },
    switchFront: (region, frontPort, signal) => switchGlobalFront(dir, region, frontPort, signal),
    async servesFromOneRegion(signal) {
      const v = await regionView(dir);
      if (!v.globalFront.alive || !v.globalFront.url || !v.active)
        return { ok: false, region: null, detail: 'the global front is not running: the load reaches no region' };
      const other: RegionName = v.active === 'primary' ? 'secondary' : 'primary';
      const asked = await askThroughFront(v.globalFront.url, signal);
      const leftovers = other === 'primary' ? v.primaryRunning : v.secondaryRunning;
      const problems: string[] = [];
      if (asked.status !== 200) problems.push(`the ${v.active} region does not serve through the global front: ${asked.why}`);
      else if (asked.region !== v.active) problems.push(`the global front says ${v.active} but ${asked.region ?? 'no region'} answered`);
      if (leftovers.length > 0) problems.push(`the ${other} region still runs ${leftovers.join(', ')}`);
      if (problems.length > 0) return { ok: false, region: v.active, detail: problems.join('; ') };
      const since = v.active === 'secondary' ? ` since ${v.globalFront.switchedAt ?? 'an unrecorded time'}` : '';
      return {
        ok: true,
        region: v.active,
        detail: `the lab serves from its ${v.active} region${since} through the global front (GET /orders 200 from ${v.active}); nothing of the ${other} region runs`,
      };
    },
    async restorePrimaryRegion(o) {
      const say = o.log ?? (() => {});
      const stopped = await stopSecondaryCompute(dir);
      const db = await stopSecondaryRestore(dir);
      if (stopped.length > 0 || db)
        say(
          `stopped in the secondary region: ${[...stopped.map((s) => `${s.name} (pid ${s.pid})`), ...(db ? ['its database'] : [])].join(', ')}`,
        );
      o.signal.throwIfAborted();
      const config = await readConfig(labPaths(dir).config);
      const info = await labUp({ dir, replicas: config?.replicas, say });
      return `the primary region brought back on its own data behind the global front (${info.serviceUrl})${stopped.length > 0 || db ? '; what had started in the secondary was stopped' : ''}`;
    },
    failBack: (o) => failbackToPrimary(dir, o),
  };
}
