/**
 * When we are root, PostgreSQL runs as `postgres` and must reach its data directory inside the lab
 * directory: every ancestor needs search permission for that user. Checked before anything is created.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isRoot, serverUser } from '../adapters/postgres/cluster.ts';
import { UserError } from '../errors.ts';
import { serverUserEnv } from '../util/child-env.ts';

function ancestors(dir: string): string[] {
  const out = [dir];
  while (dirname(out[out.length - 1]!) !== out[out.length - 1]) out.push(dirname(out[out.length - 1]!));
  return out.reverse();
}

/** Confirms with the kernel itself (ACLs, supplementary groups) before calling a directory blocked. */
function postgresCanEnter(path: string): Promise<boolean> {
  return new Promise((resolve) =>
    execFile('runuser', ['-u', 'postgres', '--', 'test', '-x', path], { env: serverUserEnv(), cwd: '/' }, (err) => resolve(!err)),
  );
}

export async function assertServerCanReach(dir: string): Promise<void> {
  if (!isRoot()) return;
  const { uid, gid } = await serverUser();
  for (const a of ancestors(dir)) {
    const st = await stat(a).catch(() => null);
    // Directories labUp creates get mode 0755: only existing ones can block.
    if (!st) return;
    const bits = st.uid === uid ? 0o100 : st.gid === gid ? 0o010 : 0o001;
    if (st.mode & bits) continue;
    if (await postgresCanEnter(a)) continue;
    throw new UserError(
      `the lab directory ${dir} is not reachable by the postgres user (PostgreSQL refuses to run as root, so it runs as postgres): it cannot enter ${a} (mode ${(st.mode & 0o777).toString(8)}, owner uid ${st.uid})`,
      {
        untouched: 'nothing: no directory was created and no process was started',
        next: `run \`chmod o+x ${a}\`, or use a lab directory postgres can reach, e.g. DRILL_LAB_DIR=/tmp/drill-lab`,
      },
    );
  }
}
