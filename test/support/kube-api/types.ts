/**
 * Wire shapes of the Kubernetes API, as loose as the server needs them. Objects are kept as the JSON the
 * API speaks (timestamps are RFC 3339 strings), not as client-node's model classes (which hold Dates).
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [key: string]: unknown;
}

/**
 * Any API object. `spec` and `status` are `any` on purpose: they are free-form JSON owned by each resource,
 * and typing every resource's schema would make this test server larger than what it tests.
 */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: any;
  status?: any;
  [key: string]: unknown;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
  lastProbeTime?: string | null;
}

/** One RBAC rule in the shape of a Role rule; `namespaces` stands in for which RoleBinding grants it. */
export interface RbacRule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  /** Namespaces the rule applies in; omitted = every namespace and cluster scope (a ClusterRoleBinding). */
  namespaces?: string[];
  resourceNames?: string[];
}

export interface RbacUser {
  /** As the API server names it: `system:serviceaccount:drill:drill`. */
  user: string;
  rules: RbacRule[];
}

export interface KubeApiOptions {
  /** Objects created at start (namespaces are created on demand for namespaced objects). */
  objects?: KubeObject[];
  /** Bearer token -> who and what they may do. Absent or empty = no authentication, everything allowed. */
  tokens?: Record<string, RbacUser>;
  /** How long the ReplicaSet controller waits before creating a missing pod. */
  replaceDelayMs?: number;
  /** How long a new pod takes from created to Running and Ready. */
  readyDelayMs?: number;
  /** How long a container takes to exit after SIGTERM; a graceful delete ends at min(this, grace period). */
  shutdownMs?: number;
  /**
   * How long the CloudNativePG operator keeps `status.targetPrimary: "pending"` in a failover before it elects
   * (the real one waits there until every replica's WAL receiver has stopped). Default 0: the next reconcile.
   */
  cnpgElectDelayMs?: number;
  /** Watch events kept for resuming watches; a watch from an older resourceVersion gets 410 Expired. */
  eventWindow?: number;
  /** Interval of BOOKMARK events on watches that asked for them. The real server uses about a minute. */
  bookmarkIntervalMs?: number;
  /** Wait until seeded Deployments have all replicas ready before resolving. Default true. */
  waitForSeed?: boolean;
  /**
   * Real processes behind CloudNativePG instance pods (a PostgreSQL per pod): without it the operator only
   * flips labels and status, as before. See cnpg-postgres.ts.
   */
  cnpgRuntime?: CnpgRuntime;
}

/** What the kubelet and the miniature CloudNativePG operator ask of real instance processes. */
export interface CnpgRuntime {
  /** Handed the server's state once it runs. */
  attach(server: CnpgRuntimeHost): void;
  /** An instance pod was bound to the node: start its PostgreSQL; resolve when it may be marked Ready (a replica: streaming). */
  start(pod: KubeObject): Promise<void>;
  /** The pod was removed (grace 0: its processes die now) or is terminating gracefully (a fast shutdown). */
  stop(pod: KubeObject, graceful: boolean): void;
  /** Make `target` the cluster's primary (the old one dead, or alive for a switchover); resolve once it takes writes. */
  promote(cluster: KubeObject, target: string, old: string): Promise<void>;
  /**
   * The candidate a failover should promote: the one that received the most WAL, as the operator learns from
   * each instance manager. Undefined when none answers (the operator keeps its first choice).
   */
  mostAdvanced?(candidates: string[]): Promise<string | undefined>;
  /**
   * The instance's pod is gone but its PostgreSQL still runs (a force-deleted pod whose containers have not
   * died yet): its WAL senders still stream to the replicas, and the operator's election waits for them.
   */
  lingering?(instance: string): boolean;
  /**
   * Fencing (the Cluster's `cnpg.io/fencedInstances` annotation): the instance's postmaster is shut down and its pod
   * kept running but not Ready, its data untouched; lifted, it starts again as it was and turns Ready.
   */
  fence?(pod: KubeObject, fenced: boolean): Promise<void>;
}

export interface CnpgRuntimeHost {
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Called after every change to any object (an endpoints controller follows pods this way). */
  subscribe(listener: () => void): () => void;
  /** The kubelet's readiness report for a running pod (a replica rejoining is running but not Ready). */
  setPodReady(namespace: string, name: string, ready: boolean): void;
  /** A Job's pod (`<instance>-<role>`) ran until now: Succeeded, or Failed, with its container's start and end. */
  finishJob(namespace: string, instance: string, role: string, ok: boolean): void;
  /** Failures of the runtime, beside the controllers' own: a test asserts there were none. */
  readonly errors: Error[];
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  verb: string;
  resource: string;
  namespace?: string;
  name?: string;
  user?: string;
  /** Content-Type of the request body, for writes: tells which patch format a client used. */
  contentType?: string;
  status: number;
}
