import { join } from 'node:path';
import { backupsAdapterOn, checkBackupsAccess, type BackupsAdapter } from '../../adapters/postgres/backup/adapter.ts';
import { resolveBackupStore } from '../../adapters/postgres/backup/resolve.ts';
import { ensureContainer } from '../../adapters/postgres/backup/store.ts';
import { LAB_BACKUP_CONTAINER, labBlobSource } from '../../lab/azurite.ts';

/**
 * The backups of a lab drill: the storage account of the environment when one is configured, else the lab's
 * Azurite (the same rule as `drill backup`, so a backup taken by a runbook step is the one the restore
 * finds); scratch clusters in the lab dir. Null when neither is there. `create`: make the container on the
 * lab's own Azurite (a fresh lab has none); an account from the environment is only checked.
 */
export async function labBackupsAdapter(
  labDir: string,
  options: { create: boolean },
): Promise<{ adapter: BackupsAdapter; note: string } | null> {
  const r = await resolveBackupStore({
    lab: labBlobSource(labDir),
    container: process.env.DRILL_BACKUP_CONTAINER?.trim() || LAB_BACKUP_CONTAINER,
  }).catch(() => null);
  if (!r || 'missing' in r) return null;
  const adapter = backupsAdapterOn(r.store, join(labDir, 'restores'));
  if (options.create && r.origin === 'lab') await ensureContainer(r.store);
  else if (options.create) await checkBackupsAccess(adapter);
  const note = r.labAzurite
    ? `${adapter.where} on the lab's Azurite ${r.labAzurite.url} (no Blob storage variable set); scratch clusters in ${adapter.scratchParent}`
    : `${adapter.where} (${r.note}); scratch clusters in ${adapter.scratchParent}`;
  return { adapter, note };
}
