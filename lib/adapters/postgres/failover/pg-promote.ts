/**
 * pg-promote: self-managed failover. After the primary died, `pg_promote()` on the standby that replayed
 * the most WAL, then a callback repoints the stable endpoint (the lab's control API here; a DNS record or
 * a Kubernetes Service elsewhere), then one commit through the endpoint proves the service can write.
 * Rejoin brings the old primary back as a standby with pg_rewind, or a fresh base backup when rewind fails.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../../../errors.ts';
import { isRunning, startCluster, stopCluster, waitReady, type PgConn } from '../cluster.ts';
import { cloneStandby, rewindToStandby, setSyncStandby, waitStreaming, walSenders, withClient, type WalSender } from '../standby.ts';
import {
  FailoverTimeoutError,
  orList,
  type FailoverProvider,
  type FailoverResult,
  type PgNode,
  type ReplicationState,
  type Topology,
} from './types.ts';

export interface PgPromoteNode extends PgNode {
  /** Server log, for nodes the harness starts itself (rejoin). */
  logFile?: string;
  /** Unix socket directory the node's config names (rejoin rewrites it after a copy). */
  socketDir?: string;
}

export interface PgPromoteOptions {
  nodes: PgPromoteNode[];
  /** The stable address the service uses; a failover is done when a commit goes through it. */
  endpoint: { host: string; port: number };
  /** Admin role (superuser: pg_promote, slots, pg_rewind) and the database it connects to. */
  user: string;
  database: string;
  /** sync: after a rejoin the new primary names the rejoined standby in synchronous_standby_names. */
  replication: 'async' | 'sync';
  /** Points the endpoint at the new primary. Must resolve only once new connections reach it. */
  repoint(node: PgNode): Promise<void>;
  /** How often the provider checks for the first successful write (default 20 ms). */
  pollMs?: number;
  /** Connect timeout per node when reading the topology (default 1000 ms). */
  connectTimeoutMs?: number;
}

interface NodeView {
  node: PgPromoteNode;
  up: boolean;
  inRecovery: boolean | null;
  receiverStatus: string | null;
  replayLsn: string | null;
  /** now() − last replayed commit's timestamp on the standby; null when nothing was replayed yet. */
  sinceLastReplayMs: number | null;
  error?: string;
}

const PROMOTE_POLL_MS = 10;
/** Longest a topology read waits to see a standby replay the primary's current WAL position. */
const LAG_SAMPLE_MS = 1000;

export class PgPromoteProvider implements FailoverProvider {
  readonly kind = 'pg-promote';
  private readonly pollMs: number;
  private readonly connectTimeoutMs: number;
  private walRetrieveRetryInterval: string | null = null;
  private failoverStartedMs = 0;

  constructor(private readonly o: PgPromoteOptions) {
    if (o.nodes.length < 2) throw new UserError(`pg-promote needs at least two nodes, got ${o.nodes.length}`, { untouched: 'nothing' });
    this.pollMs = o.pollMs ?? 20;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 1000;
  }

  get nodes(): readonly PgPromoteNode[] {
    return this.o.nodes;
  }

  private conn(node: PgNode): PgConn {
    return { host: node.host, port: node.port, user: this.o.user, database: this.o.database };
  }

  failoverPlan(candidates: string[]): string {
    return `pg-promote: promote ${orList(candidates, 'a standby')}, the one that replayed the most WAL, and repoint the endpoint`;
  }

  async settings(): Promise<Record<string, unknown>> {
    // The standby's retry interval decides whether a promoted node waits 0.1 s or 5 s for WAL (FIELD-NOTES).
    // Read from a standby when there is one, else from the node that answers (after a failover: the promoted
    // standby, whose value is the one that counted); remembered, so a node gone later does not turn it to null.
    const views = (await this.views()).filter((v) => v.up).sort((a, b) => Number(b.inRecovery === true) - Number(a.inRecovery === true));
    for (const v of views) {
      const read = await withClient(
        this.conn(v.node),
        (c) => c.query<{ v: string }>("SELECT current_setting('wal_retrieve_retry_interval') AS v"),
        this.connectTimeoutMs,
      )
        .then((r) => r.rows[0]!.v)
        .catch(() => null);
      if (read !== null) {
        this.walRetrieveRetryInterval = read;
        break;
      }
    }
    const retry = this.walRetrieveRetryInterval;
    return {
      provider: this.kind,
      promote: 'pg_promote(wait => false) on the standby that replayed the most WAL, then pg_is_in_recovery() polled',
      promotePollMs: PROMOTE_POLL_MS,
      replayLag: `time for the standby to replay the primary's current WAL position, sampled up to ${LAG_SAMPLE_MS} ms`,
      detection: 'none: the scenario calls failover once the primary is dead (no failure detector, no election)',
      writeCheckPollMs: this.pollMs,
      connectTimeoutMs: this.connectTimeoutMs,
      replication: this.o.replication,
      walRetrieveRetryInterval: retry,
    };
  }

  private async view(node: PgPromoteNode): Promise<NodeView> {
    try {
      return await withClient(
        this.conn(node),
        async (c) => {
          const r = await c.query<{ rec: boolean; status: string | null; replay: string | null; since_ms: string | null }>(
            `SELECT pg_is_in_recovery() AS rec,
                    (SELECT status FROM pg_stat_wal_receiver) AS status,
                    pg_last_wal_replay_lsn()::text AS replay,
                    (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS since_ms`,
          );
          const x = r.rows[0]!;
          return {
            node,
            up: true,
            inRecovery: x.rec,
            receiverStatus: x.status,
            replayLsn: x.replay,
            sinceLastReplayMs: x.since_ms === null ? null : Number(x.since_ms),
          };
        },
        this.connectTimeoutMs,
      );
    } catch (e) {
      return {
        node,
        up: false,
        inRecovery: null,
        receiverStatus: null,
        replayLsn: null,
        sinceLastReplayMs: null,
        error: (e as Error).message,
      };
    }
  }

  private views(): Promise<NodeView[]> {
    return Promise.all(this.o.nodes.map((n) => this.view(n)));
  }

  async topology(signal?: AbortSignal): Promise<Topology> {
    signal?.throwIfAborted();
    const views = await this.views();
    const primaries = views.filter((v) => v.up && v.inRecovery === false);
    // Two nodes out of recovery is split brain: the one the endpoint's callback last chose is unknown here,
    // so none is called primary and every node is listed for a person to look at.
    const primary = primaries.length === 1 ? primaries[0]! : null;
    const senders: WalSender[] = primary ? await walSenders(this.conn(primary.node)).catch(() => []) : [];
    const standbys = await Promise.all(
      views
        .filter((v) => v !== primary)
        .map(async (v) => {
          const sender = senders.find((s) => s.applicationName === v.node.name) ?? null;
          const replication = replicationOf(v, sender, primary !== null);
          if (replication.lagBytes && primary)
            replication.replayLagMs = await this.catchUpMs(v.node, primary.node, replication.replayLagMs);
          return { ...strip(v.node), role: v.up && v.inRecovery ? ('standby' as const) : ('unknown' as const), replication };
        }),
    );
    return { primary: primary ? { ...strip(primary.node), role: 'primary' } : null, standbys };
  }

  /**
   * How long the standby takes to replay what the primary has written by now. Any WAL at all (a checkpoint,
   * hint bits under wal_log_hints) makes the byte lag non-zero, and the last replayed commit may be minutes
   * old on an idle primary, so "now − last commit" alone would call a healthy standby far behind. Waits at
   * most LAG_SAMPLE_MS; a standby that has not caught up by then is at least that far behind, and the commit
   * timestamp's figure is kept when larger.
   */
  private async catchUpMs(standby: PgNode, primary: PgNode, sinceLastReplayMs: number | null): Promise<number | null> {
    try {
      const [{ lsn }] = (
        await withClient(
          this.conn(primary),
          (c) => c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'),
          this.connectTimeoutMs,
        )
      ).rows as [{ lsn: string }];
      const t0 = performance.now();
      return await withClient(
        this.conn(standby),
        async (c) => {
          for (;;) {
            const r = await c.query<{ done: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [lsn]);
            const waited = performance.now() - t0;
            if (r.rows[0]!.done) return waited;
            if (waited >= LAG_SAMPLE_MS) return Math.max(waited, sinceLastReplayMs ?? 0);
            await sleep(10);
          }
        },
        this.connectTimeoutMs,
      );
    } catch {
      return sinceLastReplayMs;
    }
  }

  async failover(options: { candidate?: string; timeoutMs: number; signal: AbortSignal }): Promise<FailoverResult> {
    const startedAt = new Date().toISOString();
    this.failoverStartedMs = performance.now();
    const deadline = this.failoverStartedMs + options.timeoutMs;
    const views = await this.views();
    const alivePrimary = views.find((v) => v.up && v.inRecovery === false && v.node.name !== options.candidate);
    if (alivePrimary) {
      throw new UserError(
        `${alivePrimary.node.name} (${alivePrimary.node.host}:${alivePrimary.node.port}) is a primary and still accepts connections: promoting a standby now would leave two primaries`,
        {
          untouched: 'nothing was promoted and the endpoint was not repointed',
          next: 'pg-promote fails over after the primary is gone: stop or kill it first (a platform with a failure detector, like Patroni, decides this itself)',
        },
      );
    }
    const candidate = pickCandidate(views, options.candidate);
    const promoteStartedAt = performance.now();
    const promoted = await withClient(this.conn(candidate.node), async (c) => {
      // pg_promote(wait => true) checks every 100 ms; asking for the promotion and polling here finds it sooner.
      await c.query('SELECT pg_promote(false)');
      for (;;) {
        const r = await c.query<{ rec: boolean; names: string }>(
          "SELECT pg_is_in_recovery() AS rec, current_setting('synchronous_standby_names') AS names",
        );
        if (!r.rows[0]!.rec) {
          // A promoted node must not wait for a standby it does not have (FIELD-NOTES): every commit would hang.
          if (r.rows[0]!.names !== '')
            await c.query('ALTER SYSTEM RESET synchronous_standby_names').then(() => c.query('SELECT pg_reload_conf()'));
          return true;
        }
        if (performance.now() >= deadline || options.signal.aborted) return false;
        await sleep(PROMOTE_POLL_MS);
      }
    });
    if (!promoted) {
      options.signal.throwIfAborted();
      throw new FailoverTimeoutError(
        `pg_promote on ${candidate.node.name} did not finish within ${options.timeoutMs} ms`,
        this.kind,
        options.timeoutMs,
      );
    }
    const promotedAt = performance.now();
    const newPrimary: PgNode = { ...strip(candidate.node), role: 'primary' };
    await this.o.repoint(newPrimary);
    const repointedAt = performance.now();
    await this.waitWritable(deadline, options.signal);
    const writableAt = new Date().toISOString();
    return {
      newPrimary,
      startedAt,
      writableAt,
      detail: `promoted ${candidate.node.name} (replayed up to ${candidate.replayLsn ?? '?'}) in ${(promotedAt - promoteStartedAt).toFixed(0)} ms, repointed the endpoint ${(repointedAt - promotedAt).toFixed(0)} ms later, first commit through it ${(performance.now() - repointedAt).toFixed(0)} ms after that`,
    };
  }

  /** One real commit through the endpoint: txid_current() takes a transaction id, which a standby refuses. */
  private async waitWritable(deadline: number, signal: AbortSignal): Promise<void> {
    let last = '';
    const endpoint = { host: this.o.endpoint.host, port: this.o.endpoint.port, user: this.o.user, database: this.o.database };
    for (;;) {
      signal.throwIfAborted();
      try {
        await withClient(endpoint, (c) => c.query("SET statement_timeout = '1s'; SELECT txid_current()"), this.connectTimeoutMs);
        return;
      } catch (e) {
        last = (e as Error).message;
      }
      if (performance.now() >= deadline)
        throw new FailoverTimeoutError(
          `no commit went through the endpoint ${endpoint.host}:${endpoint.port} before the failover timed out: ${last}`,
          this.kind,
          Math.round(deadline - this.failoverStartedMs),
        );
      await sleep(this.pollMs);
    }
  }

  async rejoin(node: PgNode, options: { timeoutMs: number; signal: AbortSignal }): Promise<string> {
    const deadline = performance.now() + options.timeoutMs;
    const local = this.o.nodes.find((n) => n.name === node.name);
    if (!local?.dataDir || !local.socketDir || !local.logFile) {
      throw new UserError(`pg-promote can rejoin only nodes it runs itself (data dir, socket dir and log known); ${node.name} is not one`, {
        untouched: node.name,
      });
    }
    const topo = await this.topology(options.signal);
    if (!topo.primary) throw new Error(`cannot rejoin ${node.name}: no single primary among ${this.o.nodes.map((n) => n.name).join(', ')}`);
    if (topo.primary.name === node.name) throw new Error(`cannot rejoin ${node.name} as a standby: it is the primary`);
    const primary = this.conn(topo.primary);
    const me = topo.standbys.find((s) => s.name === node.name);
    if (me?.role === 'standby' && me.replication.streaming) {
      await this.applyMode(primary, node.name);
      return `${node.name} already streams from ${topo.primary.name}`;
    }
    // A rejoining node must not run: a restarted former primary would take writes nobody replicates.
    if (await isRunning(local.dataDir)) await stopCluster(local.dataDir, 'fast', { timeoutMs: 30_000 });
    const id = {
      name: node.name,
      port: local.port,
      socketDir: local.socketDir,
      primary: { host: topo.primary.host, port: topo.primary.port, user: this.o.user },
    };
    const left = () => Math.max(5000, Math.floor(deadline - performance.now()));
    let how: string;
    const t0 = performance.now();
    let copiedMs: number;
    try {
      await rewindToStandby(primary, local.dataDir, id, { timeoutMs: left() });
      copiedMs = performance.now() - t0;
      await startCluster(local.dataDir, { logFile: local.logFile, timeoutMs: left() });
      how = 'rewound with pg_rewind';
    } catch (rewindError) {
      options.signal.throwIfAborted();
      // Rewind refuses a node whose history it cannot match (or dies half way): a fresh copy always works.
      await stopCluster(local.dataDir, 'immediate').catch(() => {});
      await cloneStandby(primary, local.dataDir, id, { timeoutMs: left() });
      copiedMs = performance.now() - t0;
      await startCluster(local.dataDir, { logFile: local.logFile, timeoutMs: left() });
      how = `rebuilt with pg_basebackup (pg_rewind failed: ${firstLine((rewindError as Error).message)})`;
    }
    const startedMs = performance.now() - t0;
    await waitStreaming(primary, node.name, { timeoutMs: left(), signal: options.signal });
    await this.applyMode(primary, node.name);
    const ms = (x: number) => `${(x / 1000).toFixed(1)} s`;
    return `${node.name} ${how}, streaming from ${topo.primary.name} (${this.o.replication}); copy ${ms(copiedMs)}, started ${ms(startedMs)}, streaming ${ms(performance.now() - t0)}`;
  }

  /** Rollback when nothing was promoted: start the old primary again, unchanged, and wait until it takes connections. */
  async restartAsPrimary(node: PgNode, options: { timeoutMs: number; signal: AbortSignal }): Promise<string> {
    const local = this.o.nodes.find((n) => n.name === node.name);
    if (!local?.dataDir || !local.logFile) throw new Error(`no primary, and ${node.name} cannot be restarted from here`);
    await startCluster(local.dataDir, { logFile: local.logFile });
    await waitReady(this.conn(node), { timeoutMs: Math.min(options.timeoutMs, 60_000), signal: options.signal });
    return `no standby had been promoted: restarted ${node.name} as the primary`;
  }

  private async applyMode(primary: PgConn, standby: string): Promise<void> {
    await setSyncStandby(primary, this.o.replication === 'sync' ? standby : null);
  }
}

function strip(n: PgPromoteNode): PgNode {
  return { name: n.name, host: n.host, port: n.port, ...(n.dataDir ? { dataDir: n.dataDir } : {}), role: n.role };
}

function firstLine(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.find((l) => /error|fatal|could not/i.test(l)) ?? lines[0] ?? s).slice(0, 300);
}

/**
 * Lag as the standby sees it, checked against the primary's WAL position: nothing left to replay is 0 ms
 * however long ago the last commit was (an idle primary is not a lagging standby); otherwise the time
 * since the last replayed commit, which grows while the standby falls behind a writing primary.
 */
function replicationOf(v: NodeView, sender: WalSender | null, primaryKnown: boolean): ReplicationState {
  const streaming = v.up && v.inRecovery === true && v.receiverStatus === 'streaming' && (!primaryKnown || sender?.state === 'streaming');
  if (!v.up || !v.inRecovery) return { streaming: false, replayLagMs: null, lagBytes: null, mode: 'unknown' };
  const lagBytes = sender?.lagBytes ?? null;
  let replayLagMs: number | null;
  if (lagBytes !== null && lagBytes <= 0) replayLagMs = 0;
  else replayLagMs = v.sinceLastReplayMs ?? sender?.replayLagMs ?? null;
  const mode = !sender ? 'unknown' : sender.syncState === 'sync' ? 'sync' : sender.syncState === 'quorum' ? 'quorum' : 'async';
  return {
    streaming,
    replayLagMs: replayLagMs === null ? null : Math.max(0, replayLagMs),
    lagBytes: lagBytes === null ? null : Math.max(0, lagBytes),
    mode,
  };
}

function pickCandidate(views: NodeView[], named?: string): NodeView {
  if (named) {
    const v = views.find((x) => x.node.name === named);
    if (!v)
      throw new UserError(`failover candidate ${named} is not a node of this cluster (${views.map((x) => x.node.name).join(', ')})`, {
        untouched: 'nothing was promoted',
      });
    if (!v.up) throw new UserError(`failover candidate ${named} does not answer: ${v.error}`, { untouched: 'nothing was promoted' });
    if (!v.inRecovery)
      throw new UserError(`failover candidate ${named} is not a standby (it is not in recovery)`, { untouched: 'nothing was promoted' });
    return v;
  }
  const standbys = views.filter((v) => v.up && v.inRecovery);
  if (standbys.length === 0) {
    throw new UserError(
      `no standby to promote: ${views.map((v) => `${v.node.name} ${v.up ? 'is not in recovery' : 'does not answer'}`).join(', ')}`,
      {
        untouched: 'nothing was promoted',
      },
    );
  }
  // The standby that replayed the most WAL loses the least.
  return standbys.sort((a, b) => lsnCompare(b.replayLsn, a.replayLsn))[0]!;
}

function lsnValue(lsn: string | null): bigint {
  if (!lsn) return -1n;
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

function lsnCompare(a: string | null, b: string | null): number {
  const d = lsnValue(a) - lsnValue(b);
  return d > 0n ? 1 : d < 0n ? -1 : 0;
}
