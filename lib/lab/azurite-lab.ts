/**
 * Azurite's Blob service as a lab component: a detached process (it outlives the `drill lab up` that
 * started it, like the lab's other parts), data and log in `<labDir>/azurite/`, its PID and port in
 * `<labDir>/azurite.json` so any later process can stop it. Self-contained: the lab lifecycle calls
 * startLabAzurite / stopLabAzurite / labAzuriteStatus and records nothing else.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY } from '../adapters/blob/index.ts';
import { isProcessUnder, terminate } from '../adapters/postgres/proc.ts';
import { freePort } from './ports.ts';
import { readJson, writeJsonAtomic } from './state.ts';

export interface LabAzurite {
  pid: number;
  port: number;
  /** `http://127.0.0.1:PORT/devstoreaccount1` */
  blobEndpoint: string;
  /** Azurite's documented development account; set it as AZURE_STORAGE_CONNECTION_STRING for drills on the lab. */
  connectionString: string;
}

const stateFile = (labDir: string) => join(labDir, 'azurite.json');
const dataDir = (labDir: string) => join(labDir, 'azurite');

function entry(): string {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('azurite/package.json');
  const bin = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin?: Record<string, string> }).bin?.['azurite-blob'];
  if (!bin) throw new Error('the azurite package has no azurite-blob bin');
  return join(dirname(pkgPath), bin);
}

function describe(pid: number, port: number): LabAzurite {
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    pid,
    port,
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: `/${AZURITE_ACCOUNT}?comp=list`, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** Starts the lab's Azurite, or returns the one already running for this lab. */
export async function startLabAzurite(labDir: string, options: { readyTimeoutMs?: number } = {}): Promise<LabAzurite & { alreadyRunning: boolean }> {
  const running = await labAzuriteStatus(labDir);
  if (running.up && running.azurite) return { ...running.azurite, alreadyRunning: true };
  const dir = dataDir(labDir);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const log = openSync(join(dir, 'azurite.log'), 'a');
  const child = spawn(
    process.execPath,
    [entry(), '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--location', dir, '--blobHost', '127.0.0.1', '--blobPort', String(port)],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error('Azurite did not start (no pid)');
  child.unref();
  // Recorded before it is ready: a start that times out still leaves the PID for stopLabAzurite.
  await writeJsonAtomic(stateFile(labDir), { pid, port, dir });
  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  while (!(await answers(port))) {
    if (!(await isProcessUnder(pid, dir)) || Date.now() > deadline) {
      await stopLabAzurite(labDir);
      const tail = (() => {
        try {
          return readFileSync(join(dir, 'azurite.log'), 'utf8').slice(-600);
        } catch {
          return '';
        }
      })();
      throw new Error(`the lab's Azurite did not answer on 127.0.0.1:${port}: ${tail.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...describe(pid, port), alreadyRunning: false };
}

export async function labAzuriteStatus(labDir: string): Promise<{ up: boolean; azurite: LabAzurite | null }> {
  const s = await readJson<{ pid: number; port: number; dir: string }>(stateFile(labDir));
  if (!s) return { up: false, azurite: null };
  // The PID must still be Azurite for this lab (its --location), not a reused PID.
  const up = (await isProcessUnder(s.pid, s.dir)) && (await answers(s.port));
  return { up, azurite: describe(s.pid, s.port) };
}

/** SIGTERM (Azurite saves its metadata on it), SIGKILL after 5 s; then forgets the state. Blob data stays in the lab dir. */
export async function stopLabAzurite(labDir: string): Promise<void> {
  const s = await readJson<{ pid: number; port: number; dir: string }>(stateFile(labDir));
  if (!s) return;
  if (await isProcessUnder(s.pid, s.dir)) await terminate(s.pid, 5000);
  await rm(stateFile(labDir), { force: true });
}
