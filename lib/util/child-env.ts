/**
 * The one place a child process's environment is made. A copy of ours would hand every child the user's
 * credentials (PGPASSWORD, AZURE_STORAGE_*, PATRONI_RESTAPI_PASSWORD) and keep them for the life of the
 * lab's long-lived processes, readable in /proc/PID/environ. So a child gets what lets a program run at
 * all (where programs are, language, time zone, home), plus the variables its caller names, one by one.
 */

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
