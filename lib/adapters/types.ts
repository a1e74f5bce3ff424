/**
 * The interfaces the engine and scenarios see. Adapters implement them at the edge (lab processes,
 * Kubernetes, PostgreSQL, Blob, shell); the engine never imports an SDK.
 */

/** A running copy of the service: a lab replica process or, on Kubernetes, a pod. */
export interface Replica {
  /** Stable name, e.g. `orders-7f9c-2` or a pod name. */
  name: string;
  labels: Record<string, string>;
  /** Process id for lab replicas; undefined on Kubernetes. */
  pid?: number;
  ready: boolean;
  /** ISO time the replica started. */
  startedAt: string;
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

/** Runbook commands as faults or checks (zx under the hood). */
export interface ExecAdapter {
  run(command: string, options: { timeoutMs: number; signal: AbortSignal; env?: Record<string, string>; cwd?: string }): Promise<ExecResult>;
}
