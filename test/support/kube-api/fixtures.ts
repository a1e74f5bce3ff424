/** Manifests for seeding the server, shaped like what `kubectl create deployment` would submit. */
import type { KubeObject } from './types.ts';

export function namespace(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

export interface WorkloadSpec {
  name: string;
  namespace: string;
  replicas: number;
  /** Pod labels; the selector is all of them. Default `{ app: name }`. */
  labels?: Record<string, string>;
  image?: string;
  terminationGracePeriodSeconds?: number;
}

function podTemplate(w: WorkloadSpec, labels: Record<string, string>) {
  return {
    metadata: { labels },
    spec: {
      containers: [
        { name: 'app', image: w.image ?? `registry.example/${w.name}:1.0.0`, ports: [{ containerPort: 8080, protocol: 'TCP' }] },
      ],
      terminationGracePeriodSeconds: w.terminationGracePeriodSeconds ?? 30,
    },
  };
}

export function deployment(w: WorkloadSpec): KubeObject {
  const labels = w.labels ?? { app: w.name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: w.name, namespace: w.namespace, labels },
    spec: { replicas: w.replicas, selector: { matchLabels: labels }, template: podTemplate(w, labels) },
  };
}

export function statefulSet(w: WorkloadSpec): KubeObject {
  const labels = w.labels ?? { app: w.name };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: w.name, namespace: w.namespace, labels },
    spec: { replicas: w.replicas, serviceName: w.name, selector: { matchLabels: labels }, template: podTemplate(w, labels) },
  };
}

export function hpa(o: {
  name: string;
  namespace: string;
  target: string;
  min: number;
  max: number;
  cpu?: number;
  memory?: number;
}): KubeObject {
  const metric = (name: string, averageUtilization: number) => ({
    type: 'Resource',
    resource: { name, target: { type: 'Utilization', averageUtilization } },
  });
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: o.target },
      minReplicas: o.min,
      maxReplicas: o.max,
      metrics: [metric('cpu', o.cpu ?? 70), ...(o.memory !== undefined ? [metric('memory', o.memory)] : [])],
    },
  };
}
