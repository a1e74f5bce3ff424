/**
 * Server-side printing: `kubectl get` asks for `as=Table;g=meta.k8s.io;v=v1` and prints the columns the
 * server sends. Columns follow the API server's printers for the resources kubectl users look at here.
 */
import { selectorString } from './selectors.ts';
import type { KubeObject } from './types.ts';

interface Column {
  name: string;
  type: string;
  format?: string;
  description: string;
  priority: number;
  cell: (o: KubeObject) => string | number;
}

/** k8s.io/apimachinery's HumanDuration, the `AGE` column's spelling. */
export function humanAge(created: string | undefined): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(created ?? '')) / 1000)) || 0;
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

const NAME: Column = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
  cell: (o) => o.metadata.name ?? '',
};
const AGE: Column = {
  name: 'Age',
  type: 'string',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  priority: 0,
  cell: (o) => humanAge(o.metadata.creationTimestamp),
};

function podStatus(o: KubeObject): string {
  if (o.metadata.deletionTimestamp) return 'Terminating';
  const waiting = (o.status?.containerStatuses ?? []).find((c: { state?: { waiting?: { reason?: string } } }) => c.state?.waiting?.reason);
  return waiting?.state.waiting.reason ?? o.status?.phase ?? 'Unknown';
}

const COLUMNS: Record<string, Column[]> = {
  pods: [
    NAME,
    {
      name: 'Ready',
      type: 'string',
      description: 'The aggregate readiness state of this pod for accepting traffic.',
      priority: 0,
      cell: (o) =>
        `${(o.status?.containerStatuses ?? []).filter((c: { ready: boolean }) => c.ready).length}/${(o.spec?.containers ?? []).length}`,
    },
    { name: 'Status', type: 'string', description: 'The aggregate status of the containers in this pod.', priority: 0, cell: podStatus },
    {
      name: 'Restarts',
      type: 'string',
      description:
        'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.',
      priority: 0,
      cell: () => '0',
    },
    AGE,
    {
      name: 'IP',
      type: 'string',
      description: 'The IP address assigned to the pod',
      priority: 1,
      cell: (o) => o.status?.podIP ?? '<none>',
    },
    {
      name: 'Node',
      type: 'string',
      description: 'The name of the node where the pod is running',
      priority: 1,
      cell: (o) => o.spec?.nodeName ?? '<none>',
    },
    {
      name: 'Nominated Node',
      type: 'string',
      description: 'The name of the node where the pod is nominated to run',
      priority: 1,
      cell: () => '<none>',
    },
    { name: 'Readiness Gates', type: 'string', description: 'The readiness gates of the pod', priority: 1, cell: () => '<none>' },
  ],
  deployments: [
    NAME,
    {
      name: 'Ready',
      type: 'string',
      description: 'Number of the pod with ready state',
      priority: 0,
      cell: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`,
    },
    {
      name: 'Up-to-date',
      type: 'integer',
      description: 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.',
      priority: 0,
      cell: (o) => o.status?.updatedReplicas ?? 0,
    },
    {
      name: 'Available',
      type: 'integer',
      description: 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.',
      priority: 0,
      cell: (o) => o.status?.availableReplicas ?? 0,
    },
    AGE,
    {
      name: 'Containers',
      type: 'string',
      description: 'Names of each container in the template.',
      priority: 1,
      cell: (o) => containers(o, 'name'),
    },
    {
      name: 'Images',
      type: 'string',
      description: 'Images referenced by each container in the template.',
      priority: 1,
      cell: (o) => containers(o, 'image'),
    },
    {
      name: 'Selector',
      type: 'string',
      description: 'Label selector for pods.',
      priority: 1,
      cell: (o) => selectorString(o.spec?.selector),
    },
  ],
  replicasets: [
    NAME,
    { name: 'Desired', type: 'integer', description: 'Number of desired pods.', priority: 0, cell: (o) => o.spec?.replicas ?? 0 },
    { name: 'Current', type: 'integer', description: 'Number of actual replicas.', priority: 0, cell: (o) => o.status?.replicas ?? 0 },
    {
      name: 'Ready',
      type: 'integer',
      description: 'The number of ready replicas for this replica set.',
      priority: 0,
      cell: (o) => o.status?.readyReplicas ?? 0,
    },
    AGE,
  ],
  statefulsets: [
    NAME,
    {
      name: 'Ready',
      type: 'string',
      description: 'Number of the pod with ready state',
      priority: 0,
      cell: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`,
    },
    AGE,
  ],
  horizontalpodautoscalers: [
    NAME,
    {
      name: 'Reference',
      type: 'string',
      description: 'Reference to the scaled target.',
      priority: 0,
      cell: (o) => `${o.spec?.scaleTargetRef?.kind}/${o.spec?.scaleTargetRef?.name}`,
    },
    {
      name: 'Targets',
      type: 'string',
      description: 'Current and target metric values.',
      priority: 0,
      cell: (o) =>
        (o.spec?.metrics ?? [])
          .map((m: { resource?: { name: string; target?: { averageUtilization?: number } } }) => {
            const cur = (o.status?.currentMetrics ?? []).find(
              (c: { resource?: { name: string } }) => c.resource?.name === m.resource?.name,
            );
            return `${m.resource?.name}: ${cur?.resource?.current?.averageUtilization ?? '<unknown>'}%/${m.resource?.target?.averageUtilization}%`;
          })
          .join(', ') || '<none>',
    },
    { name: 'MinPods', type: 'integer', description: 'Minimum replicas.', priority: 0, cell: (o) => o.spec?.minReplicas ?? 1 },
    { name: 'MaxPods', type: 'integer', description: 'Maximum replicas.', priority: 0, cell: (o) => o.spec?.maxReplicas ?? 0 },
    { name: 'Replicas', type: 'integer', description: 'Current replicas.', priority: 0, cell: (o) => o.status?.currentReplicas ?? 0 },
    AGE,
  ],
  namespaces: [
    NAME,
    { name: 'Status', type: 'string', description: 'The status of the namespace', priority: 0, cell: (o) => o.status?.phase ?? '' },
    AGE,
  ],
};

function containers(o: KubeObject, field: 'name' | 'image'): string {
  return (o.spec?.template?.spec?.containers ?? []).map((c: Record<string, string>) => c[field]).join(',');
}

/** True when the Accept header asks for the Table form (kubectl's default `get` output). */
export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? '') && /g=meta\.k8s\.io/.test(accept ?? '');
}

export function toTable(resource: string, objects: KubeObject[], resourceVersion: string, includeObject: string | null): unknown {
  const cols = COLUMNS[resource] ?? [NAME, AGE];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: cols.map(({ cell: _, ...def }) => ({ format: '', ...def })),
    rows: objects.map((o) => ({
      cells: cols.map((c) => c.cell(o)),
      object:
        includeObject === 'Object'
          ? o
          : includeObject === 'None'
            ? undefined
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
