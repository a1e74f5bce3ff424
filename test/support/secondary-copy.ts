/**
 * Waiting for a two-region lab's secondary to hold something to restore from: the replicator copies a blob only
 * once it is `replicationLag` old, so a region-loss drill right after `lab up` would find no base backup there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { blobServiceFromEnv, type BlobServiceClient } from '../../lib/adapters/blob/index.ts';
import { MANIFEST_FILE } from '../../lib/backup/naming.ts';
import { LAB_BACKUP_CONTAINER } from '../../lib/lab/azurite.ts';
import { labSecondaryBlobEnv } from '../../lib/lab/regions/secondary.ts';
import { labStatus } from '../../lib/lab/index.ts';

export const secondaryBlobs = async (lab: string): Promise<BlobServiceClient> => blobServiceFromEnv((await labSecondaryBlobEnv(lab))!.env);
const SEGMENT = /(?:^|\/)([0-9A-F]{24})$/;

/** Names in the secondary's backup container: its manifests and its WAL segments (by segment name). */
export async function secondaryBackups(lab: string): Promise<{ manifests: string[]; segments: Map<string, string> }> {
  const c = (await secondaryBlobs(lab)).getContainerClient(LAB_BACKUP_CONTAINER);
  const manifests: string[] = [];
  const segments = new Map<string, string>();
  if (!(await c.exists())) return { manifests, segments };
  for await (const b of c.listBlobsFlat()) {
    if (b.name.endsWith(`/${MANIFEST_FILE}`)) manifests.push(b.name);
    const m = SEGMENT.exec(b.name);
    if (m) segments.set(m[1]!, b.name);
  }
  return { manifests, segments };
}

/**
 * Until the secondary holds a base backup and `segmentsAfterStart` WAL segments from its start on; writes through
 * the service while waiting, so the archiver has WAL to close into segments.
 */
export async function waitForSecondaryCopy(lab: string, serviceUrl: string, segmentsAfterStart: number): Promise<{ start: string }> {
  const deadline = Date.now() + 90_000;
  for (let k = 0; ; k++) {
    await fetch(`${serviceUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: `seed-${k}` }),
    }).then(
      (r) => r.arrayBuffer(),
      () => undefined,
    );
    const s = await secondaryBackups(lab);
    const manifest = s.manifests.sort().at(-1);
    if (manifest) {
      const m = JSON.parse(
        (
          await (await secondaryBlobs(lab)).getContainerClient(LAB_BACKUP_CONTAINER).getBlockBlobClient(manifest).downloadToBuffer()
        ).toString(),
      ) as { walStartSegment: string };
      const after = [...s.segments.keys()].filter((n) => n.slice(8) >= m.walStartSegment.slice(8));
      if (after.length >= segmentsAfterStart) return { start: m.walStartSegment };
    }
    if (Date.now() > deadline) throw new Error(`the secondary holds no base backup and ${segmentsAfterStart} WAL segments after 90 s`);
    await sleep(300);
  }
}

/**
 * Until the replicator has finished a pass that began `settleMs` from now (the archive's lag plus the replication
 * lag): a lab started from a kept copy has a few WAL segments fall due at once, the replicator copies them side by side (four at a time), and a region lost in that
 * moment leaves its copy with a hole before the newest segment (seen once, 2026-12-05: 07 missing, 08 there), which
 * the restore rightly refuses. A drill then starts from a copy that has caught up, as after a fresh lab's first copy.
 * (Not "nothing pending": blobs younger than the lag always wait, and request logs ship every few seconds.)
 */
export async function waitForSecondaryCaughtUp(lab: string, settleMs: number, timeoutMs = 60_000): Promise<void> {
  // Segments the restart closes reach the archive within its lag, and fall due for copying a replication lag later.
  const since = Date.now() + settleMs;
  const deadline = Date.now() + settleMs + timeoutMs;
  const passes = new Set<string>();
  for (;;) {
    const r = (await labStatus({ dir: lab })).replication;
    if (r?.lastPassAt && Date.parse(r.lastPassAt) > since) passes.add(r.lastPassAt);
    // The first pass seen may have begun before now; the second began after the first ended.
    if (passes.size >= 2) return;
    if (Date.now() > deadline)
      throw new Error(`the replicator finished no pass within ${timeoutMs / 1000} s of the lab settling: ${JSON.stringify(r ?? null)}`);
    await sleep(200);
  }
}
