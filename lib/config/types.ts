import type { z } from 'zod';
import type { Threshold, Operator } from './threshold.ts';
import type { RequestTemplate } from '../load/types.ts';

/**
 * A drill after validation and normalisation: durations in milliseconds, thresholds parsed,
 * the organisation's defaults filled in. Everything past lib/config sees only this shape.
 */
export type Tier = 'critical' | 'important' | 'standard';
export type DataClass = 'database' | 'file-storage' | 'logs';
export type DrillKind = 'quarterly' | 'monthly' | 'annual' | 'adhoc';

export interface SloSet {
  /** `rate>=99.9%`: successful requests / scheduled requests. */
  availability: Threshold[];
  /** `p(95)<500ms` etc. over the latency of requests that got an answer or timed out. */
  latency: Threshold[];
  /** `rate<0.1%`: failed (errors + dropped) / scheduled. */
  errors: Threshold[];
}

export interface Policy {
  rtoMs: Record<Tier, number>;
  rpoMs: Record<DataClass, number>;
  slo: SloSet;
  /** How long SLOs must hold, uninterrupted, before the service counts as recovered. */
  recoveryWindowMs: number;
  /** Error budget period for `errorBudget.monthlyBudgetSeconds` (default a mean month, 30.4375 d). */
  budgetPeriodMs: number;
  /** The production autoscaling policy a replica-floor probe checks a Deployment and its HPA against. */
  replicas: ReplicaPolicy;
  /** When a drill may run on a target other than the lab, and how long ahead it must be announced. */
  maintenance: MaintenancePolicy;
}

/** Weekly maintenance windows in one time zone; a window runs from `start` to `end` on each of `days`. */
export interface MaintenancePolicy {
  /** 0 = Sunday, as Date.getUTCDay counts. */
  days: number[];
  /** As written (`02:00`), for messages. */
  start: string;
  end: string;
  /** Minutes after local midnight; `end` may be 1440 (24:00). */
  startMinute: number;
  endMinute: number;
  /** IANA name (`UTC`, `Europe/Berlin`). */
  timeZone: string;
  /** How long before the drill its notice must go out. */
  noticeMs: number;
  notice: string;
}

export interface ReplicaPolicy {
  minReplicas: number;
  maxReplicas: number;
  /** HPA target utilisation, percent of requests. */
  cpuPercent: number;
  memoryPercent: number;
}

export interface LabTarget {
  kind: 'lab';
  /** Replica processes of the sample service. */
  replicas: number;
  /** Where the lab keeps its state; undefined = the default (DRILL_LAB_DIR or the OS temp dir). */
  labDir?: string;
  /** How far the continuous WAL archive may lag; undefined = the lab's default (60 s) or what lab.json says. */
  archiveLagMs?: number;
  /** How often the lab ships its replicas' request logs to Blob; undefined = the lab's default (60 s) or what lab.json says. */
  logShipIntervalMs?: number;
  /** 2: a secondary region's storage and a replicator into it; absent = one region. */
  regions?: 2;
  /** With regions: 2, how long a blob exists in the primary's storage before it is copied to the secondary (default 15 min). */
  replicationLagMs?: number;
  /** The PostgreSQL pair, when the drill file says; absent = LAB_DATABASE_DEFAULTS (async, pg-promote). */
  database?: LabDatabase;
  /** Destructive data faults (data-loss drop-table, delete-rows) are allowed here, for this reason; absent = refused. */
  dataLoss?: { reason: string };
}

/** The lab's primary/standby pair: how it replicates and which provider fails it over. */
export interface LabDatabase {
  replication: 'async' | 'sync';
  provider: 'pg-promote' | 'patroni';
}

/** Backups in a Blob container; credentials from the environment. No service, so drills on it send no load. */
export interface BlobTarget {
  kind: 'blob';
  container: string;
  /** Normalised to end in `/`, or empty. */
  prefix: string;
  /** Where scratch clusters for restores go; undefined = the OS temp dir. */
  scratchDir?: string;
}

/** An existing HTTP service the harness only loads and runs runbook commands against. */
export interface HttpTarget {
  kind: 'http';
  url: string;
}

/** A Kubernetes cluster: where pods are killed and Deployments rolled back, inside an allowlist of namespaces. */
export interface KubernetesTarget {
  kind: 'kubernetes';
  /** kubeconfig path; undefined = $KUBECONFIG, else ~/.kube/config (not read when inCluster). */
  kubeconfig?: string;
  /** kubeconfig context; undefined = the file's current-context. */
  context?: string;
  /** Use the pod's service account (a drill Job in the cluster) instead of a kubeconfig. */
  inCluster: boolean;
  /** The namespace actions act in; one of `namespaces`. */
  namespace: string;
  /** Allowlist of namespaces any action may touch; never kube-system. */
  namespaces: string[];
  /** The most pods one action may delete. */
  blastRadius: number;
  /** Base URL of the service under test: the load goes here. */
  url: string;
  /** A CloudNativePG cluster database scenarios fail over; absent = the target has no database. */
  database?: KubernetesDatabase;
  /** Destructive data faults (data-loss drop-table, delete-rows) are allowed here, for this reason; absent = refused. */
  dataLoss?: { reason: string };
}

/** A key of a Secret in the cluster: what the operator reads; the drill file never holds the credential. */
export interface SecretKeyRef {
  name: string;
  key: string;
}

/** How the data-loss drill restores a CloudNativePG cluster: its object store, and the Service to repoint. */
export interface KubernetesRestore {
  destinationPath: string;
  /** Default: the Cluster's name. */
  serverName: string;
  azureCredentials: {
    connectionString?: SecretKeyRef;
    storageAccount?: SecretKeyRef;
    storageKey?: SecretKeyRef;
    storageSasToken?: SecretKeyRef;
  };
  service: string;
  instances?: number;
}

/**
 * A CloudNativePG cluster on a Kubernetes target, and how the drill reaches its `-rw` Service from where it
 * runs. The password comes from the environment variable `passwordEnv`, never from the drill file.
 */
export interface KubernetesDatabase {
  provider: 'cnpg';
  /** The Cluster resource's name. */
  cluster: string;
  /** Its namespace: one of the target's namespaces. */
  namespace: string;
  /** promote: the drill promotes a standby through the Cluster status (as `kubectl cnpg promote`); delete-primary: the operator fails over on its own. */
  mode: 'promote' | 'delete-primary';
  host: string;
  port: number;
  database: string;
  user: string;
  passwordEnv: string;
  /** Point-in-time restore settings (data-loss); absent = no live restore on this target. */
  restore?: KubernetesRestore;
}

export type Target = LabTarget | HttpTarget | KubernetesTarget | BlobTarget;

export type StopMetric =
  | { kind: 'error_rate' }
  | { kind: 'availability' }
  | { kind: 'dropped_rate' }
  | { kind: 'latency'; aggregate: 'avg' | 'max' | { p: number } };

export interface StopCondition {
  source: string;
  metric: StopMetric;
  op: Operator;
  /** Ratio for rates, milliseconds for latency. */
  value: number;
  /** The condition must hold for this long (evaluated every second over the last second). */
  forMs: number;
}

export interface LoadConfig {
  rate: number;
  requests: RequestTemplate[];
  timeoutMs: number;
  maxInFlight: number;
  connections: number;
  /** Load before injection; steady state is judged over it. */
  baselineMs: number;
  /** Load kept running after verification, so the recovery phase has data. */
  cooldownMs: number;
  /** A share of all requests uploads an attachment, ledgered in files.tsv; absent = none. */
  attachments?: { share: number };
}

export interface ScenarioEntry {
  /** Id used by `--scenario` and in run folder names; defaults to the scenario module name. */
  name: string;
  /** Scenario module name under scenarios/. */
  scenario: string;
  /** Parameters, already validated and defaulted by the scenario's own schema. */
  params: Record<string, unknown>;
  /** Longest the observe phase waits for recovery before RTO counts as missed. */
  timeoutMs: number;
  tier: Tier;
  dataClass: DataClass;
  /** 1-based line in the drill file where this entry starts, for messages. */
  line: number;
}

export interface Drill {
  /** Path as given, for messages. */
  file: string;
  name: string;
  kind: DrillKind;
  description?: string;
  owner?: string;
  participants: string[];
  approver?: string;
  service: { name: string; tier: Tier; dataClass: DataClass };
  target: Target;
  policy: Policy;
  /** Null for a target without a service (blob): nothing to load, and SLOs are not judged. */
  load: LoadConfig | null;
  stopConditions: StopCondition[];
  scenarios: ScenarioEntry[];
  /**
   * What is allowed but works against the objectives (a lag longer than a data class's RPO target): `drill plan`
   * shows each, a run records each as a finding. Absent when there are none.
   */
  warnings?: ConfigProblem[];
}

/** One problem found in a drill file. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  /** Dotted path into the document, e.g. `scenarios[0].params.count`. */
  path: string;
  message: string;
}

/** What validation reads of a scenario; a scenario definition is one. */
export interface ScenarioSpec {
  name: string;
  tier?: Tier;
  dataClass?: DataClass;
  /** Capabilities the target must provide. */
  requires: readonly string[];
  params: z.ZodType;
  validate?(params: Record<string, unknown>, target: Target): { path: string; message: string }[];
}

export type ScenarioCatalog = ReadonlyMap<string, ScenarioSpec>;

/** What a target of this kind provides; handed in by the caller, who knows the target kinds. */
export type CapabilitiesOf = (target: Target) => readonly string[];
