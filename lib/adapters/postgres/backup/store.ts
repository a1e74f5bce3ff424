/**
 * Where backups go: one Blob container (and an optional prefix inside it) of the account configured
 * in the environment. Works the same against Azurite and a real storage account.
 */
import { blobServiceFromEnv, describeBlobTarget, type BlobTargetDescription, type ContainerClient } from '../../blob/index.ts';
import { BlobTransferError, describeError, restStatus } from '../../blob/errors.ts';
import { normalisePrefix } from '../../../backup/naming.ts';

export interface BackupStore {
  container: ContainerClient;
  prefix: string;
  /** For plans and records: account, endpoint, container, prefix; no secret. */
  describe(): BlobTargetDescription & { container: string; prefix: string };
}

const CONTAINER = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;

export function containerNameProblem(name: string): string | null {
  return CONTAINER.test(name)
    ? null
    : `container name "${name}" is not valid: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit`;
}

export function backupStoreFromEnv(container: string, prefix?: string, env: Record<string, string | undefined> = process.env): BackupStore {
  const service = blobServiceFromEnv(env);
  const c = service.getContainerClient(container);
  const p = normalisePrefix(prefix);
  return { container: c, prefix: p, describe: () => ({ ...describeBlobTarget(service), container, prefix: p }) };
}

/** Creates the container when missing (backups only; a restore never creates anything in storage). */
export async function ensureContainer(store: BackupStore): Promise<void> {
  try {
    await store.container.createIfNotExists();
  } catch (e) {
    throw new BlobTransferError(
      'request-failed',
      store.container.containerName,
      '',
      `cannot create container ${store.container.containerName}: ${describeError(e)}`,
      restStatus(e).status,
    );
  }
}

export async function putJson(store: BackupStore, name: string, value: unknown, metadata: Record<string, string> = {}): Promise<void> {
  const body = Buffer.from(JSON.stringify(value, null, 2) + '\n');
  try {
    await store.container.getBlockBlobClient(name).uploadData(body, { metadata, blobHTTPHeaders: { blobContentType: 'application/json' } });
  } catch (e) {
    throw new BlobTransferError(
      'upload-failed',
      store.container.containerName,
      name,
      `cannot write ${name}: ${describeError(e)}`,
      restStatus(e).status,
    );
  }
}

export async function getText(store: BackupStore, name: string): Promise<string | null> {
  try {
    const buf = await store.container.getBlobClient(name).downloadToBuffer();
    return buf.toString('utf8');
  } catch (e) {
    if (restStatus(e).status === 404) return null;
    throw new BlobTransferError(
      'request-failed',
      store.container.containerName,
      name,
      `cannot read ${name}: ${describeError(e)}`,
      restStatus(e).status,
    );
  }
}
