import type { Replica } from '../adapters/types.ts';
import type { RegionName, SecondaryDb } from './regions/contract.ts';
import type { GlobalFrontStatus } from './regions/global-front.ts';
import type { SecondaryComputeStatus } from './regions/secondary-compute.ts';

/** What `labUp` returns and `labStatus` reports for a running lab. */
export interface LabInfo {
  /** Absolute lab directory: state, logs, PostgreSQL data. */
  dir: string;
  /** The front: one stable address over the ready replicas. */
  serviceUrl: string;
  /** The daemon's control API (status, scale, repoint, pause). */
  controlUrl: string;
  db: {
    host: '127.0.0.1';
    /** The current primary's own port (direct, bypassing the endpoint). */
    port: number;
    /** The DB endpoint the service uses; repointed on failover. */
    endpointPort: number;
    database: string;
    /** Login role the service uses (trust auth, loopback only). */
    user: string;
    /** Superuser for admin work (replication, backups, inspection). */
    superuser: string;
    /** Unix socket directory of every lab node. */
    socketDir: string;
    /** Data directory of the current primary. */
    dataDir: string;
    /** async (default) or sync: the primary's commits wait for the standby's flush. */
    replication: LabReplication;
    /** Every node of the pair, the current primary first. */
    nodes: LabDbNode[];
    /** Who fails the pair over: the harness (pg-promote) or Patroni with etcd (patroni). */
    provider: LabProvider;
    /** Patroni labs: etcd and REST API ports, DCS timings. */
    patroni?: PatroniLabConfig;
  };
  /** Desired replica count. */
  replicas: number;
  /** `postgres` is the primary's postmaster, null while it is not running (status lists that as a problem). */
  pids: { daemon: number; postgres: number | null };
  /** The lab's Azurite Blob service (backups of lab drills); null when it is not running. No key here. */
  azurite?: LabAzuriteView | null;
  /** Two-region labs: the secondary region's storage, null while it does not answer; absent on a one-region lab. No key here. */
  secondary?: LabSecondaryView | null;
  /**
   * Two-region labs: which region the global front sends the load to, and each region's own front (null while
   * that region has none running). `serviceUrl` is then `globalFrontUrl`.
   */
  regions?: LabRegionsInfo;
  /** True when labUp found the lab already up and healthy and started nothing. */
  alreadyRunning: boolean;
}

export interface LabRegionsInfo {
  active: RegionName;
  globalFrontUrl: string;
  primaryFrontUrl: string | null;
  secondaryFrontUrl: string | null;
}

export type LabReplication = 'async' | 'sync';
export type LabProvider = 'pg-promote' | 'patroni';

/** lab.json's `patroni`: the etcd and REST API ports and the DCS timings the lab's Patroni cluster was set up with. */
export interface PatroniLabConfig {
  scope: string;
  etcd: { clientPort: number; peerPort: number };
  /** REST API port of each member (member name = node name). */
  members: Record<string, { apiPort: number }>;
  ttl: number;
  loopWait: number;
  retryTimeout: number;
}

/** One PostgreSQL node of the lab as lab.json and /proc see it (no query: status reads replication separately). */
export interface LabDbNode {
  name: string;
  role: 'primary' | 'standby';
  host: '127.0.0.1';
  port: number;
  dataDir: string;
  log: string;
  /** Postmaster PID when running, else null. */
  pid: number | null;
}

export interface ReplicaView extends Replica {
  port: number | null;
}

/** GET /status of the control API. `version` grows on every change, for long-polling (`?after=V&waitMs=N`). */
export interface DaemonStatus {
  version: number;
  owner: string;
  templateLabels: Record<string, string>;
  desired: number;
  ready: number;
  replicas: ReplicaView[];
  front: { port: number; paused: boolean };
  db: { endpointPort: number; primaryPort: number; connections: number };
  daemon: { pid: number; startedAt: string };
}

export interface LabEvent {
  seq: number;
  at: string;
  type: string;
  [k: string]: unknown;
}

export interface LabComponent {
  /** `postgres` is the current primary, `postgres-standby` the other node. */
  name:
    | 'postgres'
    | 'postgres-standby'
    | 'daemon'
    | 'front'
    | 'db-endpoint'
    | 'control'
    | 'etcd'
    | 'patroni'
    | 'azurite'
    | 'wal-archiver'
    | 'azurite-secondary'
    | 'replicator'
    | 'log-shipper'
    | 'global-front'
    | 'secondary-daemon'
    | 'secondary-front'
    | 'secondary-log-shipper'
    | 'secondary-db';
  pid: number | null;
  port: number | null;
  alive: boolean;
}

/** The parts `lab status` checks; each broken one is a problem. */
export type LabPart =
  | 'daemon'
  | 'control'
  | 'front'
  | 'db-endpoint'
  | 'primary'
  | 'standby'
  | 'walsender'
  | 'replicas'
  | 'azurite'
  | 'etcd'
  | 'patroni'
  | 'wal-archive'
  | 'azurite-secondary'
  | 'replication'
  | 'log-shipper'
  | 'global-front'
  | 'secondary-compute'
  | 'secondary-db';

import type { LogShippingStatus } from './log-shipping.ts';

/** One broken part of the lab: which, and what is wrong with it, with names and PIDs. */
export interface LabProblem {
  part: LabPart;
  detail: string;
}

/** A walsender of the primary, seen by /proc: `stopped` when it is in state T (SIGSTOPped). */
export interface LabWalSender {
  pid: number;
  /** The standby it feeds (pg_stat_replication's application_name); null when the primary does not answer. */
  to: string | null;
  stopped: boolean;
}

export interface LabStatus {
  dir: string;
  /** The lab's daemon runs: the lab is up, broken parts or not (those are `problems`). */
  up: boolean;
  /** The daemon is not running but something of the lab was left behind: `labDown` cleans it. */
  stale: boolean;
  /** How to reach the lab; null unless the daemon's control API answers. */
  info: LabInfo | null;
  components: LabComponent[];
  replicas: ReplicaView[];
  desired: number;
  /** The PostgreSQL pair as queried now; null when lab.json is missing. */
  database: LabDatabaseStatus | null;
  /** The continuous WAL archive; null when the lab has none (down, or from before it had one). */
  archive: LabArchiveStatus | null;
  /** Two-region labs: the replicator into the secondary's storage; absent on a one-region lab and on a lab that is down. */
  replication?: LabReplicationStatus;
  /** The log shipper (the logs data class): running or not, last pass, what waits to be shipped; absent in a lab without one. */
  logShipping?: LogShippingStatus | null;
  /** Two-region labs: the global front, the secondary region's compute and database, which region serves. */
  regions?: LabRegionsStatus;
  /** Every broken part; empty when the lab is healthy (`drill lab status` exits 0 only then). */
  problems: LabProblem[];
}

export interface LabRegionsStatus {
  /** The region the global front sends the load to; null when the lab has no global front. */
  active: RegionName | null;
  globalFront: {
    pid: number;
    port: number;
    url: string;
    controlPort: number;
    alive: boolean;
    upstreamPort: number | null;
    switchedAt: string | null;
  } | null;
  secondary: {
    /** Its compute (lab daemon, front, replicas); a region-loss recovery starts it. No WAL archiver and no replicator there. */
    compute: SecondaryComputeStatus & { walArchiver: false; replicator: false };
    /** The database restored in the secondary (db.json), running or not; null before any restore. */
    database: (SecondaryDb & { running: boolean; pid: number | null }) | null;
  };
  /** Said plainly once the secondary serves: "serving from the secondary region since <time>; primary region down". */
  note: string | null;
}

export interface LabDatabaseStatus {
  replication: LabReplication;
  provider: LabProvider;
  /** Patroni labs: the cluster as its REST API lists it (members null when no member answers). */
  patroni?: {
    scope: string;
    ttl: number;
    loopWait: number;
    retryTimeout: number;
    leader: string | null;
    members: Array<{
      name: string;
      role: string;
      state: string;
      timeline: number | null;
      lagBytes: number | null;
      apiUrl: string | null;
    }> | null;
  };
  primary: string;
  /** The walsenders of the node that takes writes. */
  walsenders: LabWalSender[];
  nodes: Array<
    LabDbNode & {
      alive: boolean;
      /** What the node says: pg_is_in_recovery(); null when it does not answer. */
      inRecovery: boolean | null;
      /** Standbys only: walreceiver streaming and the primary's walsender for it streaming. */
      streaming: boolean | null;
      syncState: string | null;
      replayLagMs: number | null;
      lagBytes: number | null;
    }
  >;
}

export interface LabDownResult {
  dir: string;
  /** Processes that were signalled, by component. */
  stopped: { name: string; pid: number }[];
  /** The lab was not cleanly up: leftovers of a crash were cleaned. */
  wasStale: boolean;
}

/** lab.json, written by labUp: what the lab should be. */
export interface LabConfig {
  version: 1;
  createdAt: string;
  replicas: number;
  /** Node name of the current primary; every other node of `nodes` is its standby. Updated by a failover. */
  primary: string;
  nodes: Record<string, { port: number }>;
  /** Absent in a lab.json written before the pair existed: async. */
  replication?: LabReplication;
  /** Absent before Patroni labs existed: pg-promote. */
  provider?: LabProvider;
  patroni?: PatroniLabConfig;
  /** The most the WAL archive may lag the primary; absent: 60 s. */
  archiveLagMs?: number;
  /** How often the archiver takes a new base backup; absent: 24 h, the organisation's daily backups. */
  baseBackupEveryMs?: number;
  /** How often the log shipper uploads the replicas' request logs; absent: 60 s. */
  logShipIntervalMs?: number;
  /** 2: a secondary region's storage and a replicator into it; absent: one region. */
  regions?: 1 | 2;
  /** How long a blob exists in the primary's storage before the replicator copies it to the secondary; absent: 15 min. */
  replicationLagMs?: number;
  /** Two-region labs: the global front's port, chosen once and kept for the life of the lab. */
  globalFrontPort?: number;
  /** Size at which a replica starts its request log's next generation (the shipper deletes a shipped one); absent: 8 MiB. */
  logRotateBytes?: number;
}

/** daemon.json, written by the daemon (synchronously, on every replica change): what runs, by PID. */
export interface DaemonState {
  pid: number;
  startedAt: string;
  ports: { front: number; control: number; dbEndpoint: number };
  primaryPort: number;
  desired: number;
  replicas: { name: string; pid: number; port: number | null }[];
  /** The WAL archiver the daemon keeps running (absent in a daemon from before it had one). */
  walArchiver?: WalArchiverView;
  /** The log shipper, kept running the same way (absent in a daemon from before it had one). */
  logShipper?: WalArchiverView;
  /** Two-region labs: the replicator into the secondary's storage, kept running the same way. */
  replicator?: WalArchiverView;
  /** `secondary`: the secondary region's compute (`<lab>/secondary/daemon.json`); absent: the primary's. */
  region?: 'secondary';
  updatedAt: string;
}

/** The daemon's WAL archiver child: its PID while it runs, how often it was restarted, why it last exited. */
export interface WalArchiverView {
  pid: number | null;
  startedAt: string | null;
  restarts: number;
  lastExit: string | null;
}

/** `drill lab status`'s view of the WAL archive. */
export interface LabArchiveStatus {
  /** running: the archiver process is alive and streaming; otherwise why not. */
  state: 'streaming' | 'starting' | 'reconnecting' | 'stopped' | 'down';
  pid: number | null;
  restarts: number;
  archivedThrough: string | null;
  timeline: number | null;
  /** Seconds the oldest unarchived WAL has waited; 0 when the primary's position is archived; null before anything was archived. */
  lagSeconds: number | null;
  archiveLagSeconds: number;
  /** The newest base backup the archiver knows, and when it ended. */
  baseBackup: { folder: string; at: string } | null;
  /** How often the archiver takes a new one (lab.json's baseBackupEveryMs, default daily). */
  baseBackupEverySeconds: number;
  /**
   * Segments the archive misses for good. `beforeBaseBackup`: found before the newest base backup ended, so restores
   * from it start past the hole (still listed, no longer a problem).
   */
  holes: { from: string; to: string; count: number; detail: string; foundAt: string; beforeBaseBackup: boolean }[];
  lastError: string | null;
}

/** What may be shown and recorded about the secondary region's storage: no key. */
export interface LabSecondaryView {
  pid: number;
  port: number;
  /** `http://127.0.0.1:PORT/labsecondary` */
  url: string;
  account: string;
  /** The containers the replicator copies into it. */
  containers: string[];
}

/** `drill lab status`'s view of replication into the secondary region. */
export interface LabReplicationStatus {
  /** running: the replicator process is alive (daemon.json's PID, checked in /proc). */
  state: 'running' | 'down';
  pid: number | null;
  restarts: number;
  lastExit: string | null;
  lagSeconds: number;
  /** Now minus the Last-Modified of the oldest blob the secondary lacks; 0 when it lacks none; null before the first pass. */
  measuredLagSeconds: number | null;
  /** The lag beyond which status calls it a problem (replicationLag plus a margin). */
  allowedLagSeconds: number;
  lastPassAt: string | null;
  newestCopied: string | null;
  pending: number | null;
  copiedTotal: number;
  lastError: string | null;
}

/** What may be shown and recorded about the lab's Azurite: no key. */
export interface LabAzuriteView {
  pid: number;
  port: number;
  /** `http://127.0.0.1:PORT/devstoreaccount1` */
  url: string;
  container: string;
}

export interface LabAzurite {
  pid: number;
  port: number;
  /** `http://127.0.0.1:PORT/devstoreaccount1` */
  blobEndpoint: string;
  /**
   * Azurite's documented development account. It holds a key (public, but a key): hand it to the SDK
   * in-process only, never to argv, a log or a record.
   */
  connectionString: string;
}

export interface LabFacts {
  config: LabConfig | null;
  /** Every node lab.json names, the primary first, with its postmaster PID when it runs. */
  nodes: (LabDbNode & { alive: boolean })[];
  daemon: DaemonState | null;
  daemonAlive: boolean;
  live: DaemonStatus | null;
  pgPid: number | null;
  pgAlive: boolean;
  /** Replica PIDs from daemon.json that are still ours and alive. */
  replicaPids: { name: string; pid: number }[];
  /** The lab's Azurite as azurite.json records it: `alive` by PID, `up` when it also answers. */
  azurite: { up: boolean; alive: boolean; azurite: LabAzurite | null };
  /** The secondary region's Azurite, the same way (all false and null on a one-region lab). */
  secondary: { up: boolean; alive: boolean; azurite: LabAzurite | null };
  /** Two-region labs (or any lab that has their state files): the global front, the secondary's compute and database. */
  regions?: {
    globalFront: GlobalFrontStatus | null;
    compute: SecondaryComputeStatus;
    db: (SecondaryDb & { running: boolean; pid: number | null }) | null;
  };
}
