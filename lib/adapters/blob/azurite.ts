/**
 * Azurite's Blob service as a child process on loopback, for the lab and for tests.
 *
 * Spawned with node directly (not npx): killing an npm PID orphans the server it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer, request } from 'node:http';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { registerSecret } from '../../util/secrets.ts';
import { childEnv } from '../../util/child-env.ts';

/** Azurite's well-known development account, published in Azurite's documentation. Not a secret. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
// Public, but a key is a key: masking it keeps logs honest about what a real one would look like.
registerSecret(AZURITE_ACCOUNT_KEY);

/** A storage account an Azurite serves: its dev account, or one named in its AZURITE_ACCOUNTS (`name:key`). */
export interface AzuriteAccount {
  name: string;
  /** Base64, as Azurite requires; a key: never in argv, a log or a record. */
  key: string;
}

const DEV_ACCOUNT: AzuriteAccount = { name: AZURITE_ACCOUNT, key: AZURITE_ACCOUNT_KEY };

/** An account's endpoint and connection string on a loopback port (the dev account's by default): what every Azurite client is given. */
export function azuriteEndpoint(port: number, account: AzuriteAccount = DEV_ACCOUNT): { blobEndpoint: string; connectionString: string } {
  const blobEndpoint = `http://127.0.0.1:${port}/${account.name}`;
  return {
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${account.name};AccountKey=${account.key};BlobEndpoint=${blobEndpoint};`,
  };
}

export interface AzuriteHandle {
  pid: number;
  port: number;
  /** Contains the dev account key: never log it unredacted. */
  connectionString: string;
  /** `http://127.0.0.1:PORT/devstoreaccount1` */
  blobEndpoint: string;
  /** SIGTERM, then SIGKILL after 5 s. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** Azurite's --location: its JSON databases and blob extents live here. */
  dir: string;
  /** A loopback port; a free one is picked when omitted. */
  port?: number;
  /** Give up waiting for the service after this long (default 20 s). */
  readyTimeoutMs?: number;
}

/** The azurite-blob script inside node_modules, run with node directly. */
export function azuriteBlobEntry(): string {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('azurite/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin?: Record<string, string> };
  const rel = pkg.bin?.['azurite-blob'];
  if (!rel) throw new Error(`azurite at ${dirname(pkgPath)} has no azurite-blob bin`);
  return join(dirname(pkgPath), rel);
}

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

/** Blob service only, loopback only, no telemetry (it would call out), any API version the SDK sends. */
export function azuriteArgs(dir: string, port: number): string[] {
  return [
    '--silent',
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--location',
    dir,
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(port),
  ];
}

/** Any HTTP answer counts: an unauthenticated request gets 403 once Azurite is serving. */
export function azuriteAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: `/${AZURITE_ACCOUNT}?comp=list`, method: 'GET', timeout: 1000 }, (res) => {
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

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function startOnce(entry: string, dir: string, port: number, readyTimeoutMs: number): Promise<AzuriteHandle> {
  const args = [entry, ...azuriteArgs(dir, port)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  // Drain both pipes (a full pipe would stall Azurite) and keep the tail for error messages.
  let tail = '';
  const keep = (b: Buffer) => {
    tail = (tail + b.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const pid = child.pid;

  const stop = async (): Promise<void> => {
    if (pid === undefined || exited(child)) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return; // already gone
    }
    if (await waitExit(child, 5000)) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await waitExit(child, 5000);
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const early = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
    if (early) throw new Error(`could not start Azurite: ${early.message}`);
    if (exited(child)) {
      throw new AzuriteExitedError(
        `Azurite exited during start-up (code ${child.exitCode}, signal ${child.signalCode}): ${tail.trim()}`,
        tail,
      );
    }
    if (await azuriteAnswers(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Azurite did not answer on 127.0.0.1:${port} within ${readyTimeoutMs} ms: ${tail.trim()}`);
    }
  }
  if (pid === undefined) throw new Error('Azurite started without a pid');

  return { pid, port, ...azuriteEndpoint(port), stop };
}

class AzuriteExitedError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

export async function startAzurite(options: StartAzuriteOptions): Promise<AzuriteHandle> {
  const entry = azuriteBlobEntry();
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  if (options.port !== undefined) return startOnce(entry, options.dir, options.port, readyTimeoutMs);
  // Between closing the probe socket and Azurite binding, another process may take the port.
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    try {
      return await startOnce(entry, options.dir, port, readyTimeoutMs);
    } catch (e) {
      if (attempt < 3 && e instanceof AzuriteExitedError && /EADDRINUSE/.test(e.output)) continue;
      throw e;
    }
  }
}
