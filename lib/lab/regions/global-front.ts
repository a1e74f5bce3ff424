/**
 * The global front seen from outside its process (daemon/global-front.ts): start, stop, status and the switch
 * a region-loss runbook calls. Its port is chosen once per lab, below the ephemeral range, and kept in
 * lab.json, so the load's URL stays the same across a region loss, a failback and a restart of the front.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../../errors.ts';
import { writeJsonAtomic } from '../../util/atomic-file.ts';
import { isProcessUnder, terminate } from '../../util/proc.ts';
import { requestJson } from '../daemon/http-json.ts';
import { entryArgv, labPaths } from '../paths.ts';
import { spawnDetached } from '../spawn-detached.ts';
import { freeStablePort } from '../ports.ts';
import { readConfig, removeFile } from '../state.ts';
import { type GlobalFrontState, type RegionName, readGlobalFront, regionPaths } from './contract.ts';

export type GlobalFrontStatus = GlobalFrontState & { alive: boolean };

/** The global front as its state file says, `alive` by PID (checked in /proc against the lab dir); null when none was started. */
export async function globalFrontStatus(labDir: string): Promise<GlobalFrontStatus | null> {
  const s = await readGlobalFront(labDir);
  if (!s) return null;
  return { ...s, alive: await isProcessUnder(s.pid, resolve(labDir)) };
}

export const globalFrontUrl = (port: number) => `http://127.0.0.1:${port}`;

/**
 * Sends new requests to `region`'s front on `upstreamPort`; requests in flight on the old region finish there.
 * Resolves once the front has switched (its state file says so before it answers).
 */
export async function switchGlobalFront(
  labDir: string,
  region: RegionName,
  upstreamPort: number,
  signal?: AbortSignal,
): Promise<{ switchedAt: string }> {
  const s = await globalFrontStatus(labDir);
  if (!s?.alive)
    throw new UserError(
      `the lab's global front is not running${s ? ` (pid ${s.pid} is gone)` : ''}: the load cannot be switched to the ${region} region`,
      {
        untouched: 'the regions: nothing was switched',
        next: '`drill lab up` starts the global front again (a lab serving from the secondary keeps serving from it)',
      },
    );
  const r = await requestJson<{ switchedAt: string }>(`http://127.0.0.1:${s.controlPort}/active`, {
    method: 'PUT',
    body: { region, upstreamPort },
    timeoutMs: 5000,
    signal,
  });
  return { switchedAt: r.switchedAt };
}

/**
 * Starts the global front on the lab's stable port, or returns the one running. Its state file survives it:
 * a front started again on a lab whose state says `secondary` is the caller's to point (labUp does).
 */
export async function startGlobalFront(
  labDir: string,
  o: { region: RegionName; upstreamPort: number | null; timeoutMs?: number },
): Promise<GlobalFrontStatus & { alreadyRunning: boolean }> {
  const dir = resolve(labDir);
  const running = await globalFrontStatus(dir);
  if (running?.alive) return { ...running, alreadyRunning: true };
  const p = labPaths(dir);
  const config = await readConfig(p.config);
  if (!config) throw new Error(`${p.config} is missing: the global front belongs to a lab started with labUp`);
  let port = config.globalFrontPort;
  if (port === undefined) {
    port = await freeStablePort();
    writeJsonAtomic(p.config, { ...config, globalFrontPort: port });
  }
  const logFile = regionPaths(dir).globalFrontLog;
  mkdirSync(p.logs, { recursive: true });
  const argv = [...entryArgv('global-front.ts'), '--lab', dir, '--port', String(port), '--region', o.region];
  if (o.upstreamPort !== null) argv.push('--upstream', String(o.upstreamPort));
  if (running?.active === o.region && running.switchedAt) argv.push('--switched-at', running.switchedAt);
  await spawnDetached({ label: `the global front (port ${port})`, argv, cwd: dir, logFile, timeoutMs: o.timeoutMs ?? 20_000 });
  const s = await globalFrontStatus(dir);
  if (!s) throw new Error(`the global front started but wrote no state (${regionPaths(dir).globalFront})`);
  return { ...s, alreadyRunning: false };
}

/** Stops the global front by its verified PID and forgets its state; returns the PID stopped, null when none ran. */
export async function stopGlobalFront(labDir: string): Promise<number | null> {
  const dir = resolve(labDir);
  const s = await readGlobalFront(dir);
  if (!s) return null;
  let stopped: number | null = null;
  if (await isProcessUnder(s.pid, dir)) {
    await terminate(s.pid, 3000);
    stopped = s.pid;
  }
  await removeFile(regionPaths(dir).globalFront);
  return stopped;
}
