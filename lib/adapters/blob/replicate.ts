/**
 * Blob-by-blob copies from one account to another, each checked, as object replication makes them between
 * two storage accounts. The copy carries the source's etag in its metadata (`drillsourceetag`), so a listing
 * of the destination alone says which source version it holds: nothing else needs to be remembered.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { describeError, restStatus } from './errors.ts';
import { MiB } from './upload.ts';

/** The metadata key a copy names its source version under (metadata names are C# identifiers, lowercase here). */
export const SOURCE_ETAG_KEY = 'drillsourceetag';

export interface ReplicaListing {
  name: string;
  /** Without the quotes the service puts around it. */
  etag: string;
  contentLength: number;
  /** The service's Last-Modified: whole seconds. */
  lastModifiedMs: number;
  /** Base64 MD5 the service holds for the blob; null when it has none (blobs committed from blocks). */
  contentMD5: string | null;
  /** On a destination listing: the source etag the copy was made from; null on a source or a blob written there by hand. */
  sourceEtag: string | null;
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

/** Every blob of a container with what replication decides on; a missing container is an empty list (nothing written yet). */
export async function listForReplication(container: ContainerClient): Promise<ReplicaListing[]> {
  const out: ReplicaListing[] = [];
  try {
    for await (const item of container.listBlobsFlat({ includeMetadata: true })) {
      const md5 = item.properties.contentMD5;
      const source = Object.entries(item.metadata ?? {}).find(([k]) => k.toLowerCase() === SOURCE_ETAG_KEY)?.[1];
      out.push({
        name: item.name,
        etag: unquote(item.properties.etag),
        contentLength: item.properties.contentLength ?? 0,
        lastModifiedMs: item.properties.lastModified.getTime(),
        contentMD5: md5 && md5.length > 0 ? Buffer.from(md5).toString('base64') : null,
        sourceEtag: source ?? null,
      });
    }
  } catch (e) {
    const { status, code } = restStatus(e);
    if (status === 404 && code === 'ContainerNotFound') return [];
    throw new Error(`cannot list ${container.containerName}: ${describeError(e)}`);
  }
  return out;
}

export interface VerifiedCopy {
  name: string;
  bytes: number;
  /** Hex sha256 of the bytes read from the source (and written to the destination). */
  sha256: string;
  /** How the copy was checked: the source's MD5 against the bytes read, or (no MD5 at the source) the length of both sides. */
  verifiedBy: 'md5' | 'length';
  ms: number;
}

/** A copy whose check failed: the destination blob was deleted again, so the next pass copies it anew. */
export class CopyMismatchError extends Error {}

/**
 * Streams `blob` from `from` to `to` under the same name with its metadata and headers, reading only the version
 * listed (If-Match its etag: a blob rewritten meanwhile fails the copy instead of mixing versions). Then checks it:
 * the bytes read against the source's MD5 when it has one, and the lengths of source, bytes read and destination.
 */
export async function copyBlobVerified(from: ContainerClient, to: ContainerClient, blob: ReplicaListing): Promise<VerifiedCopy> {
  const t0 = performance.now();
  const source = from.getBlobClient(blob.name);
  const target = to.getBlockBlobClient(blob.name);
  const props = await source.getProperties({ conditions: { ifMatch: `"${blob.etag}"` } });
  const download = await source.download(0, undefined, { conditions: { ifMatch: `"${blob.etag}"` } });
  const body = download.readableStreamBody;
  if (!body) throw new Error(`${from.containerName}/${blob.name}: the download has no body`);
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      md5.update(chunk);
      sha.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  body.on('error', (e) => tap.destroy(e));
  body.pipe(tap);
  const headers = {
    blobContentType: props.contentType,
    blobContentEncoding: props.contentEncoding,
    blobContentLanguage: props.contentLanguage,
    blobContentDisposition: props.contentDisposition,
    blobCacheControl: props.cacheControl,
  };
  await target.uploadStream(tap, 4 * MiB, 4, {
    metadata: { ...(props.metadata ?? {}), [SOURCE_ETAG_KEY]: blob.etag },
    blobHTTPHeaders: headers,
  });
  const digest = md5.digest('base64');
  const sourceMd5 = props.contentMD5 && props.contentMD5.length > 0 ? Buffer.from(props.contentMD5).toString('base64') : null;
  // The destination states the MD5 of what it holds, as the source does for blobs it stored in one piece.
  await target.setHTTPHeaders({ ...headers, blobContentMD5: Buffer.from(digest, 'base64') });
  const written = (await target.getProperties()).contentLength ?? -1;
  const problem =
    sourceMd5 !== null && sourceMd5 !== digest
      ? `MD5 of the bytes read ${digest} is not the source's ${sourceMd5}`
      : bytes !== (props.contentLength ?? -1) || written !== bytes
        ? `lengths differ: source ${props.contentLength}, read ${bytes}, written ${written}`
        : null;
  if (problem) {
    await target.deleteIfExists();
    throw new CopyMismatchError(`${from.containerName}/${blob.name}: the copy did not match its source (${problem}); it was deleted again`);
  }
  return { name: blob.name, bytes, sha256: sha.digest('hex'), verifiedBy: sourceMd5 ? 'md5' : 'length', ms: performance.now() - t0 };
}
