/**
 * The secondary region's storage: a second Azurite of its own (port, data folder `<lab>/secondary/azurite`,
 * state `<lab>/secondary/azurite.json`) serving its own account, as the paired region's storage account is a
 * different endpoint with a different key. Started and stopped with the lab by the same code as the primary's
 * (lib/lab/azurite.ts); the replicator (daemon/replicator.ts) fills it from the primary's account.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AzuriteAccount } from '../../adapters/blob/azurite.ts';
import type { LabBlobSource } from '../../adapters/postgres/backup/resolve.ts';
import { registerSecret } from '../../util/secrets.ts';
import {
  type AzuriteInstance,
  type AzuriteStatus,
  azuriteInstanceStatus,
  LAB_BACKUP_CONTAINER,
  LAB_FILES_CONTAINER,
  LAB_LOGS_CONTAINER,
  startAzuriteInstance,
  stopAzuriteInstance,
} from '../azurite.ts';
import type { LabAzurite, LabSecondaryView } from '../types.ts';

/** The secondary's storage account (3-24 lowercase letters and digits, as Azure names accounts). */
export const SECONDARY_ACCOUNT = 'labsecondary';

/** What the replicator copies: every container of the primary's account the lab writes (backups and WAL, files, logs). */
export const REPLICATED_CONTAINERS: readonly string[] = [LAB_BACKUP_CONTAINER, LAB_FILES_CONTAINER, LAB_LOGS_CONTAINER];

export function secondaryPaths(labDir: string) {
  const dir = join(labDir, 'secondary');
  return {
    dir,
    azuriteState: join(dir, 'azurite.json'),
    azuriteData: join(dir, 'azurite'),
    /** The account's key, made on first start and kept (mode 0600) so the data folder stays readable across restarts. */
    account: join(dir, 'account.json'),
    /** The replicator's last pass: see ReplicationState. */
    replication: join(dir, 'replication.json'),
    replicatorLog: join(labDir, 'logs', 'replicator.log'),
  };
}

/** The secondary account's name and key; the key is made once per lab, registered as a secret whenever it is read. */
export function secondaryAccount(labDir: string): AzuriteAccount {
  const file = secondaryPaths(labDir).account;
  try {
    const a = JSON.parse(readFileSync(file, 'utf8')) as AzuriteAccount;
    registerSecret(a.key);
    return a;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`cannot read the secondary account ${file}: ${(e as Error).message}`);
  }
  mkdirSync(secondaryPaths(labDir).dir, { recursive: true });
  const account: AzuriteAccount = { name: SECONDARY_ACCOUNT, key: randomBytes(64).toString('base64') };
  registerSecret(account.key);
  try {
    // 'wx': two starts racing both read the one that was written first.
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(account)}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return secondaryAccount(labDir);
    throw e;
  }
  return account;
}

export function secondaryAzurite(labDir: string): AzuriteInstance {
  const p = secondaryPaths(labDir);
  return {
    label: "the secondary region's Azurite",
    stateFile: p.azuriteState,
    dir: p.azuriteData,
    account: () => secondaryAccount(labDir),
  };
}

export const startSecondaryAzurite = (labDir: string, options: { readyTimeoutMs?: number; background?: boolean } = {}) =>
  startAzuriteInstance(secondaryAzurite(labDir), options);
export const secondaryAzuriteStatus = (labDir: string): Promise<AzuriteStatus> => azuriteInstanceStatus(secondaryAzurite(labDir));
export const stopSecondaryAzurite = (labDir: string): Promise<number | null> => stopAzuriteInstance(secondaryAzurite(labDir));

export function labSecondaryView(a: Pick<LabAzurite, 'pid' | 'port' | 'blobEndpoint'>): LabSecondaryView {
  return { pid: a.pid, port: a.port, url: a.blobEndpoint, account: SECONDARY_ACCOUNT, containers: [...REPLICATED_CONTAINERS] };
}

/**
 * The environment the Blob adapter reads, pointing at the secondary's account when it answers; null otherwise.
 * In-process only (the key is in it): what a restore in the secondary region reads its backups through.
 */
export async function labSecondaryBlobEnv(
  labDir: string,
): Promise<{ env: Record<string, string>; azurite: LabSecondaryView & { container: string } } | null> {
  const s = await secondaryAzuriteStatus(labDir);
  if (!s.up || !s.azurite) return null;
  return {
    env: { AZURE_STORAGE_CONNECTION_STRING: s.azurite.connectionString },
    azurite: { ...labSecondaryView(s.azurite), container: LAB_BACKUP_CONTAINER },
  };
}

/** The secondary's copy of the backups as the backup resolver reads a lab's: for a restore in the secondary region. */
export function labSecondaryBlobSource(labDir: string): LabBlobSource {
  return { dir: labDir, container: LAB_BACKUP_CONTAINER, blobEnv: () => labSecondaryBlobEnv(labDir) };
}
