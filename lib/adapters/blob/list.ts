import type { ContainerClient } from '@azure/storage-blob';
import { BlobTransferError, describeError, restStatus } from './errors.ts';

export interface BackupEntry {
  name: string;
  size: number;
  /** ISO time from the service; 1 s resolution, so not fit for ordering backups taken close together. */
  lastModified: string;
  metadata: Record<string, string>;
  /** Full-precision ISO time from metadata (`timestampKey`), or null when the blob has none. */
  takenAt: string | null;
}

export interface ListBackupsOptions {
  /** Metadata key holding the backup's ISO time. Default `backup_timestamp`. */
  timestampKey?: string;
}

/**
 * Blobs under `prefix` with their metadata, in the service's (lexicographic) name order.
 * A missing container is an error rather than an empty list: "no backups" and "wrong container"
 * are different findings.
 */
export async function listBackups(container: ContainerClient, prefix: string, options: ListBackupsOptions = {}): Promise<BackupEntry[]> {
  const key = (options.timestampKey ?? 'backup_timestamp').toLowerCase();
  const out: BackupEntry[] = [];
  try {
    for await (const item of container.listBlobsFlat({ prefix, includeMetadata: true })) {
      const metadata = item.metadata ?? {};
      // Keys are case-insensitive: listings keep the written case, header-based reads come back lowercase.
      const stamp = Object.entries(metadata).find(([k]) => k.toLowerCase() === key)?.[1];
      out.push({
        name: item.name,
        size: item.properties.contentLength ?? 0,
        lastModified: item.properties.lastModified.toISOString(),
        metadata,
        takenAt: stamp && !Number.isNaN(Date.parse(stamp)) ? stamp : null,
      });
    }
  } catch (e) {
    const { status, code } = restStatus(e);
    const msg = status === 404 && code === 'ContainerNotFound' ? `container "${container.containerName}" does not exist` : describeError(e);
    throw new BlobTransferError(
      status === 404 ? 'not-found' : 'request-failed',
      container.containerName,
      prefix,
      `cannot list backups under "${prefix}" in ${container.containerName}: ${msg}`,
      status,
    );
  }
  return out;
}
