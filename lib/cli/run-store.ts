import { blobServiceFromEnv, describeBlobTarget, downloadToFileParallel, listBackups, BlobTransferError } from '../adapters/blob/index.ts';
import { UserError } from '../errors.ts';
import type { BlobSource, RunStore } from '../record/quarterly/sources.ts';

/** The run records in a Blob container, for `drill record --from` and `drill verify --from`. */
export function openBlobRunStore(src: BlobSource, env: Record<string, string | undefined>): RunStore {
  const service = blobServiceFromEnv(env);
  const container = service.getContainerClient(src.container);
  return {
    endpoint: describeBlobTarget(service).endpoint,
    async list(prefix) {
      try {
        return (await listBackups(container, prefix)).map((e) => e.name);
      } catch (e) {
        if (e instanceof BlobTransferError)
          throw new UserError(`cannot read run records from ${src.url}: ${e.message}`, {
            untouched: 'nothing was written',
            next: 'check the container name and the storage account in AZURE_STORAGE_CONNECTION_STRING',
          });
        throw e;
      }
    },
    async download(name, to) {
      await downloadToFileParallel(container.getBlobClient(name), to, { concurrency: 1 });
    },
  };
}
