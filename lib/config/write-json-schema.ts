import { writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { z } from 'zod';
import { BlobDrillFileSchema, DrillFileSchema } from './schema.ts';

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
  return { $schema, $id: 'https://drill.local/drill.schema.json', ...byTargetKind(rest) };
}

/**
 * `drill validate` picks the schema by target kind (drillFileSchemaFor): a blob drill has no service, so
 * no `load`, and refuses one. One JSON Schema says the same with if/then/else, so an editor neither asks
 * a restore drill for load nor lets a lab drill go without it. The keys that differ are read from the two
 * zod schemas, not written out here.
 */
function byTargetKind(schema: Record<string, unknown>): Record<string, unknown> {
  const blob = z.toJSONSchema(BlobDrillFileSchema, { io: 'input', target: 'draft-2020-12' }) as {
    required?: string[];
    properties?: Record<string, unknown>;
  };
  const required = (schema.required as string[] | undefined) ?? [];
  const properties = (schema.properties as Record<string, unknown> | undefined) ?? {};
  const blobRequired = new Set(blob.required ?? []);
  const onlyOthers = required.filter((k) => !blobRequired.has(k));
  const refusedOnBlob = Object.keys(properties).filter((k) => !(k in (blob.properties ?? {})));
  if (onlyOthers.length === 0 && refusedOnBlob.length === 0) return schema;
  return {
    ...schema,
    required: required.filter((k) => blobRequired.has(k)),
    allOf: [
      {
        if: { properties: { target: { properties: { kind: { const: 'blob' } }, required: ['kind'] } }, required: ['target'] },
        then: { properties: Object.fromEntries(refusedOnBlob.map((k) => [k, false])) },
        else: { required: onlyOthers },
      },
    ],
  };
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
