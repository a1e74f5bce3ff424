/**
 * A BlobServiceClient from the environment, the same way for Azurite and a real storage account.
 * Secrets come only from the environment (never a drill file, argv or a record), and every secret
 * read here is registered so redactSecrets masks it from then on.
 */
import { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential, type StoragePipelineOptions } from '@azure/storage-blob';
import { BlobConfigError } from './errors.ts';
import { registerSasToken, registerSecret } from '../../util/secrets.ts';

export type BlobAuth = 'connection-string' | 'sas-token' | 'shared-key';

/** What a record may say about a Blob target: no key, no signature. */
export interface BlobTargetDescription {
  accountName: string;
  /** Service endpoint without query string. */
  endpoint: string;
  auth: BlobAuth | 'other';
}

type Env = Record<string, string | undefined>;

const CS = 'AZURE_STORAGE_CONNECTION_STRING';
const URL_VAR = 'AZURE_STORAGE_ACCOUNT_URL';
const SAS = 'AZURE_STORAGE_SAS_TOKEN';
const ACCOUNT = 'AZURE_STORAGE_ACCOUNT';
const KEY = 'AZURE_STORAGE_KEY';

const HOW = `set ${CS}; or ${URL_VAR} with ${SAS}; or ${URL_VAR} with ${ACCOUNT} and ${KEY}`;

function get(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function parseConnectionString(cs: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of cs.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return out;
}

function checkedUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BlobConfigError(`${URL_VAR} is not a URL (expected e.g. https://ACCOUNT.blob.core.windows.net)`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new BlobConfigError(`${URL_VAR} must be http(s), got ${u.protocol}`);
  if (u.search) {
    // A SAS pasted into the URL would end up in records via the endpoint: make it a separate variable.
    registerSasToken(u.search);
    throw new BlobConfigError(`${URL_VAR} must not carry a query string; put the SAS token in ${SAS}`);
  }
  return u;
}

interface Resolved {
  auth: BlobAuth;
  make(options?: StoragePipelineOptions): BlobServiceClient;
}

function resolve(env: Env): Resolved {
  const cs = get(env, CS);
  if (cs) {
    const parts = parseConnectionString(cs);
    registerSecret(parts.get('accountkey'));
    registerSasToken(parts.get('sharedaccesssignature'));
    return {
      auth: 'connection-string',
      make: (options) => {
        try {
          return BlobServiceClient.fromConnectionString(cs, options);
        } catch (e) {
          throw new BlobConfigError(`${CS} could not be used: ${(e as Error).message}`);
        }
      },
    };
  }
  const url = get(env, URL_VAR);
  const sas = get(env, SAS);
  const account = get(env, ACCOUNT);
  const key = get(env, KEY);
  registerSasToken(sas);
  registerSecret(key);
  if (!url) {
    const partial = sas ? [SAS] : account || key ? [ACCOUNT, KEY].filter((n) => get(env, n)) : [];
    const hint = partial.length > 0 ? ` (${partial.join(' and ')} ${partial.length > 1 ? 'are' : 'is'} set, but without ${URL_VAR})` : '';
    throw new BlobConfigError(`no Blob storage configured: missing ${partial.length > 0 ? URL_VAR : `${CS} or ${URL_VAR}`}${hint}`, HOW);
  }
  const base = checkedUrl(url);
  if (sas) {
    const token = sas.replace(/^\?/, '');
    return {
      auth: 'sas-token',
      make: (options) => new BlobServiceClient(`${base.toString().replace(/\/$/, '')}?${token}`, new AnonymousCredential(), options),
    };
  }
  if (account && key) {
    return {
      auth: 'shared-key',
      make: (options) => new BlobServiceClient(base.toString().replace(/\/$/, ''), new StorageSharedKeyCredential(account, key), options),
    };
  }
  const missing = account ? [KEY] : key ? [ACCOUNT] : [];
  const what = missing.length > 0 ? `${missing[0]}` : `${SAS}, or ${ACCOUNT} and ${KEY}`;
  throw new BlobConfigError(`${URL_VAR} is set but its credential is incomplete: missing ${what}`, HOW);
}

/** True when any storage variable is set: then the environment decides, even when it is incomplete (and says so). */
export function blobEnvConfigured(env: Env = process.env): boolean {
  return [CS, URL_VAR, SAS, ACCOUNT, KEY].some((name) => get(env, name) !== undefined);
}

/**
 * Precedence when several are set: connection string, then account URL + SAS, then account URL +
 * shared key. describeBlobTarget says which one was used.
 */
export function blobServiceFromEnv(env: Env = process.env, options?: StoragePipelineOptions): BlobServiceClient {
  return resolve(env).make(options);
}

function authOf(client: BlobServiceClient): BlobTargetDescription['auth'] {
  if (client.credential instanceof StorageSharedKeyCredential) return 'shared-key';
  if (new URL(client.url).searchParams.has('sig')) return 'sas-token';
  return 'other';
}

/** Account name and endpoint of the target configured in env, or of a client; never a secret. */
export function describeBlobTarget(source: Env | BlobServiceClient = process.env): BlobTargetDescription {
  const client = source instanceof BlobServiceClient ? source : blobServiceFromEnv(source);
  const u = new URL(client.url);
  u.search = '';
  u.username = '';
  u.password = '';
  return {
    accountName: client.accountName,
    endpoint: u.toString().replace(/\/$/, ''),
    auth: source instanceof BlobServiceClient ? authOf(client) : resolve(source).auth,
  };
}
