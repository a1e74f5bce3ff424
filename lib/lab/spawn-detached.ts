/**
 * Starts one of the lab's long-lived entries detached (own session and process group: it outlives the command
 * that started it and never gets the terminal's Ctrl-C) and resolves once it reports ready over IPC; the
 * channel is then closed. A child that exits or stays silent is killed and the error carries its log's tail.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { tail } from './log-tail.ts';
import { childEnv } from './paths.ts';
import { signal } from '../util/proc.ts';

export async function spawnDetached<T extends { type?: string }>(o: {
  /** How the error names it: "the global front". */
  label: string;
  argv: string[];
  cwd: string;
  logFile: string;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<{ pid: number; ready: T }> {
  const out = openSync(o.logFile, 'a');
  const child = spawn(process.execPath, o.argv, { detached: true, stdio: ['ignore', out, out, 'ipc'], cwd: o.cwd, env: childEnv() });
  closeSync(out);
  return new Promise((resolve, reject) => {
    const fail = async (why: string) => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (child.pid) signal(child.pid, 'SIGKILL');
      reject(new Error(`${o.label} ${why}\n--- ${o.logFile} (tail) ---\n${await tail(o.logFile)}`));
    };
    const onAbort = () => void fail('was stopped: the start was cancelled');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => void fail(`did not report ready within ${o.timeoutMs} ms`), o.timeoutMs);
    child.once('error', (e) => void fail(`could not start: ${e.message}`));
    child.once('exit', (code, sig) => void fail(`exited (${sig ?? `code ${code}`}) before it was ready`));
    child.on('message', (m: T) => {
      if (m?.type !== 'ready') return;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      child.removeAllListeners('exit');
      child.disconnect();
      child.unref();
      resolve({ pid: child.pid!, ready: m });
    });
  });
}
