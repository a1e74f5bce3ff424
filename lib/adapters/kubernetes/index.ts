/** The Kubernetes adapter: the only module (with its siblings) that imports @kubernetes/client-node. */
export { createKubeReplicas, type KubeReplicaSetAdapter, type KubeReplicasOptions } from './replicas.ts';
export { kubeConfigFor, kubeConfigFromFile } from './config.ts';
export { KubeError, KubeGuardrailError, roleRule, type KubeCall, type KubeErrorReason } from './errors.ts';
export { createKubeDeployments, rolloutState } from './deployments.ts';
export { createKubeAutoscalers } from './hpa.ts';
export { readHaltConfigMap, HALT_CONFIGMAP, type HaltConfigMap } from './halt.ts';
export { kubeAdapters, kubeAdaptersFromDetails, checkKubeAccess, type KubeTargetConfig, type OpenedKube } from './target.ts';
export type {
  AutoscalerView,
  DeploymentRevision,
  KubeAutoscalers,
  KubeDeployments,
  KubeTargetAdapters,
  RollbackResult,
  RolloutState,
} from './types.ts';
