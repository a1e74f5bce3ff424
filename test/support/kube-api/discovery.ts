/**
 * The resources this server serves and the discovery documents that describe them. kubectl builds its
 * REST mapping (`deploy` -> deployments.apps/v1) from these, so names, kinds and short names must be right.
 */

export interface ResourceType {
  group: string;
  version: string;
  /** Plural, as in URLs and RBAC rules. */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  subresources: string[];
  /** A custom resource (served for a CRD): no strategic merge patch, no unconditional update. */
  custom?: boolean;
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: ResourceType[] = [
  {
    group: '',
    version: 'v1',
    resource: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    subresources: ['status'],
  },
  {
    group: '',
    version: 'v1',
    resource: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    subresources: ['status'],
  },
  {
    // Only stored and served: what the drill reads from one is its halt switch (drill-halt).
    group: '',
    version: 'v1',
    resource: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    subresources: [],
  },
  {
    // Stored and served: CloudNativePG's operator reads the object-store credentials a Cluster names from one.
    group: '',
    version: 'v1',
    resource: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    subresources: [],
  },
  {
    // Stored and served; with a CloudNativePG runtime, one Service's selector decides which instance its proxy reaches.
    group: '',
    version: 'v1',
    resource: 'services',
    singular: 'service',
    kind: 'Service',
    namespaced: true,
    shortNames: ['svc'],
    subresources: ['status'],
  },
  {
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    subresources: ['scale', 'status'],
  },
  {
    group: 'apps',
    version: 'v1',
    resource: 'replicasets',
    singular: 'replicaset',
    kind: 'ReplicaSet',
    namespaced: true,
    shortNames: ['rs'],
    subresources: ['scale', 'status'],
  },
  {
    group: 'apps',
    version: 'v1',
    resource: 'statefulsets',
    singular: 'statefulset',
    kind: 'StatefulSet',
    namespaced: true,
    shortNames: ['sts'],
    subresources: ['scale', 'status'],
  },
  {
    group: 'autoscaling',
    version: 'v2',
    resource: 'horizontalpodautoscalers',
    singular: 'horizontalpodautoscaler',
    kind: 'HorizontalPodAutoscaler',
    namespaced: true,
    shortNames: ['hpa'],
    subresources: ['status'],
  },
  // CloudNativePG's custom resource (test/support/kube-api/cnpg.ts plays its operator).
  {
    group: 'postgresql.cnpg.io',
    version: 'v1',
    resource: 'clusters',
    singular: 'cluster',
    kind: 'Cluster',
    namespaced: true,
    subresources: ['status'],
    custom: true,
  },
];

export function groupVersion(t: { group: string; version: string }): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

export function findResource(group: string, version: string, resource: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

export function resourceOfKind(apiVersion: string | undefined, kind: string | undefined): ResourceType | undefined {
  return RESOURCES.find((r) => groupVersion(r) === apiVersion && r.kind === kind);
}

export function resourceByName(resource: string): ResourceType {
  const t = RESOURCES.find((r) => r.resource === resource);
  if (!t) throw new Error(`kube-api: no resource "${resource}" is served`);
  return t;
}

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.4',
  gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335',
  gitTreeState: 'clean',
  buildDate: '2025-04-22T16:02:27Z',
  goVersion: 'go1.23.6',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function groups(): string[] {
  return [...new Set(RESOURCES.filter((r) => r.group !== '').map((r) => r.group))];
}

function apiGroup(name: string) {
  const versions = [...new Set(RESOURCES.filter((r) => r.group === name).map((r) => r.version))].map((version) => ({
    groupVersion: `${name}/${version}`,
    version,
  }));
  return { name, versions, preferredVersion: versions[0]! };
}

function resourceList(group: string, version: string) {
  const resources = RESOURCES.filter((r) => r.group === group && r.version === version).flatMap((r) => [
    {
      name: r.resource,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
      ...(r.shortNames ? { shortNames: r.shortNames } : {}),
      ...(r.resource !== 'namespaces' ? { categories: ['all'] } : {}),
    },
    ...r.subresources.map((sub) => ({
      name: `${r.resource}/${sub}`,
      singularName: '',
      namespaced: r.namespaced,
      // The scale subresource speaks autoscaling/v1 Scale, whatever group its parent lives in.
      ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1', kind: 'Scale' } : { kind: r.kind }),
      verbs: ['get', 'patch', 'update'],
    })),
  ]);
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

/** The discovery document at `path`, or undefined if the path is not a discovery path. */
export function discovery(path: string, serverAddress: string): unknown | undefined {
  if (path === '/version' || path === '/version/') return SERVER_VERSION;
  if (path === '/api')
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  if (path === '/api/v1') return resourceList('', 'v1');
  if (path === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups().map(apiGroup) };
  const g = /^\/apis\/([^/]+)$/.exec(path);
  if (g && groups().includes(g[1]!)) return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(g[1]!) };
  const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
  if (gv && RESOURCES.some((r) => r.group === gv[1] && r.version === gv[2])) return resourceList(gv[1]!, gv[2]!);
  return undefined;
}
