/** The Kubernetes adapter: the only module (with its siblings) that imports @kubernetes/client-node. */
export { createKubeReplicas, type KubeReplicaSetAdapter, type KubeReplicasOptions } from './replicas.ts';
export { kubeConfigFor, kubeConfigFromFile } from './config.ts';
export { KubeError, KubeGuardrailError, roleRule, type KubeCall, type KubeErrorReason } from './errors.ts';
