/**
 * What a blob target hands scenarios: the backup store (account from the environment) and where
 * scratch clusters go. Opening it checks credentials and that the container exists, before anything runs.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../../errors.ts';
import { describeError, restStatus } from '../../blob/errors.ts';
import { backupStoreFromEnv, ensureContainer, type BackupStore } from './store.ts';
import { resolveBackupStore } from './resolve.ts';
import { LAB_BACKUP_CONTAINER } from '../../../lab/azurite-lab.ts';

export interface BackupsAdapter {
  store: BackupStore;
  /** Parent folder of scratch clusters. */
  scratchParent: string;
  /** `blob:<account>/<container>/<prefix>`, for plans and messages. */
  where: string;
}

export interface BlobTargetConfig {
  container: string;
  prefix: string;
  scratchDir?: string;
}

export function backupsAdapter(t: BlobTargetConfig): BackupsAdapter {
  return adapterOf(backupStoreFromEnv(t.container, t.prefix), t.scratchDir ?? join(tmpdir(), 'drill-restores'));
}

function adapterOf(store: BackupStore, scratchParent: string): BackupsAdapter {
  const d = store.describe();
  return { store, scratchParent, where: `blob:${d.accountName}/${store.container.containerName}/${store.prefix}` };
}

/**
 * The backups of a lab drill: the storage account of the environment when one is configured, else the lab's
 * Azurite (the same rule as `drill backup`, so a backup taken by a runbook step is the one the restore
 * finds); scratch clusters in the lab dir. Null when neither is there. `create`: make the container on the
 * lab's own Azurite (a fresh lab has none); an account from the environment is only checked.
 */
export async function labBackupsAdapter(labDir: string, options: { create: boolean }): Promise<{ adapter: BackupsAdapter; note: string } | null> {
  const r = await resolveBackupStore({ labDir, container: process.env.DRILL_BACKUP_CONTAINER?.trim() || LAB_BACKUP_CONTAINER }).catch(() => null);
  if (!r || 'missing' in r) return null;
  const adapter = adapterOf(r.store, join(labDir, 'restores'));
  if (options.create && r.origin === 'lab') await ensureContainer(r.store);
  else if (options.create) await checkBackupsAccess(adapter);
  const note = r.labAzurite
    ? `${adapter.where} on the lab's Azurite ${r.labAzurite.url} (no Blob storage variable set); scratch clusters in ${adapter.scratchParent}`
    : `${adapter.where} (${r.note}); scratch clusters in ${adapter.scratchParent}`;
  return { adapter, note };
}

/** A wrong account, credential or container is invalid input: found before any scenario starts. */
export async function checkBackupsAccess(b: BackupsAdapter): Promise<void> {
  try {
    await b.store.container.getProperties();
  } catch (e) {
    const { status } = restStatus(e);
    const what = status === 404 ? `container "${b.store.container.containerName}" does not exist` : describeError(e);
    throw new UserError(`cannot use the backup store ${b.where}: ${what}`, {
      untouched: 'nothing: no backup was read and no scratch cluster was started',
      next: status === 404 ? 'check target.container (and that `drill backup` wrote there)' : 'check the storage variables in the environment',
    });
  }
}

export function backupsDetails(b: BackupsAdapter): Record<string, unknown> {
  const d = b.store.describe();
  return { kind: 'blob', accountName: d.accountName, endpoint: d.endpoint, auth: d.auth, container: d.container, prefix: d.prefix, scratchParent: b.scratchParent };
}
