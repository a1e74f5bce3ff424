/**
 * Replication stall: SIGSTOP the primary's walsenders, so WAL the primary commits stops reaching the
 * standby. On loopback an asynchronous standby is caught up within microseconds and a plain kill loses
 * nothing; a stall of N ms before the kill makes the loss of an async failover reproducible (FIELD-NOTES:
 * stalling the standby's walreceiver does not work, the WAL waits in the socket buffer).
 * Only for nodes the harness runs on this machine: a signal needs the PID.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import type { PgConn } from './cluster.ts';
import { childrenOf, cmdlineOf, signal, stateLetter } from '../../util/proc.ts';
import { walSenders } from './standby.ts';

export interface StalledSender {
  pid: number;
  /** The standby it streams to. */
  standby: string;
  /** /proc start time (clock ticks since boot): tells this process from a later one that reuses the PID. */
  startTime: number;
}

async function startTimeOf(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, starttime field 22.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return null;
  }
}

/** The primary's streaming walsenders, with what a later SIGCONT needs to be sure it signals the same process. */
export async function findWalSenders(primary: PgConn): Promise<StalledSender[]> {
  const out: StalledSender[] = [];
  for (const s of await walSenders(primary)) {
    if (s.state !== 'streaming') continue;
    const startTime = await startTimeOf(s.pid);
    const argv = await cmdlineOf(s.pid);
    // The view's PID must be a walsender process of this machine: a remote primary cannot be stalled by signal.
    if (startTime === null || !argv?.some((a) => a.includes('walsender'))) {
      throw new Error(
        `walsender pid ${s.pid} (for ${s.applicationName}) is not a process on this machine: a replication stall needs the primary to run here`,
      );
    }
    out.push({ pid: s.pid, standby: s.applicationName, startTime });
  }
  return out;
}

export async function stopSenders(senders: readonly StalledSender[]): Promise<void> {
  for (const s of senders) {
    if ((await startTimeOf(s.pid)) !== s.startTime) throw new Error(`walsender pid ${s.pid} is gone before it could be stalled`);
    signal(s.pid, 'SIGSTOP');
  }
}

/** SIGCONT to each sender still running as the same process; returns how many were resumed (0 once the primary is dead). */
export async function resumeSenders(senders: readonly StalledSender[]): Promise<number> {
  let resumed = 0;
  for (const s of senders) {
    if ((await startTimeOf(s.pid)) !== s.startTime) continue;
    if (signal(s.pid, 'SIGCONT')) resumed++;
  }
  return resumed;
}

/** A walsender of a node's postmaster left stopped (state T), as a stall the harness did not undo leaves it. */
export interface StoppedSender {
  pid: number;
  /** The walsender's title: `postgres: walsender postgres 127.0.0.1(40000) streaming 0/3000148`. */
  title: string;
}

/**
 * Read-only: the walsenders under this postmaster that are stopped (SIGSTOP, state T). pg_stat_replication still
 * calls such a sender `streaming`, so only /proc tells. Only for a node that runs on this machine (its PID known).
 */
export async function stoppedWalSenders(postmasterPid: number): Promise<StoppedSender[]> {
  const out: StoppedSender[] = [];
  for (const pid of await childrenOf(postmasterPid)) {
    const argv = await cmdlineOf(pid);
    const title = argv?.join(' ') ?? '';
    if (!title.includes('walsender')) continue;
    if ((await stateLetter(pid)) === 'T') out.push({ pid, title });
  }
  return out;
}

/** SIGCONT to each stopped walsender found: idempotent, a running one is not touched. Returns how many were resumed. */
export async function resumeStoppedSenders(postmasterPid: number): Promise<number> {
  let resumed = 0;
  for (const s of await stoppedWalSenders(postmasterPid)) if (signal(s.pid, 'SIGCONT')) resumed++;
  return resumed;
}

async function pendingSignals(pid: number): Promise<bigint | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const shared = /^ShdPnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    const own = /^SigPnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return BigInt(`0x${shared ?? '0'}`) | BigInt(`0x${own ?? '0'}`);
  } catch {
    return null;
  }
}

/**
 * For a shutdown that asks every child to quit (`pg_ctl stop -m immediate` sends SIGQUIT): a stopped
 * walsender cannot act on it, and the postmaster would wait 5 s before it escalates to SIGKILL. Each
 * sender is resumed only once the quit signal is pending, so its first act on waking is to exit, and
 * the WAL it held back still never reaches the standby. Resolves when every sender was handled or gone.
 */
export async function resumeWhenSignalled(
  senders: readonly StalledSender[],
  signo: number,
  options: { timeoutMs: number; pollMs?: number },
): Promise<void> {
  const bit = 1n << BigInt(signo - 1);
  const deadline = performance.now() + options.timeoutMs;
  const left = new Set(senders);
  while (left.size > 0 && performance.now() < deadline) {
    for (const s of [...left]) {
      const pending = (await startTimeOf(s.pid)) === s.startTime ? await pendingSignals(s.pid) : null;
      if (pending === null) left.delete(s);
      else if (pending & bit) {
        signal(s.pid, 'SIGCONT');
        left.delete(s);
      }
    }
    if (left.size > 0) await sleep(options.pollMs ?? 2);
  }
}
