/** The Blob adapter: the only place that imports @azure/storage-blob. */
export type { BlobClient, BlobServiceClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
export {
  AZURITE_ACCOUNT,
  AZURITE_ACCOUNT_KEY,
  freeLoopbackPort,
  startAzurite,
  azuriteEndpoint,
  type AzuriteAccount,
  type AzuriteHandle,
  type StartAzuriteOptions,
} from './azurite.ts';
export { blobEnvConfigured, blobServiceFromEnv, describeBlobTarget, type BlobAuth, type BlobTargetDescription } from './client.ts';
export { downloadToFileParallel, type DownloadOptions, type DownloadResult } from './download.ts';
export { BlobConfigError, BlobTransferError, type BlobErrorCode } from './errors.ts';
export { listBackups, type BackupEntry, type ListBackupsOptions } from './list.ts';
export { metadataProblems } from './metadata.ts';
export { formatEta, transferProgress, type TransferProgress, type TransferProgressOptions } from './progress.ts';
export {
  copyBlobVerified,
  CopyMismatchError,
  listForReplication,
  SOURCE_ETAG_KEY,
  type ReplicaListing,
  type VerifiedCopy,
} from './replicate.ts';
export { createAccountSasToken, createBlobSasToken, type SasOptions } from './sas.ts';
export { MiB, uploadStream, type TransferProgressEvent, type UploadResult, type UploadStreamOptions } from './upload.ts';
