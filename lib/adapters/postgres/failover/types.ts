/**
 * How a database failover is carried out, behind one interface so a drill can name its provider in
 * the target: `pg-promote` (self-managed: pg_promote() on the standby, then repoint the endpoint),
 * `patroni` (its REST API; Patroni elects and promotes), and later CloudNativePG (the Cluster resource)
 * or Azure Database for PostgreSQL Flexible Server (forced failover through ARM). The scenario kills
 * the primary itself (the fault); the provider does what the platform does after it (the recovery).
 */

/** One PostgreSQL server as the provider sees it. */
export interface PgNode {
  /** Stable name: `node-a`, a Patroni member name, a pod name. */
  name: string;
  host: string;
  port: number;
  /** Present for nodes the harness runs itself (lab, tests): what a kill or a rewind needs. */
  dataDir?: string;
  role: 'primary' | 'standby' | 'unknown';
}

export interface ReplicationState {
  /** The standby's walreceiver is streaming from the primary. */
  streaming: boolean;
  /** Replay lag in ms (now − last replayed transaction's commit time, 0 when caught up and idle); null when unknown. */
  replayLagMs: number | null;
  /** Bytes between the primary's current WAL position and the standby's replay position; null when unknown. */
  lagBytes: number | null;
  /** `async`, `sync` (synchronous_standby_names names this standby) or `quorum`. */
  mode: 'async' | 'sync' | 'quorum' | 'unknown';
  /** Why the lag is unknown while the standby streams, when the provider knows (shown with a failed lag probe). */
  unknownBecause?: string;
}

export interface Topology {
  primary: PgNode | null;
  standbys: Array<PgNode & { replication: ReplicationState }>;
}

export interface FailoverResult {
  /** The node that now accepts writes. */
  newPrimary: PgNode;
  /** ISO instants: when the provider started acting, and when the new primary first accepted a write. */
  startedAt: string;
  writableAt: string;
  /** What the provider did, in a sentence, for the journal and the record. */
  detail: string;
}

export interface FailoverProvider {
  readonly kind: string;
  /**
   * The settings that drive failover time, recorded with every result so runs compare fairly:
   * Patroni `ttl`, `loop_wait`, `retry_timeout`, `maximum_lag_on_failover`; pg-promote's poll interval.
   */
  settings(): Promise<Record<string, unknown>>;
  /** What failover() will do, in the plan's words, given the standbys that could take over. Touches nothing. */
  failoverPlan(candidates: string[]): string;
  /** Read-only: who is primary, which standbys stream and how far behind. Used by steady-state probes. */
  topology(signal?: AbortSignal): Promise<Topology>;
  /**
   * After the primary died: make a standby the primary (promote, or wait for the platform's own
   * election), point the stable endpoint at it, and resolve once it accepts a write.
   */
  failover(options: { candidate?: string; timeoutMs: number; signal: AbortSignal }): Promise<FailoverResult>;
  /**
   * Rollback: bring the old primary back as a standby of the new one (pg_rewind, or a fresh base
   * backup when rewind is impossible) and resolve once it streams. Returns what was done.
   */
  rejoin(node: PgNode, options: { timeoutMs: number; signal: AbortSignal }): Promise<string>;
}

/**
 * The platform did not fail over within the drill's limit: no new primary, or none that takes a write. An
 * expected outcome of a drill (the system missed its RTO; exit 1), not a harness fault and not bad input,
 * so every provider throws this one type and a scenario can tell it from a crash of the harness.
 */
export class FailoverTimeoutError extends Error {
  constructor(
    message: string,
    readonly provider: string,
    readonly timeoutMs: number,
  ) {
    super(message);
    this.name = 'FailoverTimeoutError';
  }
}

export function isFailoverTimeout(e: unknown): e is FailoverTimeoutError {
  return e instanceof FailoverTimeoutError;
}

/** "n2", "n2 or n3", or the fallback when no standby is known yet (a plan made before the cluster answers). */
export function orList(names: string[], none: string): string {
  return names.length === 0 ? none : names.join(' or ');
}
