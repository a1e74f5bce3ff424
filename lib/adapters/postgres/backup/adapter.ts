/**
 * What a blob target hands scenarios: the backup store (account from the environment) and where
 * scratch clusters go. Opening it checks credentials and that the container exists, before anything runs.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../../errors.ts';
import { describeError, restStatus } from '../../blob/errors.ts';
import { backupStoreFromEnv, type BackupStore } from './store.ts';

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
  return backupsAdapterOn(backupStoreFromEnv(t.container, t.prefix), t.scratchDir ?? join(tmpdir(), 'drill-restores'));
}

/** Backups in a store resolved elsewhere (the lab's Azurite, or the environment's account). */
export function backupsAdapterOn(store: BackupStore, scratchParent: string): BackupsAdapter {
  const d = store.describe();
  return { store, scratchParent, where: `blob:${d.accountName}/${store.container.containerName}/${store.prefix}` };
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
      next:
        status === 404 ? 'check target.container (and that `drill backup` wrote there)' : 'check the storage variables in the environment',
    });
  }
}

export function backupsDetails(b: BackupsAdapter): Record<string, unknown> {
  const d = b.store.describe();
  return {
    kind: 'blob',
    accountName: d.accountName,
    endpoint: d.endpoint,
    auth: d.auth,
    container: d.container,
    prefix: d.prefix,
    scratchParent: b.scratchParent,
  };
}
