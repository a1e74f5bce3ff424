/**
 * A CloudNativePG cluster as the database a drill fails over: the instance pods are the nodes, a host dying
 * is its pod deleted with grace period 0 (inside the namespace allowlist and the blast radius), the failover
 * provider is CloudNativePG's (the operator elects, or the drill promotes through the Cluster resource), and
 * the endpoint is the `-rw` Service as the drill reaches it. What the API cannot say (which standby streams,
 * how far behind) is read from PostgreSQL itself through that Service: pg_stat_replication on the primary.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { UserError } from '../../errors.ts';
import { cnpgInstanceSelector, cnpgSyncOf, createCnpgProvider, type CnpgProvider, type CnpgSyncSpec } from '../postgres/failover/cnpg.ts';
import { FailoverTimeoutError, type PgNode, type ReplicationState } from '../postgres/failover/types.ts';
import { takesWrite, walSenders, withClient } from '../postgres/standby.ts';
import type { DatabaseAdapter, DbNodeView } from '../types.ts';
import { createCaller } from './call.ts';
import { KubeError, KubeGuardrailError } from './errors.ts';
import { checkNamespace } from './replicas.ts';
import { podView, type PodLike } from './views.ts';

export type CnpgDrillMode = 'promote' | 'delete-primary';

export interface CnpgDatabaseConfig {
  /** The Cluster resource (postgresql.cnpg.io/v1) and its namespace, which must be in the allowlist. */
  cluster: string;
  namespace: string;
  mode: CnpgDrillMode;
  /** The `-rw` Service as reachable from where the drill runs, and who the drill connects as. */
  host: string;
  port: number;
  database: string;
  user: string;
  /** Environment variable holding the password; read when connecting, never stored or recorded. */
  passwordEnv: string;
}

export interface CnpgDatabaseOptions extends CnpgDatabaseConfig {
  kubeConfig: KubeConfig;
  allowedNamespaces: string[];
  blastRadius: number;
  requestTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** False for `drill plan`: a password variable not set yet is said in the plan, not refused (a run refuses it). */
  requirePassword?: boolean;
}

export interface CnpgDatabase extends DatabaseAdapter {
  readonly provider: CnpgProvider;
  /** For the record and plans: where and how, no secrets (and no key the record's redaction drops, like `password...`). */
  readonly details: Record<string, unknown>;
  /** For `drill plan` (reads only): the pod a kill would delete now, who fails over, and what brings it back. */
  describeRollback(): Promise<string>;
}

const GROUP = 'postgresql.cnpg.io';
const VERSION = 'v1';
const PLURAL = 'clusters';
/** Longest a topology read waits to see a standby replay the primary's current WAL position (as pg-promote's). */
const LAG_SAMPLE_MS = 1000;

interface ClusterLike {
  spec?: CnpgSyncSpec & { instances?: number; failoverDelay?: number };
  status?: { currentPrimary?: string; targetPrimary?: string; readyInstances?: number; instances?: number; phase?: string };
}

/**
 * Opens the cluster: refuses a namespace outside the allowlist before any call, then reads the Cluster once,
 * so a wrong name is invalid input (exit 2) found before any load is sent.
 */
export async function openCnpgDatabase(o: CnpgDatabaseOptions): Promise<CnpgDatabase> {
  checkNamespace(o.namespace, o.allowedNamespaces);
  const env = o.env ?? process.env;
  const passwordMissing = o.passwordEnv !== 'PGPASSWORD' && env[o.passwordEnv] === undefined;
  if (passwordMissing && o.requirePassword !== false) {
    throw new UserError(`target.database.passwordEnv names ${o.passwordEnv}, which is not set in the environment`, {
      untouched: 'nothing: no call was made to the cluster or the database',
      next: `export ${o.passwordEnv} with the password of ${o.user} (for CloudNativePG: the \`${o.cluster}-app\` Secret's password key), or remove passwordEnv to use PGPASSWORD`,
    });
  }
  const { namespace, cluster, kubeConfig: kc } = o;
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const { call, server } = createCaller(kc, namespace, o.requestTimeoutMs);
  const readCluster = (signal?: AbortSignal): Promise<ClusterLike> =>
    call(
      { verb: 'get', resource: PLURAL, group: GROUP, name: cluster },
      (opt) => custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name: cluster }, opt),
      signal,
    ) as Promise<ClusterLike>;

  let first: ClusterLike;
  try {
    first = await readCluster();
  } catch (e) {
    if (e instanceof KubeError && e.status === 404) {
      throw new UserError(`CloudNativePG cluster "${cluster}" was not found in namespace "${namespace}" (${server})`, {
        untouched: 'nothing: no load was sent and no pod was deleted',
        next: `check target.database.cluster and namespace against \`kubectl get clusters.postgresql.cnpg.io -n ${namespace}\``,
      });
    }
    throw e;
  }

  // A function, so the password is read at connect time and never sits in an object that a record or log could print.
  const password = () => env[o.passwordEnv] ?? '';
  const conn = { host: o.host, port: o.port, user: o.user, database: o.database, password };

  async function writable(node: PgNode, signal: AbortSignal): Promise<void> {
    let last = 'no attempt';
    for (;;) {
      if (signal.aborted) {
        // The caller's abort is told apart by the provider; what reaches here as a timeout is the system missing its RTO.
        throw new FailoverTimeoutError(
          `${node.name} is primary but no write went through the -rw Service ${o.host}:${o.port} before the failover timed out: ${last}`,
          'cloudnative-pg',
          0,
        );
      }
      try {
        // txid_current() takes a transaction id, which a standby refuses: a real commit on the new primary.
        await withClient(conn, (c) => c.query("SET statement_timeout = '1s'; SELECT txid_current()"), 1000);
        return;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(20);
    }
  }

  const provider = createCnpgProvider({
    kubeConfig: kc,
    namespace,
    allowedNamespaces: o.allowedNamespaces,
    cluster,
    mode: o.mode === 'promote' ? 'promote' : 'delete-pod',
    endpoint: { host: o.host, port: o.port },
    writable,
    replication: (signal) => replicationThroughRw(conn, signal),
    requestTimeoutMs: o.requestTimeoutMs,
  });

  /** Pods this adapter deleted since the cluster was last seen whole; the blast radius caps it. */
  let down = 0;
  const instancePods = async (signal?: AbortSignal) => {
    const l = await call(
      { verb: 'list', resource: 'pods', group: '' },
      // Instance pods only: a Job's pod (initdb, join) is no node and no kill target.
      (opt) => core.listNamespacedPod({ namespace, labelSelector: cnpgInstanceSelector(cluster) }, opt),
      signal,
    );
    return l.items.map((p) => podView(p as PodLike));
  };

  const where = `kube:${kc.getCurrentContext() || server}/${namespace} CloudNativePG cluster ${cluster} (${o.mode}, -rw ${o.host}:${o.port})`;
  // Synchronous commit is what makes an RPO of zero a promise: the record says which it was.
  const replication = cnpgSyncOf(first.spec).mode === 'async' ? 'async' : 'sync';
  return {
    where,
    provider,
    replication,
    endpoint: conn,
    admin: { user: o.user, database: o.database },
    // What `drill recover` needs to reopen it (cnpgDatabaseFromDetails); the variable's name only, under a key the record keeps.
    details: {
      provider: 'cnpg',
      cluster,
      namespace,
      mode: o.mode,
      replication,
      host: o.host,
      port: o.port,
      database: o.database,
      user: o.user,
      credentialFrom: `environment variable ${o.passwordEnv}`,
      credentialEnv: o.passwordEnv,
    },

    async describeRollback() {
      const c = await readCluster();
      const primary = c.status?.currentPrimary ?? '(none reported)';
      const who =
        o.mode === 'promote'
          ? 'the drill then promotes the most advanced Ready replica through status.targetPrimary (as kubectl cnpg promote)'
          : `the operator then fails over on its own (spec.failoverDelay ${c.spec?.failoverDelay ?? 0}s)`;
      const unset = passwordMissing ? `; ${o.passwordEnv} is not set: a run would refuse to start` : '';
      return `a kill deletes primary pod ${primary} (grace period 0); ${who}; rollback: the operator recreates ${primary} and rejoins it as a replica of the new primary (pg_rewind), and the drill waits until pg_stat_replication shows it streaming${unset}`;
    },

    async nodes(): Promise<DbNodeView[]> {
      const [c, pods] = await Promise.all([readCluster(), instancePods()]);
      const primary = c.status?.currentPrimary;
      const views = pods.map((p): DbNodeView => {
        const role = p.name === primary && p.ready ? 'primary' : p.ready ? 'standby' : 'unknown';
        return role === 'primary'
          ? { name: p.name, host: o.host, port: o.port, role, pid: null }
          : { name: p.name, host: `${cluster}-r.${namespace}.svc`, port: 5432, role, pid: null };
      });
      return views.sort((a, b) => Number(b.role === 'primary') - Number(a.role === 'primary') || a.name.localeCompare(b.name));
    },

    async crash(node, how) {
      if (how !== 'kill') {
        throw new UserError(`kill: immediate is not possible on CloudNativePG: the harness cannot run pg_ctl inside pod ${node.name}`, {
          untouched: `pod ${node.name} was not deleted`,
          next: 'use kill: sigkill (the pod is deleted with grace period 0)',
        });
      }
      const [c, pods] = await Promise.all([readCluster(), instancePods()]);
      const pod = pods.find((p) => p.name === node.name);
      if (!pod)
        throw new UserError(`${node.name} is not an instance pod of CloudNativePG cluster "${cluster}" in namespace "${namespace}"`, {
          untouched: 'nothing was deleted',
        });
      if ((c.status?.readyInstances ?? 0) >= (c.spec?.instances ?? Infinity)) down = 0;
      if (down + 1 > o.blastRadius) {
        throw new KubeGuardrailError(
          `refusing to delete pod ${node.name} in namespace "${namespace}": the blast radius is ${o.blastRadius} and ${down} instance pod${down === 1 ? ' was' : 's were'} already deleted since cluster "${cluster}" was last whole`,
          'raise target.blastRadius in the drill file if the larger outage is intended',
        );
      }
      down += 1;
      const body = { gracePeriodSeconds: 0, preconditions: { uid: pod.uid } };
      try {
        await call({ verb: 'delete', resource: 'pods', group: '', name: node.name }, (opt) =>
          core.deleteNamespacedPod({ name: node.name, namespace, gracePeriodSeconds: 0, body }, opt),
        );
      } catch (e) {
        // 404 or a uid conflict: that pod is gone already (its replacement must not be killed), which is what a kill wants.
        if (!(e instanceof KubeError && (e.status === 404 || e.status === 409))) {
          down -= 1;
          throw e;
        }
      }
      if (node.name === c.status?.currentPrimary) provider.primaryLost(node.name);
      return { pid: 0, children: [], detail: `deleted pod ${node.name} (uid ${pod.uid}) with grace period 0: its host died` };
    },

    // The operator recreates the pod; the drill only waits for it.
    restartAsPrimary: (node, options) => provider.rejoin(node, options),
    takesWrites: () => takesWrite(conn, `the -rw Service ${o.host}:${o.port}`),
  };
}

/**
 * Replication as the primary reports it, through the `-rw` Service: each standby by application_name (the
 * instance name under CloudNativePG), streaming or not, bytes and time behind. A `-rw` that reaches a node in
 * recovery says nothing about replication (empty). Lag in time: 0 when nothing is left to replay; else what
 * the walsender measured (replay_lag), or, when it has no figure, the time the standby takes to replay the
 * primary's current position, waited for up to LAG_SAMPLE_MS.
 */
async function replicationThroughRw(
  conn: { host: string; port: number; user: string; database: string; password: () => string },
  signal?: AbortSignal,
): Promise<Map<string, ReplicationState>> {
  signal?.throwIfAborted();
  const out = new Map<string, ReplicationState>();
  const inRecovery = await withClient(conn, (c) => c.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec'), 1000);
  if (inRecovery.rows[0]?.rec !== false) return out;
  const senders = await walSenders(conn);
  for (const s of senders) {
    const lagBytes = s.lagBytes === null ? null : Math.max(0, s.lagBytes);
    // No byte lag means no replay position: the standby has not sent its first reply since the walsender
    // started (replay_lsn is null until it does, up to wal_receiver_status_interval). Its lag is unknown, not
    // "at least a sample", and a replay_lag the walsender shows without a position is not trusted either.
    let replayLagMs: number | null = lagBytes === null ? null : lagBytes === 0 ? 0 : s.replayLagMs;
    if (replayLagMs === null && lagBytes !== null && s.state === 'streaming') replayLagMs = await catchUpMs(conn, s.applicationName);
    const mode = s.syncState === 'sync' ? 'sync' : s.syncState === 'quorum' ? 'quorum' : 'async';
    const state: ReplicationState = { streaming: s.state === 'streaming', replayLagMs, lagBytes, mode };
    if (lagBytes === null && state.streaming)
      state.unknownBecause =
        'it has not reported a replay position since its walsender started (it does within wal_receiver_status_interval, 10 s by default)';
    out.set(s.applicationName, state);
  }
  return out;
}

async function catchUpMs(conn: Parameters<typeof withClient>[0], standby: string): Promise<number | null> {
  try {
    return await withClient(
      conn,
      async (c) => {
        const [{ lsn }] = (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows as [{ lsn: string }];
        const t0 = performance.now();
        for (;;) {
          const r = await c.query<{ done: boolean | null }>(
            'SELECT replay_lsn >= $1::pg_lsn AS done FROM pg_stat_replication WHERE application_name = $2',
            [lsn, standby],
          );
          const waited = performance.now() - t0;
          // The walsender went away (or restarted) while sampling: what it said before no longer holds.
          if (r.rows[0] === undefined || r.rows[0].done === null) return null;
          if (r.rows[0].done) return waited;
          if (waited >= LAG_SAMPLE_MS) return waited;
          await sleep(10);
        }
      },
      // A second connection through -rw on a busy node can take over a second; failing it would turn a
      // streaming standby's lag into "unknown".
      5000,
    );
  } catch {
    return null;
  }
}

/** Reopen the database a run journaled (its `details` above) with the reopened target: for `drill recover` after a crash. */
export function cnpgDatabaseFromDetails(
  d: Record<string, unknown>,
  o: { kubeConfig: KubeConfig; allowedNamespaces: string[]; blastRadius: number },
): Promise<CnpgDatabase> {
  return openCnpgDatabase({
    ...o,
    cluster: String(d.cluster),
    namespace: String(d.namespace),
    mode: d.mode === 'promote' ? 'promote' : 'delete-primary',
    host: String(d.host),
    port: Number(d.port),
    database: String(d.database),
    user: String(d.user),
    passwordEnv: typeof d.credentialEnv === 'string' ? d.credentialEnv : 'PGPASSWORD',
  });
}
