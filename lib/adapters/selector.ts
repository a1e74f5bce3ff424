/**
 * Kubernetes label selectors, parsed once for every target: the lab's supervisor matches them against its
 * replicas, the Kubernetes adapter against pod templates, and scenarios check them at validation time.
 */
type Op = '=' | '!=' | 'in' | 'notin' | 'exists' | '!exists';
export interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

const KEY = String.raw`[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?`;
const VALUE = String.raw`([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const PATTERNS: [RegExp, (m: RegExpExecArray) => Requirement][] = [
  [new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`), (m) => ({ key: m[1]!, op: m[3] === '!=' ? '!=' : '=', values: [m[4]!] })],
  [
    new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`),
    (m) => ({ key: m[1]!, op: m[3] as Op, values: m[4]!.split(',').map((v) => v.trim()) }),
  ],
  [new RegExp(`^!\\s*(${KEY})$`), (m) => ({ key: m[1]!, op: '!exists', values: [] })],
  [new RegExp(`^(${KEY})$`), (m) => ({ key: m[1]!, op: 'exists', values: [] })],
];

/** Kubernetes label selector syntax: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by commas. */
export function parseSelector(selector: string): Requirement[] {
  // As in Kubernetes, the empty selector selects everything.
  if (selector.trim() === '') return [];
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  if (depth !== 0) throw new Error(`label selector "${selector}": unbalanced parentheses`);
  return parts.map((raw) => {
    const part = raw.trim();
    for (const [re, build] of PATTERNS) {
      const m = part === '' ? null : re.exec(part);
      if (m) return build(m);
    }
    return fail(selector, part);
  });
}

function fail(selector: string, part: string): never {
  throw new Error(
    `label selector "${selector}": cannot parse "${part}" (use k=v, k!=v, k in (a,b), k notin (a,b), k or !k, comma-separated)`,
  );
}

export function matchesSelector(labels: Record<string, string>, reqs: Requirement[]): boolean {
  return reqs.every((r) => {
    const v = labels[r.key];
    switch (r.op) {
      case '=':
        return v === r.values[0];
      case '!=':
        return v !== r.values[0];
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case '!exists':
        return v === undefined;
    }
  });
}
