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

function strategicList(key: string, base: Json[], patch: Json[]): Json[] {
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

export function applyStrategic(doc: Json, patch: Json): Json {
  if (!isObj(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  const out: Obj = isObj(doc) ? structuredClone(doc) : {};
  for (const [k, v] of Object.entries(patch)) {
    // Directives kubectl adds for ordering and key retention; the order and retained keys here follow the patch anyway.
    if (k.startsWith('$setElementOrder/') || k === '$retainKeys' || k === '$patch') continue;
    if (v === null) delete out[k];
    else if (Array.isArray(v)) out[k] = strategicList(k, Array.isArray(out[k]) ? (out[k] as Json[]) : [], v);
    else out[k] = applyStrategic(out[k] ?? null, v);
  }
  return out;
}

export function applyPatch(contentType: string, doc: Json, patch: Json): Json {
  const type = contentType.split(';')[0]!.trim();
  switch (type) {
    case 'application/json-patch+json':
      return applyJsonPatch(doc, patch);
    case 'application/merge-patch+json':
      return applyMergePatch(doc, patch);
    case 'application/strategic-merge-patch+json':
      return applyStrategic(doc, patch);
    default:
      throw unsupportedMediaType(type || '(none)');
  }
}
