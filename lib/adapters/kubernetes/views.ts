/**
 * What the adapter reads from pods and workloads, in one shape whether it arrived as a client-node model from
 * a list (timestamps as Dates) or as raw JSON from a watch (timestamps as strings).
 */
import type { V1LabelSelector } from '@kubernetes/client-node';
import { selectorToString } from './selector.ts';

export interface PodLike {
  metadata?: {
    name?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    creationTimestamp?: Date | string;
    deletionTimestamp?: Date | string;
    finalizers?: string[];
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
  status?: { startTime?: Date | string; conditions?: { type: string; status: string }[] };
}

export interface WorkloadLike {
  metadata?: {
    name?: string;
    generation?: number;
    resourceVersion?: string;
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
  spec?: { replicas?: number; selector?: V1LabelSelector; template?: { metadata?: { labels?: Record<string, string> } } };
  status?: { readyReplicas?: number; observedGeneration?: number };
}

export interface PodView {
  name: string;
  uid: string;
  resourceVersion?: string;
  labels: Record<string, string>;
  /** Ready and not terminating: a terminating pod is out of its Service's endpoints, whatever its condition says. */
  ready: boolean;
  startedAt: string;
  controller?: { kind: string; name: string };
  /** Being deleted (deletionTimestamp set), with the finalizers that still hold the object, if any. */
  terminating?: { finalizers: string[] };
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'ReplicaSet';

export interface WorkloadView {
  kind: WorkloadKind;
  name: string;
  resourceVersion?: string;
  desired: number;
  readyReplicas: number;
  generation: number;
  observedGeneration: number;
  selector: string;
}

export const RESOURCE_OF: Record<WorkloadKind, string> = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  ReplicaSet: 'replicasets',
};

function iso(v: Date | string | undefined): string {
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'string' ? new Date(v).toISOString() : new Date(0).toISOString();
}

export function podView(p: PodLike): PodView {
  const m = p.metadata ?? {};
  const ref = m.ownerReferences?.find((r) => r.controller);
  const conditionReady = (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  return {
    name: m.name ?? '',
    uid: m.uid ?? '',
    resourceVersion: m.resourceVersion,
    labels: m.labels ?? {},
    ready: conditionReady && !m.deletionTimestamp,
    startedAt: iso(p.status?.startTime ?? m.creationTimestamp),
    ...(ref ? { controller: { kind: ref.kind, name: ref.name } } : {}),
    ...(m.deletionTimestamp ? { terminating: { finalizers: [...(m.finalizers ?? [])] } } : {}),
  };
}

export function workloadView(kind: WorkloadKind, w: WorkloadLike): WorkloadView {
  return {
    kind,
    name: w.metadata?.name ?? '',
    resourceVersion: w.metadata?.resourceVersion,
    desired: w.spec?.replicas ?? 1,
    readyReplicas: w.status?.readyReplicas ?? 0,
    generation: w.metadata?.generation ?? 0,
    observedGeneration: w.status?.observedGeneration ?? 0,
    selector: selectorToString(w.spec?.selector),
  };
}

export function ownerName(w: { kind: string; name: string }): string {
  return `${w.kind.toLowerCase()}/${w.name}`;
}
