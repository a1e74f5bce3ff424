/**
 * Which Blob storage backups go to and come from: the account configured in the environment when any
 * storage variable is set (explicit configuration always wins), else the Azurite of a running lab. One
 * rule for `drill backup` and for lab drills, so a backup taken by a drill's runbook step is the one its
 * restore finds.
 */
import { blobEnvConfigured } from '../../blob/index.ts';
import { BlobConfigError } from '../../blob/errors.ts';
import { backupStoreFromEnv, type BackupStore } from './store.ts';

export interface ResolvedStore {
  store: BackupStore;
  origin: 'environment' | 'lab';
  /** One line for the user: where the backups are, and why there. No secret. */
  note: string;
  labAzurite: LabBlobView | null;
}

/** Where a running lab's Azurite answers; what the notes show of it. */
export interface LabBlobView {
  url: string;
}

/** The lab's side of the rule, handed in by the lab so this adapter knows nothing of how a lab runs. */
export interface LabBlobSource {
  dir: string;
  /** The container backups go to on the lab's Azurite when none is named. */
  container: string;
  /** The environment the Blob adapter reads, pointing at the lab's Azurite when it answers; null otherwise. */
  blobEnv(): Promise<{ env: Record<string, string>; azurite: LabBlobView } | null>;
}

export interface ResolveOptions {
  /** Named by the user (--container, or a drill); else $DRILL_BACKUP_CONTAINER; on the lab's Azurite, lab-backups. */
  container?: string;
  prefix?: string;
  lab: LabBlobSource;
  env?: Record<string, string | undefined>;
}

export async function resolveBackupStore(o: ResolveOptions): Promise<ResolvedStore | { missing: 'container' }> {
  const env = o.env ?? process.env;
  const named = o.container ?? (env.DRILL_BACKUP_CONTAINER?.trim() || undefined);
  if (blobEnvConfigured(env)) {
    if (!named) return { missing: 'container' };
    const store = backupStoreFromEnv(named, o.prefix, env);
    return { store, origin: 'environment', note: `Blob storage from the environment: ${store.describe().endpoint}`, labAzurite: null };
  }
  const lab = await o.lab.blobEnv();
  if (!lab) {
    throw new BlobConfigError(
      `no Blob storage configured: no storage variable is set, and no lab Azurite answers in ${o.lab.dir}`,
      "set AZURE_STORAGE_CONNECTION_STRING; or AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY; or run `drill lab up` to use the lab's Azurite",
    );
  }
  const container = named ?? o.lab.container;
  const store = backupStoreFromEnv(container, o.prefix, lab.env);
  return {
    store,
    origin: 'lab',
    note: `no Blob storage in the environment: using the lab's Azurite at ${lab.azurite.url} (lab in ${o.lab.dir}; set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL to use a storage account instead)`,
    labAzurite: lab.azurite,
  };
}
