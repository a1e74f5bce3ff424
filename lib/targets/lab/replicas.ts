/**
 * ReplicaSetAdapter over the embedded lab: replicas are supervised processes, kill is a signal to a PID
 * (after checking the PID is still that replica), and readiness comes from the daemon's control API.
 */
import { getDaemonStatus, scaleReplicas } from '../../lab/daemon/client.ts';
import { labPaths } from '../../lab/paths.ts';
import { readConfig } from '../../lab/state.ts';
import type { DaemonStatus, LabInfo } from '../../lab/types.ts';
import { isProcessUnder, signal, terminate, waitGone } from '../../util/proc.ts';
import type { KillOptions, Replica, ReplicaSetAdapter, WorkloadStatus } from '../../adapters/types.ts';
import { matchesSelector, parseSelector, type Requirement } from '../../adapters/selector.ts';
import { setTimeout as sleep } from 'node:timers/promises';

function toReplica(r: Replica): Replica {
  return {
    name: r.name,
    labels: { ...r.labels },
    pid: r.pid,
    ready: r.ready,
    startedAt: r.startedAt,
    ...(r.readyAt ? { readyAt: r.readyAt } : {}),
    owner: r.owner,
  };
}

function workloadOf(s: DaemonStatus, reqs: Requirement[]): WorkloadStatus {
  const replicas = s.replicas.filter((r) => matchesSelector(r.labels, reqs)).map(toReplica);
  // The lab has one workload; a selector that matches neither it nor a replica names no workload here.
  if (replicas.length === 0 && !matchesSelector(s.templateLabels, reqs)) return { owner: '', desired: 0, ready: 0, replicas: [] };
  return { owner: s.owner, desired: s.desired, ready: replicas.filter((r) => r.ready).length, replicas };
}

export function createLabReplicas(info: LabInfo): ReplicaSetAdapter {
  const where = `lab:${info.dir}`;
  const status = async (selector: string, signal?: AbortSignal): Promise<WorkloadStatus> =>
    workloadOf(await getDaemonStatus(info.controlUrl, { signal }), parseSelector(selector));

  async function waitReady(
    selector: string,
    options: { timeoutMs: number; signal: AbortSignal; gone?: string[] },
  ): Promise<WorkloadStatus> {
    const reqs = parseSelector(selector);
    const gone = new Set(options.gone ?? []);
    const deadline = performance.now() + options.timeoutMs;
    let version = -1;
    let last: WorkloadStatus | null = null;
    let lastError: Error | null = null;
    for (;;) {
      options.signal.throwIfAborted();
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      try {
        // Long-poll: the daemon answers as soon as anything changes, so this reacts in milliseconds without spinning.
        const s = await getDaemonStatus(info.controlUrl, { after: version, waitMs: Math.min(remaining, 1000), signal: options.signal });
        version = s.version;
        last = workloadOf(s, reqs);
        lastError = null;
        if (last.ready >= last.desired && !last.replicas.some((r) => r.ready && gone.has(r.name))) return last;
      } catch (e) {
        if (options.signal.aborted) throw options.signal.reason;
        lastError = e as Error;
        await sleep(Math.min(100, Math.max(0, deadline - performance.now())));
      }
    }
    const lingering = last?.replicas.filter((r) => r.ready && gone.has(r.name)).map((r) => r.name) ?? [];
    const notReady = last?.replicas.filter((r) => !r.ready).map((r) => r.name) ?? [];
    throw new Error(
      `${where}: ${selector}: ${last ? `${last.ready}/${last.desired} ready` : 'readiness unknown'} after ${options.timeoutMs} ms` +
        (lingering.length ? `; still ready though meant to be gone: ${lingering.join(', ')}` : '') +
        (notReady.length ? `; not ready: ${notReady.join(', ')}` : '') +
        (lastError ? `; control API: ${lastError.message}` : ''),
    );
  }

  return {
    where,
    async list(selector) {
      return (await status(selector)).replicas;
    },
    status: (selector) => status(selector),
    waitReady,
    async kill(replica: Replica, options: KillOptions) {
      const pid = replica.pid;
      // A replica that already died may have had its PID reused: only a process of this lab is signalled.
      if (pid === undefined || !(await isProcessUnder(pid, info.dir))) {
        throw new Error(`${where}: replica ${replica.name} (pid ${pid ?? 'unknown'}) is not running: nothing was killed`);
      }
      if (options.gracePeriodMs <= 0) {
        signal(pid, 'SIGKILL');
        await waitGone(pid, 5000);
      } else {
        await terminate(pid, options.gracePeriodMs);
      }
    },
    async ensureDesired(selector, options) {
      // The declared count (lab.json, set by lab up) is what a rollback restores, not whatever a fault scaled to.
      const declared = (await readConfig(labPaths(info.dir).config))?.replicas ?? info.replicas;
      await scaleReplicas(info.controlUrl, declared, { resetBackoff: true });
      return waitReady(selector, options);
    },
  };
}
