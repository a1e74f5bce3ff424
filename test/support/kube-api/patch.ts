/**
 * The three PATCH formats clients send: JSON patch (what `kubectl rollout undo` uses), JSON merge patch,
 * and strategic merge patch (kubectl's default for `patch`/`annotate`). Strategic merge knows the merge keys
 * of the lists that the served resources have; other lists are replaced, as the real server does for them.
 */
import { badRequest, unsupportedMediaType } from './status.ts';
import type { Json } from './types.ts';

type Obj = { [key: string]: Json };

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`json patch: invalid path "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, tokens: string[], path: string): { parent: Obj | Json[]; last: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(t)] : isObj(cur) ? cur[t] : undefined;
    if (next === undefined)
      throw badRequest(`the server rejected our request due to an error in our request: doc is missing path: "${path}"`);
    cur = next;
  }
  if (!Array.isArray(cur) && !isObj(cur)) throw badRequest(`json patch: "${path}" does not point into an object or array`);
  return { parent: cur, last: tokens[tokens.length - 1]! };
}

function getAt(doc: Json, path: string): Json {
  let cur: Json | undefined = doc;
  for (const t of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(t)] : isObj(cur) ? cur[t] : undefined;
    if (cur === undefined) throw badRequest(`json patch: doc is missing path: "${path}"`);
  }
  return cur;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, last } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!(i >= 0 && i < parent.length)) throw badRequest(`json patch: doc is missing path: "${path}"`);
    return parent.splice(i, 1)[0]!;
  }
  if (!(last in parent)) throw badRequest(`json patch: doc is missing path: "${path}": missing value`);
  const v = parent[last]!;
  delete parent[last];
  return v;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!(i >= 0 && i <= parent.length) || (replace && i === parent.length))
      throw badRequest(`json patch: index out of range in "${path}"`);
    parent.splice(i, replace ? 1 : 0, value);
  } else {
    if (replace && !(last in parent)) throw badRequest(`json patch: doc is missing key: "${path}": missing value`);
    parent[last] = value;
  }
  return doc;
}

interface Op {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

export function applyJsonPatch(doc: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch: the body must be a JSON array of operations');
  let out = structuredClone(doc);
  for (const raw of ops as Op[]) {
    const copy = (v: Json) => structuredClone(v);
    switch (raw.op) {
      case 'add':
        out = addAt(out, raw.path, copy(raw.value ?? null), false);
        break;
      case 'replace':
        out = addAt(out, raw.path, copy(raw.value ?? null), true);
        break;
      case 'remove':
        removeAt(out, raw.path);
        break;
      case 'move': {
        const v = removeAt(out, raw.from ?? '');
        out = addAt(out, raw.path, v, false);
        break;
      }
      case 'copy':
        out = addAt(out, raw.path, copy(getAt(out, raw.from ?? '')), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(out, raw.path)) !== JSON.stringify(raw.value)) throw new TestFailed(raw.path);
        break;
      default:
        throw badRequest(`json patch: unknown operation "${raw.op}"`);
    }
  }
  return out;
}

/** A failed `test` op; the API server answers it with 422 (Invalid), not 400. */
export class TestFailed extends Error {
  constructor(readonly path: string) {
    super(`the test op failed at "${path}"`);
  }
}

export function applyMergePatch(doc: Json, patch: Json): Json {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Obj = isObj(doc) ? structuredClone(doc) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k] ?? null, v);
  }
  return out;
}

/** Merge keys of the lists in Pod, Deployment, ReplicaSet, StatefulSet and HPA schemas. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  ports: 'containerPort',
  volumes: 'name',
  volumeMounts: 'mountPath',
  imagePullSecrets: 'name',
  conditions: 'type',
  ownerReferences: 'uid',
  containerStatuses: 'name',
  metrics: 'type',
};

/**
 * Primitive lists with `patchStrategy:"merge"`: ObjectMeta.finalizers (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
 * Strategic merge takes the union, keeping the server's order and appending new values; values listed under
 * `$deleteFromPrimitiveList/finalizers` are removed (apimachinery/pkg/util/strategicpatch/patch.go).
 */
const PRIMITIVE_MERGE = new Set(['metadata.finalizers']);

function strategicList(key: string, base: Json[], patch: Json[], path = key): Json[] {
  if (PRIMITIVE_MERGE.has(path) && !patch.some(isObj)) {
    const out = base.map((b) => structuredClone(b));
    for (const v of patch) if (!out.some((b) => JSON.stringify(b) === JSON.stringify(v))) out.push(structuredClone(v));
    return out;
  }
  const mergeKey = MERGE_KEYS[key];
  if (!mergeKey || !patch.every(isObj)) return patch.filter((p) => !(isObj(p) && '$patch' in p)).map((p) => structuredClone(p));
  const out = base.map((b) => structuredClone(b));
  for (const item of patch as Obj[]) {
    const id = item[mergeKey];
    const at = out.findIndex((b) => isObj(b) && b[mergeKey] === id);
    if (item.$patch === 'delete') {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) {
      out[at] = applyStrategic(out[at]!, item);
    } else {
      out.push(applyStrategic({}, item));
    }
  }
  return out;
}

export function applyStrategic(doc: Json, patch: Json, path = ''): Json {
  if (!isObj(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  const out: Obj = isObj(doc) ? structuredClone(doc) : {};
  const at = (k: string) => (path ? `${path}.${k}` : k);
  for (const [k, v] of Object.entries(patch)) {
    // Directives kubectl adds for ordering and key retention; the order and retained keys here follow the patch anyway.
    if (k.startsWith('$setElementOrder/') || k === '$retainKeys' || k === '$patch') continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const key = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set((Array.isArray(v) ? v : []).map((x) => JSON.stringify(x)));
      if (Array.isArray(out[key])) out[key] = (out[key] as Json[]).filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (v === null) delete out[k];
    else if (Array.isArray(v)) out[k] = strategicList(k, Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, at(k));
    else out[k] = applyStrategic(out[k] ?? null, v, at(k));
  }
  return out;
}

const BUILT_IN_PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];
/** Custom resources have no Go struct to carry patch strategies, so no strategic merge patch. */
const CUSTOM_PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'];

/** `custom`: the resource is a custom resource (a CRD's), which refuses strategic merge patch with 415. */
export function applyPatch(contentType: string, doc: Json, patch: Json, custom = false): Json {
  const type = contentType.split(';')[0]!.trim();
  const accepts = custom ? CUSTOM_PATCH_TYPES : BUILT_IN_PATCH_TYPES;
  switch (accepts.includes(type) ? type : '') {
    case 'application/json-patch+json':
      return applyJsonPatch(doc, patch);
    case 'application/merge-patch+json':
      return applyMergePatch(doc, patch);
    case 'application/strategic-merge-patch+json':
      return applyStrategic(doc, patch);
    default:
      // Including apply-patch+yaml: server-side apply is not implemented here.
      throw unsupportedMediaType(accepts);
  }
}
