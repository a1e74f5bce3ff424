import { writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { z } from 'zod';
import { DrillFileSchema } from './schema.ts';

/**
 * drills/drill.schema.json, generated from the zod schema so editors (yaml-language-server's
 * `# yaml-language-server: $schema=./drill.schema.json`) check exactly what `drill validate` checks,
 * minus what JSON Schema cannot say (duration and threshold grammar beyond a pattern, scenario params).
 * `npm run schema` rewrites it; a unit test fails when the committed file is stale.
 */
export const SCHEMA_FILE = resolve(fileURLToPath(new URL('../../drills/drill.schema.json', import.meta.url)));

export function drillJsonSchema(): Record<string, unknown> {
  // io: 'input' describes what a person writes (optional keys stay optional), not the parsed output.
  const { $schema, ...rest } = z.toJSONSchema(DrillFileSchema, { io: 'input', target: 'draft-2020-12' });
  return { $schema, $id: 'https://drill.local/drill.schema.json', ...rest };
}

export function renderDrillJsonSchema(): string {
  return JSON.stringify(drillJsonSchema(), null, 2) + '\n';
}

export async function writeDrillJsonSchema(file = SCHEMA_FILE): Promise<void> {
  await writeFile(file, renderDrillJsonSchema());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await writeDrillJsonSchema();
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}
