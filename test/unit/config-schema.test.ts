import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SCHEMA_FILE, drillJsonSchema, renderDrillJsonSchema } from '../../lib/config/write-json-schema.ts';

interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  pattern?: string;
  required?: string[];
  additionalProperties?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
}

test('the committed drills/drill.schema.json is what `npm run schema` generates now', () => {
  assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), renderDrillJsonSchema(), 'drills/drill.schema.json is stale: run `npm run schema` and commit it');
});

test('the JSON Schema is strict, names the required keys and gives editors help on the main fields', () => {
  const s = drillJsonSchema() as JsonSchema;
  assert.equal(s.type, 'object');
  assert.equal(s.additionalProperties, false);
  assert.deepEqual(s.required, ['name', 'kind', 'target', 'load', 'scenarios']);
  const props = s.properties ?? {};
  for (const key of ['name', 'kind', 'service', 'target', 'policy', 'load', 'stopConditions', 'scenarios']) {
    assert.ok(props[key]?.description, `no description on ${key}`);
  }
  const load = props.load?.properties ?? {};
  assert.equal(load.timeout?.default, '2s');
  assert.match('1h30m', new RegExp(load.timeout?.pattern ?? '$^'));
  assert.doesNotMatch('10', new RegExp(load.timeout?.pattern ?? ''));
  assert.deepEqual(props.target?.oneOf?.map((o) => o.properties?.kind), [
    { type: 'string', const: 'lab' },
    { type: 'string', const: 'http' },
    { type: 'string', const: 'kubernetes' },
    { type: 'string', const: 'blob' },
  ]);
  const entry = props.scenarios?.items?.properties ?? {};
  // Params belong to each scenario's own schema, which the drill schema cannot know: a free mapping.
  assert.equal(entry.params?.type, 'object');
  assert.deepEqual(entry.params?.additionalProperties, {});
  assert.deepEqual(props.policy?.properties?.slo?.properties?.latency?.default, ['p(50)<100ms', 'p(95)<500ms', 'p(99)<1000ms']);
});
