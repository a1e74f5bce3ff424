import type { Replica } from '../adapters/types.ts';

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
  };
  /** Desired replica count. */
  replicas: number;
  pids: { daemon: number; postgres: number };
  /** True when labUp found the lab already up and healthy and started nothing. */
  alreadyRunning: boolean;
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
  name: 'postgres' | 'daemon' | 'front' | 'db-endpoint' | 'control';
  pid: number | null;
  port: number | null;
  alive: boolean;
}

export interface LabStatus {
  dir: string;
  /** PostgreSQL, the daemon and its control API all answer. */
  up: boolean;
  /** Something was left behind (dead daemon, orphan replicas or server): `labDown` cleans it. */
  stale: boolean;
  info: LabInfo | null;
  components: LabComponent[];
  replicas: ReplicaView[];
  desired: number;
  problems: string[];
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
  /** Node name of the current primary; the failover issue adds standbys to `nodes`. */
  primary: string;
  nodes: Record<string, { port: number }>;
}

/** daemon.json, written by the daemon (synchronously, on every replica change): what runs, by PID. */
export interface DaemonState {
  pid: number;
  startedAt: string;
  ports: { front: number; control: number; dbEndpoint: number };
  primaryPort: number;
  desired: number;
  replicas: { name: string; pid: number; port: number | null }[];
  updatedAt: string;
}
