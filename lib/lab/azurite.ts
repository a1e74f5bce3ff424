/**
 * Azurite's Blob service as a lab component: a detached process (it outlives the `drill lab up` that
 * started it, like the lab's other parts), data and log in `<labDir>/azurite/`, its PID and port in
 * `<labDir>/azurite.json` so any later process can stop it. `labUp` starts it beside PostgreSQL and the
 * daemon, `labDown` stops it by PID, `labStatus` reports it.
 *
 * Imports no storage SDK (it costs 0.7 s of CPU to load): lab up only spawns and polls.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { azuriteAnswers, azuriteArgs, azuriteBlobEntry, azuriteEndpoint, type AzuriteAccount } from '../adapters/blob/azurite.ts';
import { childEnv } from '../util/child-env.ts';
import { isProcessUnder, terminate, waitGone } from '../util/proc.ts';
import { freePort } from './ports.ts';
import { readJson } from './state.ts';
import { writeJsonAtomic } from '../util/atomic-file.ts';
import type { LabBlobSource } from '../adapters/postgres/backup/resolve.ts';
import type { LabAzurite, LabAzuriteView } from './types.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** The container lab drills and `drill backup` on the lab use when none is named. */
export const LAB_BACKUP_CONTAINER = 'lab-backups';
/** The service's order attachments (the file-storage data class). */
export const LAB_FILES_CONTAINER = 'lab-files';
/** Segments of the replicas' request logs, as the log shipper uploads them (the logs data class). */
export const LAB_LOGS_CONTAINER = 'lab-logs';

interface State {
  pid: number;
  port: number;
  dir: string;
}

export const labAzuriteStateFile = (labDir: string) => join(labDir, 'azurite.json');

/**
 * One Azurite of the lab: the primary region's (the dev account) or the secondary region's (its own account).
 * Each has its own state file, data folder and port; the code that starts, checks and stops them is the same.
 */
export interface AzuriteInstance {
  /** How messages name it: "the lab's Azurite". */
  label: string;
  stateFile: string;
  /** Its --location: data and log. */
  dir: string;
  /** The account it serves; absent: Azurite's dev account. */
  account?: () => AzuriteAccount;
}

export const primaryAzurite = (labDir: string): AzuriteInstance => ({
  label: "the lab's Azurite",
  stateFile: labAzuriteStateFile(labDir),
  dir: join(labDir, 'azurite'),
});

function describe(inst: AzuriteInstance, pid: number, port: number): LabAzurite {
  return { pid, port, ...azuriteEndpoint(port, inst.account?.()) };
}

export function labAzuriteView(a: Pick<LabAzurite, 'pid' | 'port' | 'blobEndpoint'>): LabAzuriteView {
  return { pid: a.pid, port: a.port, url: a.blobEndpoint, container: LAB_BACKUP_CONTAINER };
}

function logTail(dir: string): string {
  try {
    return readFileSync(join(dir, 'azurite.log'), 'utf8').slice(-600).trim();
  } catch {
    return '';
  }
}

/**
 * Azurite takes about 1.7 s of CPU to start (it loads its whole SDK stack). Started at low priority it
 * uses what the lab's PostgreSQL start, daemon and warm-up leave idle instead of taking a core from them.
 */
const BACKGROUND_NICE = 10;

function nice(pid: number, value: number): void {
  try {
    setPriority(pid, value);
  } catch {
    // Lowering the nice value back needs root (or CAP_SYS_NICE); a lab run as a user keeps it low.
  }
}

/** One spawn on one port: resolves when it answers, null when it exited (the port was taken meanwhile). */
async function spawnOnce(inst: AzuriteInstance, deadline: number, background: boolean): Promise<LabAzurite | null> {
  const { dir, label } = inst;
  const port = await freePort();
  const log = openSync(join(dir, 'azurite.log'), 'a');
  const account = inst.account?.();
  const child = spawn(process.execPath, [azuriteBlobEntry(), ...azuriteArgs(dir, port)], {
    detached: true,
    stdio: ['ignore', log, log],
    // Azurite knows its dev account's key itself; another account is named to it the one way it reads one.
    env: childEnv({ set: account ? { AZURITE_ACCOUNTS: `${account.name}:${account.key}` } : {} }),
    cwd: dir,
  });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error('Azurite did not start (no pid)');
  child.unref();
  if (background) nice(pid, BACKGROUND_NICE);
  // Recorded before it is ready: a start that times out still leaves the PID for stopLabAzurite.
  writeJsonAtomic(inst.stateFile, { pid, port, dir } satisfies State);
  while (!(await azuriteAnswers(port))) {
    if (!(await isProcessUnder(pid, dir))) {
      await rm(inst.stateFile, { force: true });
      if (/EADDRINUSE/.test(logTail(dir))) return null;
      throw new Error(`${label} exited during start-up: ${logTail(dir)}`);
    }
    if (Date.now() > deadline) {
      await stopAzuriteInstance(inst);
      throw new Error(`${label} did not answer on 127.0.0.1:${port} in time: ${logTail(dir)}`);
    }
    await sleep(50);
  }
  // Serving at normal priority: a restore drill's transfer speed must not depend on how it was started.
  if (background) nice(pid, 0);
  return describe(inst, pid, port);
}

/**
 * Starts the lab's Azurite, or returns the one already running for this lab. A recorded one that is
 * alive but does not answer (hung, or half started by a crashed `lab up`) is stopped first.
 */
export function startLabAzurite(
  labDir: string,
  options: { readyTimeoutMs?: number; background?: boolean } = {},
): Promise<LabAzurite & { alreadyRunning: boolean }> {
  return startAzuriteInstance(primaryAzurite(labDir), options);
}

export async function startAzuriteInstance(
  inst: AzuriteInstance,
  options: { readyTimeoutMs?: number; background?: boolean } = {},
): Promise<LabAzurite & { alreadyRunning: boolean }> {
  const running = await azuriteInstanceStatus(inst);
  if (running.up && running.azurite) return { ...running.azurite, alreadyRunning: true };
  await stopAzuriteInstance(inst);
  await mkdir(inst.dir, { recursive: true });
  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  // Between freePort closing its probe and Azurite binding, another process may take the port.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const a = await spawnOnce(inst, deadline, options.background ?? false);
    if (a) return { ...a, alreadyRunning: false };
  }
  throw new Error(`${inst.label} could not bind a free port in 3 attempts: ${logTail(inst.dir)}`);
}

export type AzuriteStatus = { up: boolean; alive: boolean; azurite: LabAzurite | null };

export const labAzuriteStatus = (labDir: string): Promise<AzuriteStatus> => azuriteInstanceStatus(primaryAzurite(labDir));

/** `alive`: its PID is still Azurite for this lab (its --location), so a reused PID is never taken for it. */
export async function azuriteInstanceStatus(inst: AzuriteInstance): Promise<AzuriteStatus> {
  const s = await readJson<State>(inst.stateFile);
  if (!s) return { up: false, alive: false, azurite: null };
  const alive = await isProcessUnder(s.pid, s.dir);
  const up = alive && (await azuriteAnswers(s.port));
  return { up, alive, azurite: describe(inst, s.pid, s.port) };
}

export const stopLabAzurite = (labDir: string): Promise<number | null> => stopAzuriteInstance(primaryAzurite(labDir));

/**
 * SIGTERM (Azurite saves its metadata on it), SIGKILL after 5 s; then forgets the state. Blob data stays
 * in the lab dir. Returns the PID it stopped, null when nothing of ours ran.
 */
export async function stopAzuriteInstance(inst: AzuriteInstance): Promise<number | null> {
  const s = await readJson<State>(inst.stateFile);
  if (!s) return null;
  let stopped: number | null = null;
  if (await isProcessUnder(s.pid, s.dir)) {
    await terminate(s.pid, 5000);
    await waitGone(s.pid, 1000);
    stopped = s.pid;
  }
  await rm(inst.stateFile, { force: true });
  return stopped;
}

/**
 * The environment the Blob adapter reads, pointing at this lab's Azurite when it answers; null otherwise.
 * In-process only: a child would see the key in its environment, so it is never passed on.
 */
export async function labBlobEnv(labDir: string): Promise<{ env: Record<string, string>; azurite: LabAzuriteView } | null> {
  const s = await labAzuriteStatus(labDir);
  if (!s.up || !s.azurite) return null;
  return { env: { AZURE_STORAGE_CONNECTION_STRING: s.azurite.connectionString }, azurite: labAzuriteView(s.azurite) };
}

/** The lab's Azurite as the backup resolver sees it: where it is, what container, how to reach it. */
export function labBlobSource(labDir: string): LabBlobSource {
  return { dir: labDir, container: LAB_BACKUP_CONTAINER, blobEnv: () => labBlobEnv(labDir) };
}
