import type { z } from 'zod';
import { show, unknownKeyMessage } from './messages.ts';
import type { PathKey, SourceProblem, YamlSource } from './yaml-source.ts';

/**
 * zod issues become problems with positions. Two issue kinds need more than zod says: a missing key
 * (zod reports it on the value, which has no text; we point at the mapping it is missing from) and
 * unknown keys (zod reports one issue per mapping; we report each key where it is written, with the
 * keys that mapping allows).
 */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  opts: { source: YamlSource; schema: z.core.$ZodType; value: unknown; prefix?: PathKey[] },
): SourceProblem[] {
  const prefix = opts.prefix ?? [];
  const out: SourceProblem[] = [];
  for (const issue of issues) {
    const rel = issue.path.map(toKey);
    const path = [...prefix, ...rel];
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(opts.schema, opts.value, rel);
      for (const key of issue.keys) {
        out.push({ ...opts.source.keyPositionAt(path, key), path: [...path, key], message: unknownKeyMessage(key, allowed) });
      }
      continue;
    }
    const last = rel[rel.length - 1];
    const parent = valueAt(opts.value, rel.slice(0, -1));
    const missing = last !== undefined && valueAt(opts.value, rel) === undefined && parent !== null && typeof parent === 'object';
    const message = missing ? `missing required key ${JSON.stringify(String(last))}; ${issue.message}` : withInput(issue);
    out.push({ ...opts.source.valuePosition(path), path, message });
  }
  return out;
}

/**
 * Scenario authors write messages like `expected a percentage from 1% to 100%`; the value that
 * failed makes them actionable, so it is added when the message does not already quote it.
 */
function withInput(issue: z.core.$ZodIssue): string {
  const m = issue.message;
  const input = issue.input;
  const scalar = typeof input === 'string' || typeof input === 'number' || typeof input === 'boolean';
  if (!scalar || !m.startsWith('expected ') || m.includes(', got ') || m.includes(show(input))) return m;
  return `${m}, got ${show(input)}`;
}

function toKey(k: PropertyKey): PathKey {
  return typeof k === 'number' ? k : String(k);
}

function valueAt(value: unknown, path: readonly PathKey[]): unknown {
  let v = value;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** The view of zod's internal definitions the walk below needs; `_zod.def` is zod 4's stable core API. */
interface Def {
  type: string;
  shape?: Record<string, z.core.$ZodType>;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  element?: z.core.$ZodType;
  options?: z.core.$ZodType[];
  discriminator?: string;
  values?: unknown[];
  getter?: () => z.core.$ZodType;
}
const defOf = (s: z.core.$ZodType): Def => s._zod.def as unknown as Def;

/** Wrappers that do not change which keys a mapping takes. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (let i = 0; i < 32; i++) {
    const d = defOf(s);
    if (d.innerType && ['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(d.type))
      s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else if (d.type === 'lazy' && d.getter) s = d.getter();
    else break;
  }
  return s;
}

/**
 * The object schema that validated the value at `path`. A discriminated union is resolved by the
 * value's discriminator; a plain union by its first object option (good enough for "allowed:" lists,
 * which is all this is for).
 */
function objectSchemaAt(schema: z.core.$ZodType, value: unknown, path: readonly PathKey[]): z.core.$ZodType | undefined {
  let s = unwrap(schema);
  let v = value;
  let i = 0;
  for (;;) {
    const d = defOf(s);
    if (d.type === 'union' && d.options) {
      const options = d.options.map(unwrap);
      const picked =
        d.discriminator !== undefined ? byDiscriminator(options, d.discriminator, v) : options.find((o) => defOf(o).type === 'object');
      if (!picked) return undefined;
      s = picked;
      continue;
    }
    if (i === path.length) return d.type === 'object' ? s : undefined;
    const key = path[i++]!;
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
    if (d.type === 'object' && d.shape) {
      const next = d.shape[String(key)];
      if (!next) return undefined;
      s = unwrap(next);
    } else if (d.type === 'array' && d.element) {
      s = unwrap(d.element);
    } else {
      return undefined;
    }
  }
}

function byDiscriminator(options: z.core.$ZodType[], key: string, value: unknown): z.core.$ZodType | undefined {
  const wanted = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  return options.find((o) => {
    const field = defOf(o).shape?.[key];
    return field !== undefined && (defOf(unwrap(field)).values ?? []).includes(wanted);
  });
}

export function allowedKeys(schema: z.core.$ZodType, value: unknown, path: readonly PathKey[]): string[] {
  const obj = objectSchemaAt(schema, value, path);
  return obj ? Object.keys(defOf(obj).shape ?? {}) : [];
}
