import { $ } from 'zx';
import { fileURLToPath } from 'node:url';
import type { ExecAdapter, ExecResult } from './types.ts';
import { childEnv, SECRETS_FILE_VAR, SYSTEM_PATH, writeSecretsFile } from '../util/child-env.ts';

/** lib/cli/bin holds a `drill` shim: runbook steps can call the harness itself (e.g. `drill lab pause-front`). */
const DRILL_BIN_DIR = fileURLToPath(new URL('../cli/bin', import.meta.url));

/**
 * What a runbook command sees of ours besides what any program needs: where the cluster and the lab are,
 * no credential. A command gets a variable only when the drill file names it: exec's `passEnv` in its
 * environment, `passSecrets` in the file $DRILL_SECRETS_FILE names.
 */
const RUNBOOK_CONTEXT = ['KUBECONFIG', 'DRILL_LAB_DIR', 'DRILL_BACKUP_CONTAINER', 'DRILL_HALT_FILE'];

/** Output kept per stream in events and records: enough to see why a runbook step failed, not a log dump. */
const KEEP_CHARS = 16_384;

function tail(s: string): string {
  return s.length <= KEEP_CHARS ? s : `[${s.length - KEEP_CHARS} chars cut]\n${s.slice(-KEEP_CHARS)}`;
}

/**
 * Runbook commands through zx and bash: the command string is handed to `bash -c` whole, so what an
 * SRE pastes from a runbook runs as written. node_modules/.bin is on PATH so `drill ...` works inside.
 * A program given as an array runs without a shell, and its output is the scenario's to parse, so it is kept whole.
 */
export function createExec(baseEnv: Record<string, string> = {}): ExecAdapter {
  return {
    async run(command, options): Promise<ExecResult> {
      const handed = options.secrets && Object.keys(options.secrets).length > 0 ? writeSecretsFile(options.secrets) : null;
      try {
        return await runOnce(command, options, { ...baseEnv, ...options.env, [SECRETS_FILE_VAR]: handed?.path });
      } finally {
        handed?.remove();
      }
    },
  };
}

async function runOnce(
  command: string | readonly string[],
  options: Parameters<ExecAdapter['run']>[1],
  env: Record<string, string | undefined>,
): Promise<ExecResult> {
  const started = performance.now();
  const $$ = $({
    nothrow: true,
    quiet: true,
    verbose: false,
    preferLocal: true,
    signal: options.signal,
    timeout: options.timeoutMs,
    timeoutSignal: 'SIGKILL',
    cwd: options.cwd ?? process.cwd(),
    env: childEnv({ pass: RUNBOOK_CONTEXT, set: { ...env, PATH: `${DRILL_BIN_DIR}:${process.env.PATH ?? SYSTEM_PATH}` } }),
  });
  const shell = typeof command === 'string';
  const out = typeof command === 'string' ? await $$`bash -c ${command}` : await $$`${command}`;
  const keep = shell ? tail : (s: string) => s;
  return {
    command: typeof command === 'string' ? command : command.join(' '),
    exitCode: out.exitCode,
    signal: out.signal,
    stdout: keep(out.stdout),
    stderr: keep(out.stderr),
    durationMs: performance.now() - started,
  };
}
