/**
 * SAS tokens signed with an account key: for tests against Azurite, and for handing a narrow,
 * short-lived credential to a child process instead of the account key.
 */
import {
  AccountSASPermissions,
  BlobSASPermissions,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { registerSasToken, registerSecret } from '../../util/secrets.ts';

export interface SasOptions {
  accountName: string;
  accountKey: string;
  /** Account SAS letters (`rwdlac`) or, for a blob SAS, blob letters (`racwd`). Default `rwdlac` / `r`. */
  permissions?: string;
  /** Default 1 h. */
  expiresInSeconds?: number;
}

function expiry(options: SasOptions): { startsOn: Date; expiresOn: Date } {
  const now = Date.now();
  // Start a little in the past: clocks of client and service differ by a few seconds.
  return { startsOn: new Date(now - 5 * 60_000), expiresOn: new Date(now + (options.expiresInSeconds ?? 3600) * 1000) };
}

/** A Blob-service account SAS (services `b`, resource types `sco`), without the leading `?`. */
export function createAccountSasToken(options: SasOptions): string {
  registerSecret(options.accountKey);
  const token = generateAccountSASQueryParameters(
    {
      ...expiry(options),
      permissions: AccountSASPermissions.parse(options.permissions ?? 'rwdlac'),
      services: 'b',
      resourceTypes: 'sco',
    },
    new StorageSharedKeyCredential(options.accountName, options.accountKey),
  ).toString();
  registerSasToken(token);
  return token;
}

/** A SAS for one blob, without the leading `?`. */
export function createBlobSasToken(options: SasOptions & { container: string; blob: string }): string {
  registerSecret(options.accountKey);
  const token = generateBlobSASQueryParameters(
    {
      ...expiry(options),
      containerName: options.container,
      blobName: options.blob,
      permissions: BlobSASPermissions.parse(options.permissions ?? 'r'),
    },
    new StorageSharedKeyCredential(options.accountName, options.accountKey),
  ).toString();
  registerSasToken(token);
  return token;
}
