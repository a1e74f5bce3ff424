/**
 * The recovery Cluster a data-loss drill asks CloudNativePG for, as plain JSON (no SDK here, so it is unit-tested
 * alone), and where an object store's `destinationPath` points in Blob terms.
 *
 * Field names are CloudNativePG's postgresql.cnpg.io/v1 API (cloudnative-pg api/v1/cluster_types.go and the
 * barman-cloud API it embeds; docs https://cloudnative-pg.io/documentation/current/recovery/ "Recovery from an
 * object store", https://cloudnative-pg.io/documentation/current/appendixes/object_stores/ "Azure Blob Storage"):
 * - `spec.bootstrap.recovery.source`: the name of an entry of `spec.externalClusters` (BootstrapRecovery.Source);
 * - `externalClusters[].barmanObjectStore`: `destinationPath`, `serverName` (the folder the source cluster
 *   archived under; default the external cluster's name), `azureCredentials`;
 * - `azureCredentials.{connectionString,storageAccount,storageKey,storageSasToken}`: each a SecretKeySelector
 *   `{ name, key }`, never a value: the drill file names Secrets, the operator reads them in the cluster;
 * - `recoveryTarget.targetLSN` with `exclusive: true` (RecoveryTarget.TargetLSN, Exclusive: "stop just before
 *   the recovery target"); no recoveryTarget at all is recovery to the end of the archived WAL.
 */
import type { RestoreTarget } from '../types.ts';

export const CNPG_API_VERSION = 'postgresql.cnpg.io/v1';
/** Labels and annotations the drill puts on what it creates: how a rerun finds its own Cluster, and only its own. */
export const DRILL_RUN_LABEL = 'drill.dev/restore-of';
export const DRILL_RUN_ANNOTATION = 'drill.dev/run-id';

export interface SecretKeyRef {
  name: string;
  key: string;
}

/** Object-store credentials as Secret references only (barman-cloud AzureCredentials). */
export interface AzureSecretRefs {
  connectionString?: SecretKeyRef;
  storageAccount?: SecretKeyRef;
  storageKey?: SecretKeyRef;
  storageSasToken?: SecretKeyRef;
}

export interface CnpgRestoreSettings {
  /** Blob container URL and path the source cluster's backups and WAL are under. */
  destinationPath: string;
  /** Folder name the source cluster archived under (barman's server name); default the source Cluster's name. */
  serverName: string;
  azureCredentials: AzureSecretRefs;
  /** The Service the application reaches its database through, repointed at the recovery cluster's primary. */
  service: string;
  /** Instances of the recovery cluster; default the damaged cluster's. */
  instances?: number;
}

export interface RecoveryClusterRequest {
  name: string;
  namespace: string;
  /** The damaged cluster: its name is the external cluster's, its spec gives instances, storage and image. */
  source: { name: string; spec: Record<string, unknown> };
  settings: CnpgRestoreSettings;
  target: RestoreTarget;
  runId: string;
}

/** A recovery Cluster's name for a run: stable, so a second call finds the first one's Cluster. */
export function recoveryClusterName(source: string, runId: string): string {
  let h = 0x811c9dc5;
  for (const ch of runId) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  // Instance pods are `<cluster>-<n>` and Services `<cluster>-rw`: keep room under the 63 characters of a label.
  return `${source.slice(0, 40)}-restore-${h.toString(36).padStart(7, '0').slice(0, 7)}`;
}

export function recoveryClusterManifest(r: RecoveryClusterRequest): Record<string, unknown> {
  const external = `${r.source.name}-backup`;
  const az: Record<string, SecretKeyRef> = {};
  for (const k of ['connectionString', 'storageAccount', 'storageKey', 'storageSasToken'] as const) {
    const ref = r.settings.azureCredentials[k];
    // Copied field by field: whatever else the settings hold, only a name and a key ever reach the manifest.
    if (ref) az[k] = { name: ref.name, key: ref.key };
  }
  const s = r.source.spec;
  const instances = r.settings.instances ?? (typeof s.instances === 'number' ? s.instances : 1);
  const recovery: Record<string, unknown> = { source: external };
  // The restored cluster keeps archiving as the damaged one did, under its own serverName: CloudNativePG refuses to
  // archive into a folder that already holds another cluster's WAL ("Expected empty archive"), and the damaged
  // cluster's archive must stay as it was.
  const backup = s.backup as { barmanObjectStore?: Record<string, unknown> } | undefined;
  const archiving = backup?.barmanObjectStore
    ? { backup: { ...backup, barmanObjectStore: { ...backup.barmanObjectStore, serverName: r.name } } }
    : {};
  if (r.target !== 'latest') recovery.recoveryTarget = { targetLSN: r.target.lsn, exclusive: true };
  return {
    apiVersion: CNPG_API_VERSION,
    kind: 'Cluster',
    metadata: {
      name: r.name,
      namespace: r.namespace,
      labels: { [DRILL_RUN_LABEL]: r.source.name },
      annotations: { [DRILL_RUN_ANNOTATION]: r.runId },
    },
    spec: {
      instances,
      ...(s.imageName ? { imageName: s.imageName } : {}),
      ...(s.storage ? { storage: s.storage } : {}),
      ...archiving,
      bootstrap: { recovery },
      externalClusters: [
        {
          name: external,
          barmanObjectStore: {
            destinationPath: r.settings.destinationPath,
            serverName: r.settings.serverName,
            azureCredentials: az,
          },
        },
      ],
    },
  };
}

/**
 * Container and folder of a `destinationPath` as barman-cloud reads it: `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`,
 * or for an emulator (Azurite) `http://HOST:PORT/ACCOUNT/CONTAINER/PATH`, where the account is the first path segment.
 */
export function parseDestinationPath(destinationPath: string): { accountUrl: string; container: string; prefix: string } {
  let u: URL;
  try {
    u = new URL(destinationPath);
  } catch {
    throw new Error(`destinationPath ${destinationPath} is not a URL: expected https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH]`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new Error(`destinationPath ${destinationPath} must be an http(s) Blob URL, got ${u.protocol}`);
  const parts = u.pathname.split('/').filter(Boolean);
  const emulator = !/\.blob\./.test(u.hostname);
  const account = emulator ? parts.shift() : undefined;
  const container = parts.shift();
  if (!container || (emulator && !account))
    throw new Error(
      `destinationPath ${destinationPath} names no container: expected https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH]`,
    );
  return { accountUrl: `${u.origin}${account ? `/${account}` : ''}`, container, prefix: parts.join('/') };
}

/**
 * The Blob adapter's environment for credentials read from Secrets (the stand-in operator's side; the drill's own
 * come from its environment): the same variables the drill process reads.
 */
export function blobEnvFromSecretValues(
  destinationPath: string,
  values: { connectionString?: string; storageAccount?: string; storageKey?: string; storageSasToken?: string },
): Record<string, string> {
  if (values.connectionString) return { AZURE_STORAGE_CONNECTION_STRING: values.connectionString };
  const { accountUrl } = parseDestinationPath(destinationPath);
  if (values.storageSasToken) return { AZURE_STORAGE_ACCOUNT_URL: accountUrl, AZURE_STORAGE_SAS_TOKEN: values.storageSasToken };
  if (values.storageAccount && values.storageKey)
    return { AZURE_STORAGE_ACCOUNT_URL: accountUrl, AZURE_STORAGE_ACCOUNT: values.storageAccount, AZURE_STORAGE_KEY: values.storageKey };
  throw new Error('azureCredentials name neither connectionString, storageSasToken, nor storageAccount with storageKey');
}
