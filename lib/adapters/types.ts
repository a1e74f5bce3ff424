/**
 * The interfaces the engine and scenarios see. Adapters implement them at the edge (lab processes,
 * Kubernetes, PostgreSQL, Blob, shell); the engine never imports an SDK.
 */
import type { FailoverProvider, PgNode } from './postgres/failover/types.ts';
import type { FileLedgerEntry, LogLedgerEntry } from '../measure/data-classes.ts';
import type { ClassMeasurement } from '../score/rpo-classes.ts';

/** A running copy of the service: a lab replica process or, on Kubernetes, a pod. */
export interface Replica {
  /** Stable name, e.g. `orders-7f9c-2` or a pod name. */
  name: string;
  labels: Record<string, string>;
  /** Process id for lab replicas; undefined on Kubernetes. */
  pid?: number;
  ready: boolean;
  /** ISO time the replica started (on Kubernetes the pod's startTime: whole seconds). */
  startedAt: string;
  /** ISO time, millisecond clock of the harness, it first saw the replica and first saw it ready (Kubernetes: from the watch). */
  seenAt?: string;
  readyAt?: string;
  /** The workload that owns and replaces it (`orders` deployment, lab supervisor group). */
  owner: string;
}

export interface KillOptions {
  /** 0 = force (SIGKILL / grace period 0), otherwise SIGTERM then SIGKILL after the grace period. */
  gracePeriodMs: number;
}

export interface WorkloadStatus {
  owner: string;
  desired: number;
  ready: number;
  replicas: Replica[];
}

/**
 * Replicated workloads: what a pod kill acts on. The lab implements it over supervised processes,
 * the Kubernetes adapter over pods and their Deployment.
 */
export interface ReplicaSetAdapter {
  /** Human name of where this acts, for plans and errors: `lab:/tmp/drill-lab-0`, `kube:aks-prod/orders`. */
  readonly where: string;
  /** Replicas matching a label selector (`app=orders,tier=web`), ready or not. */
  list(selector: string): Promise<Replica[]>;
  kill(replica: Replica, options: KillOptions): Promise<void>;
  /** Desired and ready counts of the owning workload of the replicas matched by selector. */
  status(selector: string): Promise<WorkloadStatus>;
  /**
   * Resolve once `ready >= desired` and none of `gone` is among the ready replicas, or reject on
   * timeout/abort. Implementations watch rather than poll tightly.
   */
  waitReady(selector: string, options: { timeoutMs: number; signal: AbortSignal; gone?: string[] }): Promise<WorkloadStatus>;
  /** Rollback: bring the workload back to its desired count (start what is missing) and wait for it. */
  ensureDesired(selector: string, options: { timeoutMs: number; signal: AbortSignal }): Promise<WorkloadStatus>;
}

export interface ExecResult {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/**
 * Runbook commands as faults or checks (zx under the hood). A string is handed to bash as written; an array is
 * one program and its arguments with no shell between (`[helm, 'rollback', release]`), its output kept whole
 * for the scenario to parse.
 */
export interface ExecAdapter {
  run(
    command: string | readonly string[],
    options: {
      timeoutMs: number;
      signal: AbortSignal;
      env?: Record<string, string>;
      /** Credentials for this command only, handed over in a 0600 file named by $DRILL_SECRETS_FILE, never its environment. */
      secrets?: Record<string, string>;
      cwd?: string;
    },
  ): Promise<ExecResult>;
}

/** A PostgreSQL node as a database scenario sees it: the provider's view plus what a host kill needs. */
export interface DbNodeView extends PgNode {
  /** Postmaster PID when the harness runs the node itself and it is running; null otherwise. */
  pid: number | null;
  /** Server log, when the harness runs the node. */
  logFile?: string;
}

/**
 * A primary/standby PostgreSQL pair behind one stable endpoint, with the failover provider the drill's
 * target chose. The lab implements it over its own nodes; a real environment would over its platform.
 */
export interface DatabaseAdapter {
  /** For plans and errors: `lab:/tmp/drill-lab-0 (pg-promote, async)`. */
  readonly where: string;
  readonly provider: FailoverProvider;
  readonly replication: 'async' | 'sync';
  /** The address the service uses; a failover repoints it. */
  readonly endpoint: { host: string; port: number; database: string; user: string };
  /** Superuser and database for direct per-node queries (read-back of the ledger, walsender PIDs). */
  readonly admin: { user: string; database: string };
  /** Every node now, the recorded primary first, with its postmaster PID. */
  nodes(): Promise<DbNodeView[]>;
  /**
   * The node's host dies: `kill` SIGKILLs the postmaster and all its children at once; `immediate` is
   * `pg_ctl stop -m immediate`. Resolves once every process is gone, with the PIDs that were killed.
   * Where the node is no process of this machine (a pod) `pid` is 0, no children, and `detail` says what was done.
   */
  crash(node: PgNode, how: 'kill' | 'immediate'): Promise<{ pid: number; children: number[]; detail?: string }>;
  /**
   * Rollback of a crash after which no standby was promoted: the old primary, back up, is the whole database
   * again and loses nothing. A node the harness runs is started here; a pod or a Patroni member is restarted by
   * its platform, and this waits for that. Resolves once it is back, with what was done in a sentence.
   */
  restartAsPrimary(node: PgNode, options: { timeoutMs: number; signal: AbortSignal }): Promise<string>;
  /**
   * Read-only check for rollbacks: does a write commit through the stable endpoint now (one empty transaction, as
   * the service would)? Where absent, a rollback judges the pair by the provider's topology alone.
   */
  takesWrites?(signal: AbortSignal): Promise<{ ok: boolean; detail: string }>;
  /**
   * Idempotent step for rollbacks: point the stable endpoint at this node (a failover cut between the promotion and
   * the repoint leaves it on the old one). Absent where the platform moves the endpoint itself (Patroni, a Service).
   */
  repointEndpoint?(node: PgNode): Promise<string>;
}

/** The point just before a destructive change, recorded when a data-loss fault runs: what a point-in-time restore targets. */
export interface RestorePoint {
  /** `pg_current_wal_insert_lsn()` read right before the change; the restore stops before it (`recovery_target_inclusive = false`). */
  lsn: string;
  /** ISO time, harness clock, the LSN was read. */
  at: string;
  timeline: number;
  /** `pg_control_system().system_identifier`: a backup of another cluster has a different one. */
  systemId: string;
}

/** What a point-in-time restore of the live database aims at: just before a recorded change, or every archived segment. */
export type RestoreTarget = { lsn: string; inclusive: false } | 'latest';

/** One timed step of a live restore, in the order they run (the RTO breakdown). */
export type LiveRestoreStepName = 'download' | 'replay' | 'promote' | 'repoint' | 'standby';

export interface LiveRestoreOutcome {
  ok: boolean;
  /** What went wrong, in a sentence naming the blob, segment or check; null when ok. */
  problem: string | null;
  /** Archived WAL segments missing between the base backup and the target: the restore refuses to go past a gap. */
  missingSegments: string[];
  /** True once the damaged cluster was moved aside and the restored one serves: false means the live database was not replaced. */
  replaced: boolean;
  backup: { folder: string; takenAt: string; bytes: number } | null;
  /** Last LSN replayed, and the newest commit time replayed (the restored data's freshness). */
  reachedLsn: string | null;
  newestCommitAt: string | null;
  /** Milliseconds per step; a step not reached is absent. */
  timings: Partial<Record<LiveRestoreStepName, number>>;
  /** Where the damaged cluster's data directories were moved (kept for forensics until `drill lab down`). */
  quarantine: string | null;
}

/**
 * The live database restored in place from its Blob backups (base backup + archived WAL): what a data-loss drill
 * needs of its target. The lab implements it over its own pair; every step is resumable, so a second call after a
 * crash continues from what it finds.
 */
export interface LiveRestoreAdapter {
  readonly where: string;
  /**
   * The steps this restore times, in order, with what each covers here: the verdict's breakdown names these and only
   * these (an operator's recovery Job downloads and replays as one step seen from outside).
   */
  readonly steps: readonly { name: LiveRestoreStepName; label: string }[];
  /**
   * Read-only: can a point-in-time restore run here? Problems name what is missing (no physical base backup of this
   * cluster, WAL archiving not running, a table that does not exist) so validation can exit 2 before anything runs.
   */
  preflight(options: { table?: string; signal: AbortSignal }): Promise<{
    problems: string[];
    backup: { folder: string; takenAt: string } | null;
    archiveLagSeconds: number | null;
  }>;
  /** Read on the primary right before a fault: the restore point. */
  markRestorePoint(signal: AbortSignal): Promise<RestorePoint>;
  /** The `lose-cluster` fault: every node killed and its data directory moved to the quarantine of `runId`. */
  loseCluster(runId: string, signal: AbortSignal): Promise<{ quarantine: string; nodes: string[]; detail?: string }>;
  /**
   * Restore the newest base backup of this cluster taken before the target, plus archived WAL up to it, beside the
   * live nodes; check it (system identifier, target reached, pg_amcheck); only then move the damaged nodes to the
   * quarantine, start the restored copy as primary, repoint the endpoint and rebuild the standby from it.
   */
  restoreLive(request: {
    runId: string;
    target: RestoreTarget;
    signal: AbortSignal;
    onStep?: (step: LiveRestoreStepName, ms: number) => void;
    log?: (line: string) => void;
  }): Promise<LiveRestoreOutcome>;
  /** Read-only condition the rollback restores: the database restored for `runId` serves, one primary taking writes, the standby streaming, WAL archiving running. */
  restoredAndWhole(runId: string, signal: AbortSignal): Promise<{ ok: boolean | null; detail: string }>;
  /** The quarantine folder of `runId` (exists once a node was moved aside). */
  quarantineOf(runId: string): string;
}

/**
 * The data classes other than the database (DESIGN.md `objectives.rpoClasses`), read back where the target keeps
 * them: what the engine needs to score file storage and logs after a run whose load uploaded attachments. The lab
 * implements it over its Azurite and its log shipper; a target without one reports the classes not measured.
 */
export interface DataClassesAdapter {
  /** For records and errors: `lab:/tmp/drill-lab-0 (Azurite lab-files, lab-logs)`. */
  readonly where: string;
  /**
   * First ships what the target's log shipping has pending (bounded by the target's own shipping interval), then reads back every file
   * of the file ledger (name and sha256 of the bytes stored) and every shipped log line, and judges each class by
   * its ledger from `faultMs` (run-relative). `sinceEpochMs`: nothing older can hold this run's lines. A class
   * that cannot be read back comes with its reason, never as nothing lost.
   */
  readBack(request: {
    files: readonly FileLedgerEntry[];
    logs: readonly LogLedgerEntry[];
    faultMs: number;
    sinceEpochMs: number;
    signal: AbortSignal;
    log?: (line: string) => void;
  }): Promise<ClassMeasurement[]>;
}

/** A region of a two-region target: the primary serves in normal times, the secondary after a region loss. */
export type RegionName = 'primary' | 'secondary';

/** How the secondary's database restore ended: the blobs it lacked when it could not (`container/name`). */
export interface RegionRestoreOutcome {
  ok: boolean;
  /** What went wrong, what was not touched, what to do next; null when ok. */
  problem: string | null;
  missing: string[];
  /** Where the restored database serves, once ok. */
  db: { host: string; port: number; database: string; user: string } | null;
  backupFolder: string | null;
  reachedLsn: string | null;
  timings: { downloadMs?: number; replayMs?: number; promoteMs?: number };
}

/** Which region serves, and what runs of each: the read-only view a region-loss rollback checks. */
export interface RegionView {
  /** The region the global front sends the load to; null when there is no global front. */
  active: RegionName | null;
  globalFront: { alive: boolean; url: string | null; switchedAt: string | null };
  /** Parts of the primary region still running, by name (`daemon`, `postgres:n1`, `azurite`...). */
  primaryRunning: string[];
  /** Parts of the secondary region's compute and database running (`compute`, `database`). */
  secondaryRunning: string[];
  /** The secondary's restored database, once a restore finished (running or not). */
  secondaryDb: { port: number; restoredAt: string; backupFolder: string; reachedLsn: string } | null;
  /** The secondary compute's front, while it runs. */
  secondaryFrontPort: number | null;
  /** A failback moved the secondary's data into the primary's place and has not finished: only finishing it keeps that data. */
  failbackUnderway: boolean;
}

/**
 * The whole-region loss and the recovery runbook in the secondary region: what a region-loss drill needs of its
 * target. The lab implements it over its two regions and global front; every step is idempotent, so the rollback
 * and `drill recover` finish the runbook from wherever it stopped.
 */
export interface RegionAdapter {
  readonly where: string;
  /** Read-only: can a region loss run here (two regions, the secondary's storage answering, the global front up)? Problems name what is missing. */
  preflight(signal: AbortSignal): Promise<{ problems: string[] }>;
  view(signal: AbortSignal): Promise<RegionView>;
  /** Every process of the primary region killed at once; its storage refuses connections; its data stays on disk. */
  losePrimary(): Promise<{ at: string; killed: { part: string; pid: number }[] }>;
  /** The database restored in the secondary from the secondary's copy of the base backup and WAL only, left serving. */
  restoreSecondaryDb(o: {
    signal: AbortSignal;
    onStep?: (step: 'download' | 'replay' | 'promote', ms: number) => void;
    log?: (line: string) => void;
  }): Promise<RegionRestoreOutcome>;
  /** The service's replicas started in the secondary against the database on `dbPort`; resolves once they serve. */
  startSecondaryCompute(o: { dbPort: number; replicas?: number; signal: AbortSignal }): Promise<{ frontPort: number; replicas: number }>;
  /** The global front sends new requests to `region`'s front. */
  switchFront(region: RegionName, frontPort: number, signal: AbortSignal): Promise<{ switchedAt: string }>;
  /**
   * Read-only: the load is served from one healthy region through the global front (a request through it answers
   * 200 from that region) and nothing of the other region runs.
   */
  servesFromOneRegion(signal: AbortSignal): Promise<{ ok: boolean; region: RegionName | null; detail: string }>;
  /**
   * The outage ends: whatever was started in the secondary is stopped and the primary region is brought back on its
   * own data, behind the global front. For when the secondary cannot take over (its copy lacks a blob).
   */
  restorePrimaryRegion(o: { signal: AbortSignal; log?: (line: string) => void }): Promise<string>;
  /**
   * Failback: the primary region rebuilt from the secondary (storage mirrored back, the secondary's database moved
   * into the primary's place with its WAL shipped to the primary's archive) and the global front switched back.
   * Idempotent: called again after a cut-short call it finishes from where that one stopped.
   */
  failBack(o: {
    signal: AbortSignal;
    onStep?: (step: FailbackStep, ms: number) => void;
    /** Called the moment the secondary stops taking writes: from here until the switch, users are not served. */
    onWritesStopped?: () => void;
    log?: (line: string) => void;
  }): Promise<FailbackResult>;
}

/** The failback's steps, in order: the RTO of the way back is from `stop-secondary` to `switch`. */
export type FailbackStep = 'storage' | 'stop-secondary' | 'wal' | 'database' | 'start' | 'switch';

export interface FailbackResult {
  steps: { step: FailbackStep; ms: number }[];
  /** Blobs copied from the secondary's account to the primary's, and primary-only ones removed, per container. */
  mirrored: { container: string; copied: number; removed: number }[];
  /** WAL the secondary wrote, shipped into the primary's archive (file names). */
  walShipped: string[];
  /** Where the primary's own data before the failback was moved (kept for forensics, dropped by `drill lab down --purge`). */
  quarantine: string | null;
  /** The primary's database after the failback. */
  db: { host: string; port: number; database: string; user: string };
  switchedAt: string;
}
