/**
 * What scenarios see of a Kubernetes target beyond pods: Deployments and their rollout history, autoscalers,
 * Helm, and the namespace allowlist they all sit behind. Types only: the engine and scenarios import this
 * file without pulling in the client library.
 */

/** One entry of `kubectl rollout history`: a ReplicaSet of the Deployment and the template it runs. */
export interface DeploymentRevision {
  revision: number;
  replicaSet: string;
  /** Container images of the pod template, in container order. */
  images: string[];
  /** `kubernetes.io/change-cause`, when the deploy recorded one. */
  changeCause?: string;
  createdAt: string;
}

/** A Deployment's rollout as `kubectl rollout status` judges it. */
export interface RolloutState {
  deployment: string;
  namespace: string;
  /** The revision the Deployment is at (its `deployment.kubernetes.io/revision`). */
  revision: number;
  images: string[];
  desired: number;
  updated: number;
  ready: number;
  available: number;
  /** Pods of any revision (old ones still terminating count). */
  total: number;
  /** The controller has seen the latest spec and every replica is updated and available, no old one left. */
  complete: boolean;
  /**
   * The Deployment controller gave up on this rollout: its Progressing condition has reason ProgressDeadlineExceeded
   * (no progress for spec.progressDeadlineSeconds). The condition's message, e.g. `ReplicaSet "x" has timed out progressing.`
   */
  deadlineExceeded?: string;
}

export interface RollbackResult {
  from: DeploymentRevision;
  to: DeploymentRevision;
  /** ISO time the patch was accepted. */
  patchedAt: string;
}

export interface KubeDeployments {
  readonly namespace: string;
  /** The revision the Deployment runs and its history, oldest first (current included). */
  history(name: string, signal?: AbortSignal): Promise<{ current: DeploymentRevision; history: DeploymentRevision[]; paused: boolean }>;
  /** The revision `rollout undo --to-revision` would go to: `toRevision`, or the one before the current (0). Read-only. */
  target(name: string, toRevision: number, signal?: AbortSignal): Promise<{ from: DeploymentRevision; to: DeploymentRevision }>;
  /** `kubectl rollout undo deployment/NAME [--to-revision=N]`: patch the template back to that revision's. */
  rollbackTo(name: string, toRevision: number, signal?: AbortSignal): Promise<RollbackResult>;
  rollout(name: string, signal?: AbortSignal): Promise<RolloutState>;
  /** Watch (not poll) until the rollout is complete; rejects on timeout (exit 1: the system did not roll out) or abort. */
  waitRollout(name: string, options: { timeoutMs: number; signal: AbortSignal }): Promise<RolloutState>;
}

/** A HorizontalPodAutoscaler (autoscaling/v2) as the replica-floor policy reads it. */
export interface AutoscalerView {
  name: string;
  target: { kind: string; name: string };
  minReplicas: number;
  maxReplicas: number;
  /** Target average utilisation in percent, null when the HPA does not scale on it. */
  cpuPercent: number | null;
  memoryPercent: number | null;
  currentReplicas: number | null;
}

export interface KubeAutoscalers {
  readonly namespace: string;
  /** The HPAs whose scaleTargetRef is this Deployment (normally one). */
  forDeployment(name: string, signal?: AbortSignal): Promise<AutoscalerView[]>;
  /** spec.replicas and readyReplicas of the Deployment. */
  deploymentReplicas(name: string, signal?: AbortSignal): Promise<{ desired: number; ready: number }>;
}

export interface KubeTargetAdapters {
  /** `kube:<context>/<namespace>`, for plans and messages. */
  readonly where: string;
  /** The namespace actions act in unless a scenario names another allowed one. */
  readonly namespace: string;
  readonly allowedNamespaces: string[];
  readonly blastRadius: number;
  /** Deployments of an allowed namespace; a namespace outside the allowlist (or kube-system) throws before any call. */
  deployments(namespace?: string): KubeDeployments;
  autoscalers(namespace?: string): KubeAutoscalers;
  /** Throws the guardrail error for a namespace the drill may not touch. */
  checkNamespace(namespace: string): void;
  /** The kubeconfig and context Helm and kubectl should use, for runbook commands. */
  readonly cli: { kubeconfig?: string; context?: string };
}
