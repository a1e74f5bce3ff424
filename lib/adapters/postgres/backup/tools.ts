/**
 * PostgreSQL client tools (pg_dump, pg_restore, pg_basebackup, pg_receivewal, pg_amcheck) as child
 * processes. Client tools run as the harness's own user; credentials travel in the environment
 * (PGPASSWORD), which other users cannot read, never in argv.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { PG_BIN } from '../cluster.ts';
import { childEnv } from '../../../util/child-env.ts';

export interface ToolRun {
  child: ChildProcess;
  stdout: Readable;
  /** Resolves when the tool exits; never rejects. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** The variables libpq reads for credentials and TLS; everything else of ours stays out of the child. */
const LIBPQ_ENV = ['PGPASSWORD', 'PGPASSFILE', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGSSLCERT', 'PGSSLKEY', 'PGAPPNAME', 'PGSERVICEFILE', 'HOME'];

export function toolEnv(extra: Record<string, string> = {}): Record<string, string> {
  return childEnv({ pass: LIBPQ_ENV, set: { PATH: '/usr/bin:/bin', LC_ALL: 'C.UTF-8', PGCONNECT_TIMEOUT: '10', PGTZ: 'UTC', ...extra } });
}

export function startTool(
  bin: string,
  args: string[],
  options: { signal?: AbortSignal; env?: Record<string, string>; stdin?: 'ignore' | 'pipe' } = {},
): ToolRun {
  const child = spawn(join(PG_BIN, bin), args, { stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'], env: toolEnv(options.env) });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString('utf8')).slice(-16_000);
  });
  const onAbort = () => child.kill('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.once('error', (e) => {
      stderr += `\n${e.message}`;
    });
    child.once('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, stderr });
    });
  });
  return { child, stdout: child.stdout!, done };
}

/** Runs a tool to completion, collecting stdout (for small outputs). */
export async function runTool(
  bin: string,
  args: string[],
  options: { signal?: AbortSignal; env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const t = startTool(bin, args, options);
  let stdout = '';
  t.stdout.on('data', (b: Buffer) => {
    if (stdout.length < 1_000_000) stdout += b.toString('utf8');
  });
  const r = await t.done;
  return { code: r.code, stdout, stderr: r.stderr };
}

export function lastLines(text: string, n = 6): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}
