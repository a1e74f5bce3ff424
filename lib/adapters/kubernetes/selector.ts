/**
 * Label selectors on the client side: matching a drill's selector against a workload's pod template (to find
 * the workload when none of its pods exist right now) and spelling a workload's spec selector as a query.
 */
import type { V1LabelSelector } from '@kubernetes/client-node';

type Requirement = { key: string; op: 'exists' | 'notexists' } | { key: string; op: 'in' | 'notin'; values: string[] };

function split(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    if (selector[i] === '(') depth++;
    else if (selector[i] === ')') depth--;
    else if (selector[i] === ',' && depth === 0) {
      out.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  out.push(selector.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

/** Parses the forms the API server accepts; the server stays the judge of validity (it answers 400). */
function parse(selector: string): Requirement[] {
  return split(selector).map((part) => {
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
    if (set) return { key: set[1]!, op: set[2] as 'in' | 'notin', values: set[3]!.split(',').map((v) => v.trim()) };
    const cmp = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (cmp) return { key: cmp[1]!, op: cmp[2] === '!=' ? 'notin' : 'in', values: [cmp[3]!.trim()] };
    if (part.startsWith('!')) return { key: part.slice(1).trim(), op: 'notexists' };
    return { key: part, op: 'exists' };
  });
}

export function selectorMatches(selector: string, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return parse(selector).every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && r.values.includes(l[r.key]!);
      case 'notin':
        return !has || !r.values.includes(l[r.key]!);
    }
  });
}

/** A workload's spec.selector as the `labelSelector` query string. */
export function selectorToString(sel: V1LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${(e.values ?? []).join(',')})`);
  }
  return parts.join(',');
}
