/**
 * Label and field selectors with the API server's grammar and error wording, so a selector the real server
 * refuses is refused here too (a test that passes only against a lenient fake proves nothing).
 */
import { badRequest } from './status.ts';
import type { KubeObject } from './types.ts';

export type Requirement =
  | { key: string; op: 'exists' | 'notexists' }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'eq' | 'neq'; value: string };

export type LabelPredicate = (labels: Record<string, string> | undefined) => boolean;

/** Split on commas that are not inside `( )`: `a in (x,y),b=c` is two requirements. */
function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function checkKey(key: string, raw: string): string {
  if (!KEY.test(key) || key.length > 316) throw badRequest(`unable to parse requirement: invalid label key "${key}" in "${raw}"`);
  return key;
}

function checkValue(value: string, raw: string): string {
  if (!VALUE.test(value) || value.length > 63) throw badRequest(`unable to parse requirement: invalid label value "${value}" in "${raw}"`);
  return value;
}

export function parseLabelSelector(selector: string | undefined): Requirement[] {
  if (selector === undefined || selector.trim() === '') return [];
  return splitTop(selector).map((raw) => {
    const part = raw.trim();
    if (part === '') throw badRequest(`unable to parse requirement: found '', expected: identifier`);
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
    if (set) {
      const values = set[3]!.split(',').map((v) => checkValue(v.trim(), raw));
      return { key: checkKey(set[1]!, raw), op: set[2] as 'in' | 'notin', values };
    }
    const cmp = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (cmp) {
      const op = cmp[2] === '!=' ? 'neq' : 'eq';
      return { key: checkKey(cmp[1]!, raw), op, value: checkValue(cmp[3]!.trim(), raw) };
    }
    if (part.startsWith('!')) return { key: checkKey(part.slice(1).trim(), raw), op: 'notexists' };
    if (/\s/.test(part))
      throw badRequest(`unable to parse requirement: found '${part.split(/\s+/)[1]}', expected: in, notin, =, ==, !=, gt, lt`);
    return { key: checkKey(part, raw), op: 'exists' };
  });
}

export function matchRequirements(reqs: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'eq':
        return has && v === r.value;
      // `!=` and `notin` also match objects without the label, as in the API server.
      case 'neq':
        return !has || v !== r.value;
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
    }
  });
}

export function labelPredicate(selector: string | undefined): LabelPredicate {
  const reqs = parseLabelSelector(selector);
  return (labels) => matchRequirements(reqs, labels);
}

/** metav1.LabelSelector as found in Deployment and ReplicaSet specs. */
export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export function requirementsOf(sel: LabelSelectorSpec | undefined): Requirement[] {
  const reqs: Requirement[] = Object.entries(sel?.matchLabels ?? {}).map(([key, value]) => ({ key, op: 'eq', value }));
  for (const e of sel?.matchExpressions ?? []) {
    if (e.operator === 'Exists') reqs.push({ key: e.key, op: 'exists' });
    else if (e.operator === 'DoesNotExist') reqs.push({ key: e.key, op: 'notexists' });
    else reqs.push({ key: e.key, op: e.operator === 'In' ? 'in' : 'notin', values: e.values ?? [] });
  }
  return reqs;
}

/** The string form clients send in `labelSelector=` for a spec selector. */
export function selectorString(sel: LabelSelectorSpec | undefined): string {
  return requirementsOf(sel)
    .map((r) => {
      switch (r.op) {
        case 'exists':
          return r.key;
        case 'notexists':
          return `!${r.key}`;
        case 'eq':
          return `${r.key}=${r.value}`;
        case 'neq':
          return `${r.key}!=${r.value}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.op} (${r.values.join(',')})`;
      }
    })
    .join(',');
}

/** Fields each resource lets clients select on; anything else is a 400, as on the real server. */
const FIELDS: Record<string, Record<string, (o: KubeObject) => string | undefined>> = {
  '*': {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace,
  },
  pods: {
    'status.phase': (o) => o.status?.phase,
    'spec.nodeName': (o) => o.spec?.nodeName ?? '',
    'spec.restartPolicy': (o) => o.spec?.restartPolicy,
    'spec.schedulerName': (o) => o.spec?.schedulerName,
    'spec.serviceAccountName': (o) => o.spec?.serviceAccountName,
    'status.podIP': (o) => o.status?.podIP ?? '',
    'status.nominatedNodeName': (o) => o.status?.nominatedNodeName ?? '',
  },
  namespaces: { 'status.phase': (o) => o.status?.phase },
  replicasets: { 'status.replicas': (o) => String(o.status?.replicas ?? 0) },
};

export type ObjectPredicate = (o: KubeObject) => boolean;

export function fieldPredicate(resource: string, selector: string | undefined): ObjectPredicate {
  if (selector === undefined || selector.trim() === '') return () => true;
  const checks = selector.split(',').map((raw) => {
    const m = /^\s*([^!=\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(raw);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${raw}'`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const get = FIELDS['*']![field] ?? FIELDS[resource]?.[field];
    if (!get) throw badRequest(`field label not supported: ${field}`);
    return (o: KubeObject) => (get(o) === value) === (op !== '!=');
  });
  return (o) => checks.every((c) => c(o));
}
