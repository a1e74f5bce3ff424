import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Builds a fresh record with the current renderers, through the CLI, from the real lab runs kept in
 * results/examples/runs, with --pdf so Chromium's print is exercised too. The spec reads it.
 */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const WORK = join(REPO, 'test-results/browser-record');
export const QUARTER = '2026-Q4';

export default async function globalSetup(): Promise<void> {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  cpSync(join(REPO, 'results/examples/runs'), join(WORK, 'runs'), { recursive: true });
  const r = spawnSync(
    process.execPath,
    [
      join(REPO, 'lib/cli/drill.mjs'),
      'record',
      '--quarter',
      QUARTER,
      '--results',
      WORK,
      '--drills',
      join(REPO, 'results/examples/policy'),
      '--pdf',
    ],
    { cwd: REPO, encoding: 'utf8', timeout: 240_000 },
  );
  // The exit code the record calls for: 1 for a failed run or a coverage gap (the example policy has gaps), else 0.
  let expected: number | null = null;
  try {
    const rec = JSON.parse(readFileSync(join(WORK, 'records', QUARTER, 'record.json'), 'utf8'));
    expected = rec.runs.some((x: { status: string }) => x.status === 'failed') || rec.coverage.gaps > 0 ? 1 : 0;
  } catch {
    // no record: the exit code below says why
  }
  if (r.status !== expected) throw new Error(`drill record exited ${r.status}, the record calls for ${expected}: ${r.stderr}${r.stdout}`);
}
