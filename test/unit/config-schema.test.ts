import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
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
  assert.equal(
    readFileSync(SCHEMA_FILE, 'utf8'),
    renderDrillJsonSchema(),
    'drills/drill.schema.json is stale: run `npm run schema` and commit it',
  );
});

test('the JSON Schema is strict, names the required keys and gives editors help on the main fields', () => {
  const s = drillJsonSchema() as JsonSchema;
  assert.equal(s.type, 'object');
  assert.equal(s.additionalProperties, false);
  // load is required by the if/then/else below, for every target but blob.
  assert.deepEqual(s.required, ['name', 'kind', 'target', 'scenarios']);
  const props = s.properties ?? {};
  for (const key of ['name', 'kind', 'service', 'target', 'policy', 'load', 'stopConditions', 'scenarios']) {
    assert.ok(props[key]?.description, `no description on ${key}`);
  }
  const load = props.load?.properties ?? {};
  assert.equal(load.timeout?.default, '2s');
  assert.match('1h30m', new RegExp(load.timeout?.pattern ?? '$^'));
  assert.doesNotMatch('10', new RegExp(load.timeout?.pattern ?? ''));
  assert.deepEqual(
    props.target?.oneOf?.map((o) => o.properties?.kind),
    [
      { type: 'string', const: 'lab' },
      { type: 'string', const: 'http' },
      { type: 'string', const: 'kubernetes' },
      { type: 'string', const: 'blob' },
    ],
  );
  const entry = props.scenarios?.items?.properties ?? {};
  // Params belong to each scenario's own schema, which the drill schema cannot know: a free mapping.
  assert.equal(entry.params?.type, 'object');
  assert.deepEqual(entry.params?.additionalProperties, {});
  assert.deepEqual(props.policy?.properties?.slo?.properties?.latency?.default, ['p(50)<100ms', 'p(95)<500ms', 'p(99)<1000ms']);
});

/**
 * Validation by a real JSON Schema implementation, the way an editor applies the file: Python's
 * jsonschema (Draft 2020-12). The documents are the drill files as YAML
 * parses them, passed on stdin; the answer is each document's error messages.
 */
function validateWithJsonSchema(documents: Record<string, unknown>): Record<string, string[]> {
  const script = [
    'import json, sys',
    'from jsonschema import Draft202012Validator',
    'schema = json.load(open(sys.argv[1]))',
    'Draft202012Validator.check_schema(schema)',
    'v = Draft202012Validator(schema)',
    'docs = json.load(sys.stdin)',
    'print(json.dumps({k: sorted(e.message for e in v.iter_errors(d)) for k, d in docs.items()}))',
  ].join('\n');
  // The image's python3 may be a pyenv one with its own packages; Debian's python3-jsonschema (what .ci/run
  // installs when neither has it) lives under /usr/bin/python3.
  const python = ['python3', '/usr/bin/python3'].find((p) => {
    try {
      execFileSync(p, ['-c', 'import jsonschema'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!python) throw new Error('no python3 with the jsonschema package: `apt-get install python3-jsonschema` (.ci/run does)');
  const out = execFileSync(python, ['-c', script, SCHEMA_FILE], { input: JSON.stringify(documents), encoding: 'utf8' });
  return JSON.parse(out) as Record<string, string[]>;
}

const drillFile = (name: string) =>
  parse(readFileSync(new URL(`../../drills/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

test('a JSON Schema validator accepts the shipped drills: a blob drill without load, lab drills with it', () => {
  const files = ['monthly-restore.yaml', 'lab.yaml', 'lab-front-outage.yaml', 'kubernetes-example.yaml', 'quarterly.yaml'];
  const errors = validateWithJsonSchema(Object.fromEntries(files.map((f) => [f, drillFile(f)])));
  for (const f of files) assert.deepEqual(errors[f], [], `${f} should validate against drills/drill.schema.json`);
});

test('the JSON Schema asks for load on every target but blob, and refuses it on a blob drill', () => {
  const { load: _load, ...labWithoutLoad } = drillFile('lab.yaml');
  const blobWithLoad = { ...drillFile('monthly-restore.yaml'), load: { rate: 10 } };
  const httpWithoutLoad = {
    name: 'x',
    kind: 'adhoc',
    target: { kind: 'http', url: 'http://127.0.0.1:1' },
    scenarios: [{ scenario: 'exec' }],
  };
  const errors = validateWithJsonSchema({ labWithoutLoad, blobWithLoad, httpWithoutLoad });
  assert.deepEqual(errors.labWithoutLoad, ["'load' is a required property"]);
  assert.deepEqual(errors.httpWithoutLoad, ["'load' is a required property"]);
  assert.equal(errors.blobWithLoad?.length, 1);
  assert.match(errors.blobWithLoad?.[0] ?? '', /False schema does not allow \{'rate': 10\}/);
});
