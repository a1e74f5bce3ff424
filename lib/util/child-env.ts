/**
 * The one place a child process's environment is made. A copy of ours would hand every child the user's
 * credentials (PGPASSWORD, AZURE_STORAGE_*, PATRONI_RESTAPI_PASSWORD) and keep them for the life of the
 * lab's long-lived processes, readable in /proc/PID/environ. So a child gets what lets a program run at
 * all (where programs are, language, time zone, home), plus the variables its caller names, one by one.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Folders every system keeps its programs in, for children that run as another user (postgres). */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Nothing here grants access to anything. */
const RUNNING = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'TERM'] as const;

/**
 * `pass`: names to copy from our environment when set (never a credential, unless the child needs it for
 * its own connection, as pg_dump needs PGPASSWORD); `set`: values the caller made.
 */
export function childEnv(options: { pass?: readonly string[]; set?: Record<string, string | undefined> } = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...RUNNING, ...(options.pass ?? [])]) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  for (const [name, v] of Object.entries(options.set ?? {})) if (v !== undefined) env[name] = v;
  env.PATH ??= SYSTEM_PATH;
  return env;
}

/**
 * For a program that runs as another user (PostgreSQL, Patroni as `postgres`): nothing of ours at all,
 * not even PATH or HOME (root's folders, which that user cannot enter), only what the caller sets.
 */
export function serverUserEnv(set: Record<string, string> = {}): Record<string, string> {
  return { PATH: SYSTEM_PATH, LC_ALL: 'C.UTF-8', ...set };
}

/** Names a runbook command finds in its environment: the path of the file holding what it was handed. */
export const SECRETS_FILE_VAR = 'DRILL_SECRETS_FILE';

const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

/**
 * Credentials handed to one command by a 0600 file in a 0700 folder of its own, not its environment: the
 * environment is inherited by everything it starts and readable in /proc for its whole life. The file is
 * shell syntax (`set -a; . "$DRILL_SECRETS_FILE"` in a runbook), and `drill` itself reads it at start.
 * `remove()` deletes it once the command is done.
 */
export function writeSecretsFile(values: Record<string, string>): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'drill-secrets-'));
  const path = join(dir, 'env');
  const text = Object.entries(values)
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join('');
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The variables of a file writeSecretsFile made; throws on anything else, naming where. */
export function readSecretsFile(path: string): Record<string, string> {
  const text = readFileSync(path, 'utf8');
  const out: Record<string, string> = {};
  // Sticky: each match starts where the last ended, so nothing between them goes unread. A value may span lines.
  const line = /([A-Za-z_][A-Za-z0-9_]*)='((?:[^']|'\\'')*)'\n/y;
  while (line.lastIndex < text.length) {
    const at = line.lastIndex;
    const m = line.exec(text);
    if (!m) throw new Error(`${path}: not NAME='value' at line ${text.slice(0, at).split('\n').length}`);
    out[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  }
  return out;
}
