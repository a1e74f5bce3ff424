import type { z } from 'zod';

/**
 * Wording shared by every config message: each one says what was expected and what was found,
 * in the drill file's own terms (mapping, list) rather than zod's or JavaScript's.
 */

/** A value as the user wrote it, short enough for one line. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** Edit distance, for "did you mean": typos in keys and enum values are the commonest drill mistakes. */
export function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The candidate a typo most likely meant, or undefined when none is close enough to be a fair guess. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  // A truncated word (`stop` for `stopConditions`) is far in edit distance but plain in intent.
  const extending = w.length >= 3 ? candidates.filter((c) => c.toLowerCase().startsWith(w)) : [];
  if (extending.length === 1) return extending[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  const tolerance = Math.max(2, Math.floor(Math.max(word.length, best.length) / 3));
  return bestD <= tolerance ? best : undefined;
}

export function didYouMean(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates);
  return c === undefined || c === word ? '' : `; did you mean ${JSON.stringify(c)}?`;
}

/** `unknown key "scenaros"; did you mean "scenarios"? allowed: ...`: the suggestion, then the full list to pick from. */
export function withChoices(head: string, word: string, choices: readonly string[], label: string): string {
  const hint = didYouMean(word, choices);
  return `${head}${hint}${hint === '' ? ';' : ''} ${label}: ${choices.join(', ')}`;
}

export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  if (allowed.length === 0) return `unknown key ${JSON.stringify(key)}; this mapping takes no keys`;
  return withChoices(`unknown key ${JSON.stringify(key)}`, key, allowed, 'allowed');
}

const NOUNS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  tuple: 'a list',
  null: 'an empty value',
};

function bound(n: number | bigint, inclusive: boolean | undefined, above: boolean): string {
  if (above) return inclusive ? `of at least ${n}` : `greater than ${n}`;
  return inclusive ? `of at most ${n}` : `less than ${n}`;
}

/** Drop the ", got ..." tail so union alternatives can be listed before one shared "got". */
function expectation(message: string): string {
  return message.replace(/^expected /, '').replace(/, got .*$/s, '');
}

/**
 * The error map every drill and params schema is parsed with. Schema-level messages (refinements,
 * custom errors) win over it; it covers zod's generic issues. For a missing value it returns only
 * the expectation: the loader prefixes `missing required key "x"`.
 */
export const errorMap: z.core.$ZodErrorMap = (iss) => {
  const got = iss.input === undefined ? '' : `, got ${show(iss.input)}`;
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.expected === 'int' && typeof iss.input === 'number') return `expected an integer, got ${iss.input}`;
      return `expected ${NOUNS[iss.expected] ?? iss.expected}${got}`;
    }
    case 'too_small':
    case 'too_big': {
      const above = iss.code === 'too_small';
      const limit = above ? (iss as { minimum: number | bigint }).minimum : (iss as { maximum: number | bigint }).maximum;
      if (iss.origin === 'array') {
        const n = Number(limit);
        if (above && n === 1 && iss.inclusive) return 'expected at least one entry, got an empty list';
        return `expected a list ${bound(limit, iss.inclusive, above)} entries${Array.isArray(iss.input) ? `, got ${iss.input.length}` : ''}`;
      }
      if (iss.origin === 'string') {
        if (above && Number(limit) === 1) return `expected a non-empty string${got}`;
        return `expected a string ${bound(limit, iss.inclusive, above)} characters${got}`;
      }
      return `expected a number ${bound(limit, iss.inclusive, above)}${got}`;
    }
    case 'invalid_value': {
      const values = iss.values.map((v) => String(v));
      if (values.length === 1) return `expected ${JSON.stringify(iss.values[0])}${got}`;
      const hint = typeof iss.input === 'string' ? didYouMean(iss.input, values) : '';
      return `expected one of ${values.join(', ')}${got}${hint}`;
    }
    case 'invalid_union': {
      if (iss.discriminator !== undefined) {
        const options = ((iss.options ?? []) as unknown[]).map((o) => String(o));
        const value = iss.input && typeof iss.input === 'object' ? (iss.input as Record<string, unknown>)[iss.discriminator] : undefined;
        if (value === undefined) return `expected one of ${options.join(', ')}`;
        const hint = typeof value === 'string' ? didYouMean(value, options) : '';
        return `expected one of ${options.join(', ')}, got ${show(value)}${hint}`;
      }
      return `expected ${unionAlternatives(iss.errors).join(' or ')}${got}`;
    }
    case 'invalid_format':
      return `expected ${iss.format === 'regex' ? `a string matching ${iss.pattern}` : `a valid ${iss.format}`}${got}`;
    case 'not_multiple_of':
      return `expected a multiple of ${iss.divisor}${got}`;
    default:
      return undefined;
  }
};

/**
 * The alternatives worth naming. When the value had the right type for some alternative (a number
 * for `count: 0`), only those explain the mistake; listing "or a string" too would only confuse.
 */
function unionAlternatives(branches: z.core.$ZodIssue[][]): string[] {
  const deep = branches.filter((b) => !b.every((i) => i.code === 'invalid_type' && i.path.length === 0));
  const chosen = deep.length > 0 ? deep : branches;
  const out: string[] = [];
  for (const b of chosen) {
    const text = b.map((i) => expectation(i.message)).join(' and ');
    if (!out.includes(text)) out.push(text);
  }
  return out;
}
