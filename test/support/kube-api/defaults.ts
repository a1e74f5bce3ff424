/**
 * Defaulting and validation on create and update, the parts clients observe: defaulted fields they read
 * back (terminationGracePeriodSeconds, strategy, replicas) and the 422s they must handle.
 */
import { invalid, type StatusCause } from './status.ts';
import { matchRequirements, requirementsOf } from './selectors.ts';
import type { ResourceType } from './discovery.ts';
import type { KubeObject } from './types.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function defaultPodSpec(spec: any): any {
  const s = spec ?? {};
  s.restartPolicy ??= 'Always';
  s.terminationGracePeriodSeconds ??= 30;
  s.dnsPolicy ??= 'ClusterFirst';
  s.schedulerName ??= 'default-scheduler';
  s.serviceAccountName ??= 'default';
  s.securityContext ??= {};
  for (const c of s.containers ?? []) {
    c.imagePullPolicy ??= String(c.image ?? '').endsWith(':latest') || !String(c.image ?? '').includes(':') ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
  }
  return s;
}

function defaultTemplate(template: any): void {
  if (!template) return;
  template.metadata ??= {};
  template.metadata.creationTimestamp ??= null;
  template.spec = defaultPodSpec(template.spec);
}

export function applyDefaults(resource: string, o: KubeObject): void {
  switch (resource) {
    case 'pods':
      o.spec = defaultPodSpec(o.spec);
      o.status ??= { phase: 'Pending', qosClass: 'BestEffort' };
      break;
    case 'namespaces':
      o.spec ??= { finalizers: ['kubernetes'] };
      o.status = { phase: 'Active' };
      o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name! };
      break;
    case 'deployments':
      o.spec ??= {};
      o.spec.replicas ??= 1;
      o.spec.revisionHistoryLimit ??= 10;
      o.spec.progressDeadlineSeconds ??= 600;
      o.spec.strategy ??= { type: 'RollingUpdate' };
      if (o.spec.strategy.type === 'RollingUpdate') o.spec.strategy.rollingUpdate ??= { maxSurge: '25%', maxUnavailable: '25%' };
      defaultTemplate(o.spec.template);
      o.status ??= {};
      break;
    case 'replicasets':
      o.spec ??= {};
      o.spec.replicas ??= 1;
      defaultTemplate(o.spec.template);
      o.status ??= { replicas: 0 };
      break;
    case 'statefulsets':
      o.spec ??= {};
      o.spec.replicas ??= 1;
      o.spec.podManagementPolicy ??= 'OrderedReady';
      o.spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
      o.spec.revisionHistoryLimit ??= 10;
      defaultTemplate(o.spec.template);
      o.status ??= { replicas: 0, availableReplicas: 0 };
      break;
    case 'secrets':
      // The API server stores stringData as base64 data and never returns stringData.
      o.type ??= 'Opaque';
      if (o.stringData && typeof o.stringData === 'object') {
        const data = { ...((o.data as Record<string, string> | undefined) ?? {}) };
        for (const [k, v] of Object.entries(o.stringData as Record<string, string>)) data[k] = Buffer.from(String(v)).toString('base64');
        o.data = data;
        delete o.stringData;
      }
      break;
    case 'services':
      o.spec ??= {};
      o.spec.type ??= 'ClusterIP';
      o.spec.sessionAffinity ??= 'None';
      for (const p of o.spec.ports ?? []) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port;
      }
      o.status ??= { loadBalancer: {} };
      break;
    case 'horizontalpodautoscalers':
      o.spec ??= {};
      o.spec.minReplicas ??= 1;
      o.status ??= { currentReplicas: 0, desiredReplicas: 0 };
      break;
  }
}

/** 422 for what the real validation would refuse among the fields this server acts on. */
export function validate(t: ResourceType, o: KubeObject): void {
  const causes: StatusCause[] = [];
  const name = o.metadata.name ?? '';
  const nameRule = t.resource === 'namespaces' ? DNS1123_LABEL : DNS1123_SUBDOMAIN;
  if (!name)
    causes.push({ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else if (!nameRule.test(name) || name.length > 253) {
    causes.push({
      reason: 'FieldValueInvalid',
      field: 'metadata.name',
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    });
  }
  if (t.resource === 'pods' && !(o.spec?.containers?.length > 0)) {
    causes.push({ reason: 'FieldValueRequired', field: 'spec.containers', message: 'Required value' });
  }
  if (['deployments', 'replicasets', 'statefulsets'].includes(t.resource)) {
    const replicas = o.spec?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      causes.push({
        reason: 'FieldValueInvalid',
        field: 'spec.replicas',
        message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
      });
    }
    const selector = o.spec?.selector;
    if (!selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)) {
      causes.push({ reason: 'FieldValueRequired', field: 'spec.selector', message: 'Required value' });
    } else if (!matchRequirements(requirementsOf(selector), o.spec?.template?.metadata?.labels)) {
      causes.push({
        reason: 'FieldValueInvalid',
        field: 'spec.template.metadata.labels',
        message: `Invalid value: ${JSON.stringify(o.spec?.template?.metadata?.labels ?? {})}: \`selector\` does not match template \`labels\``,
      });
    }
    if (!(o.spec?.template?.spec?.containers?.length > 0)) {
      causes.push({ reason: 'FieldValueRequired', field: 'spec.template.spec.containers', message: 'Required value' });
    }
  }
  if (t.resource === 'horizontalpodautoscalers') {
    const { minReplicas, maxReplicas } = o.spec ?? {};
    if (typeof maxReplicas !== 'number' || maxReplicas < 1)
      causes.push({
        reason: 'FieldValueInvalid',
        field: 'spec.maxReplicas',
        message: `Invalid value: ${JSON.stringify(maxReplicas)}: must be greater than or equal to 1`,
      });
    else if (typeof minReplicas === 'number' && minReplicas > maxReplicas) {
      causes.push({
        reason: 'FieldValueInvalid',
        field: 'spec.maxReplicas',
        message: `Invalid value: ${maxReplicas}: must be greater than or equal to \`minReplicas\``,
      });
    }
    if (!o.spec?.scaleTargetRef?.name)
      causes.push({ reason: 'FieldValueRequired', field: 'spec.scaleTargetRef.name', message: 'Required value' });
  }
  if (t.resource === 'clusters') causes.push(...cnpgClusterProblems(o));
  if (causes.length > 0) throw invalid({ kind: t.kind, group: t.group, resource: t.resource, name }, causes);
}

const SECRET_REF_FIELDS = ['connectionString', 'storageAccount', 'storageKey', 'storageSasToken'] as const;
const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/**
 * What the Cluster CRD's OpenAPI schema and CloudNativePG's validating webhook refuse in a recovery bootstrap
 * (api/v1 cluster_types.go: BootstrapRecovery.source names an ExternalCluster; barman-cloud's AzureCredentials
 * holds SecretKeySelectors `{name, key}`, so an inline string is a type error of the schema; RecoveryTarget.targetLSN
 * is checked by the webhook). Only the fields the stand-in acts on are checked.
 */
function cnpgClusterProblems(o: KubeObject): StatusCause[] {
  const out: StatusCause[] = [];
  const externals: any[] = Array.isArray(o.spec?.externalClusters) ? o.spec.externalClusters : [];
  externals.forEach((e, i) => {
    const base = `spec.externalClusters[${i}]`;
    if (typeof e?.name !== 'string' || e.name === '')
      out.push({ reason: 'FieldValueRequired', field: `${base}.name`, message: 'Required value' });
    const store = e?.barmanObjectStore;
    if (store === undefined) return;
    if (typeof store.destinationPath !== 'string' || store.destinationPath === '')
      out.push({ reason: 'FieldValueRequired', field: `${base}.barmanObjectStore.destinationPath`, message: 'Required value' });
    const az = store.azureCredentials;
    if (az === undefined) return;
    for (const k of SECRET_REF_FIELDS) {
      const v = az[k];
      if (v === undefined) continue;
      const field = `${base}.barmanObjectStore.azureCredentials.${k}`;
      if (v === null || typeof v !== 'object' || Array.isArray(v))
        out.push({
          reason: 'FieldValueTypeInvalid',
          field,
          message: `Invalid value: "${typeof v}": ${field} in body must be of type object: "${typeof v}"`,
        });
      else
        for (const part of ['name', 'key'])
          if (typeof v[part] !== 'string' || v[part] === '')
            out.push({ reason: 'FieldValueRequired', field: `${field}.${part}`, message: 'Required value' });
    }
    for (const k of Object.keys(az))
      if (![...SECRET_REF_FIELDS, 'inheritFromAzureAD', 'useDefaultAzureCredentials'].includes(k))
        out.push({
          reason: 'FieldValueNotSupported',
          field: `${base}.barmanObjectStore.azureCredentials.${k}`,
          message: 'field not declared in schema',
        });
  });
  const recovery = o.spec?.bootstrap?.recovery;
  if (recovery) {
    if (recovery.source !== undefined && !externals.some((e) => e?.name === recovery.source))
      out.push({
        reason: 'FieldValueInvalid',
        field: 'spec.bootstrap.recovery.source',
        message: `Invalid value: "${recovery.source}": External cluster ${recovery.source} not found`,
      });
    const target = recovery.recoveryTarget;
    if (target?.targetLSN !== undefined && !(typeof target.targetLSN === 'string' && LSN.test(target.targetLSN)))
      out.push({
        reason: 'FieldValueInvalid',
        field: 'spec.bootstrap.recovery.recoveryTarget.targetLSN',
        message: `Invalid value: ${JSON.stringify(target.targetLSN)}: Invalid targetLSN`,
      });
  }
  return out;
}
