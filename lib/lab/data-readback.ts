/**
 * Reading the file-storage and logs data classes back from the lab's Azurite after recovery: every stored
 * attachment with the sha256 of its bytes as they are now (computed, not taken from metadata: a blob
 * overwritten or truncated must not pass for the file), and every shipped log segment's lines.
 */
import { createHash } from 'node:crypto';
import { blobServiceFromEnv, type ContainerClient } from '../adapters/blob/index.ts';
import { LAB_FILES_CONTAINER, LAB_LOGS_CONTAINER, labBlobEnv } from './azurite.ts';
import { readSegments } from './log-ship.ts';

async function container(labDir: string, name: string): Promise<ContainerClient> {
  const blob = await labBlobEnv(labDir);
  if (!blob) throw new Error(`the lab's Azurite in ${labDir} is not answering (start it with \`drill lab up\`)`);
  return blobServiceFromEnv(blob.env).getContainerClient(name);
}

/** Blob name -> sha256 of its content, for every attachment; empty when the container does not exist. */
export async function readStoredFiles(labDir: string): Promise<Map<string, string>> {
  const c = await container(labDir, LAB_FILES_CONTAINER);
  const out = new Map<string, string>();
  if (!(await c.exists())) return out;
  for await (const b of c.listBlobsFlat({ prefix: 'orders/' })) {
    const content = await c.getBlockBlobClient(b.name).downloadToBuffer();
    out.set(b.name, createHash('sha256').update(content).digest('hex'));
  }
  return out;
}

/** The shipped segments' lines: every token, lines and newest line per replica, segments read. */
export async function readShippedLogs(labDir: string): Promise<ReturnType<typeof readSegments> & { segments: string[] }> {
  const c = await container(labDir, LAB_LOGS_CONTAINER);
  const segments: { name: string; text: string }[] = [];
  if (await c.exists()) {
    for await (const b of c.listBlobsFlat()) {
      segments.push({ name: b.name, text: (await c.getBlockBlobClient(b.name).downloadToBuffer()).toString('utf8') });
    }
  }
  return { ...readSegments(segments), segments: segments.map((s) => s.name) };
}
