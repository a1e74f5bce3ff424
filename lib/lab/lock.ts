/**
 * One labUp/labDown at a time per lab directory (two `drill run`s starting the same lab would otherwise
 * both init PostgreSQL). The lock file holds the holder's PID; a dead holder's lock is taken over.
 */
import { open, readFile, rm, stat } from 'node:fs/promises';
import { procState } from '../util/proc.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const EMPTY_LOCK_STALE_MS = 5000;

export async function withLabLock<T>(lockPath: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      // Written-but-empty is a holder between open and write: wait for it, do not steal. Unless it has been
      // empty for seconds: then its holder died in between (seen: a harness killed by EPIPE right there).
      const emptyFor = holder > 0 ? 0 : Date.now() - ((await stat(lockPath).catch(() => null))?.mtimeMs ?? Date.now());
      if ((Number.isInteger(holder) && holder > 0 && (await procState(holder)) !== 'alive') || emptyFor > EMPTY_LOCK_STALE_MS) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (performance.now() > deadline) {
        throw new Error(
          `lab is locked by pid ${holder || '?'} (${lockPath}), which is starting or stopping it; if no drill command is running, remove ${lockPath}`,
        );
      }
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}
