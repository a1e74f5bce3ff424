import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { UserError } from '../errors.ts';
import type { LoadProfile, RequestTemplate } from './types.ts';

const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD']);
/** The request log stores the template index in a Uint8Array. */
const MAX_TEMPLATES = 256;
const PLACEHOLDER = /\{\{(seq|token)\}\}/g;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// undici refuses these on every request; refusing them here turns a run of `other` errors into exit code 2.
const UNSENDABLE_HEADERS: ReadonlySet<string> = new Set(['transfer-encoding', 'keep-alive', 'upgrade', 'expect', 'content-length']);

export const Placeholder = { seq: 0, token: 1 } as const;

/**
 * A request template prepared once so the hot path does no serialisation: either fixed dispatch
 * options shared by every request, or the JSON body pre-split around its placeholders.
 */
export interface CompiledTemplate {
  method: RequestTemplate['method'];
  /** Base path of the profile URL joined with the template path. */
  path: string;
  headers: Record<string, string>;
  /** Shared by every request of this template when its body has no placeholders. */
  fixed: Dispatcher.DispatchOptions | null;
  /** JSON text around the placeholders: literals[0], codes[0], literals[1], ... literals[codes.length]. */
  literals: string[];
  codes: number[];
  /** The body carries `{{token}}`: each request of this template is a write the ledger follows. */
  tokened: boolean;
  /** An attachment upload (LoadProfile.attachments): path and body made per request, ledgered in files.tsv. */
  attachment?: true;
}

function invalid(what: string): never {
  throw new UserError(`load profile: ${what}`);
}

function positive(value: unknown, what: string, integer: boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    invalid(`${what} must be a positive ${integer ? 'integer' : 'number'} (got ${String(value)})`);
  }
}

/** Throws a UserError (exit code 2) naming the first problem; returns the parsed base URL. */
export function validateProfile(profile: LoadProfile): URL {
  let url: URL;
  try {
    url = new URL(profile.url);
  } catch {
    invalid(`url "${profile.url}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid(`url "${profile.url}" must be http or https`);
  if (url.search || url.hash) invalid(`url "${profile.url}" must not have a query or fragment (put them in the request path)`);
  positive(profile.rate, 'rate', false);
  positive(profile.timeoutMs, 'timeoutMs', false);
  positive(profile.maxInFlight, 'maxInFlight', true);
  positive(profile.connections, 'connections', true);
  if (!Array.isArray(profile.requests) || profile.requests.length === 0) invalid('requests must list at least one request');
  if (profile.requests.length > MAX_TEMPLATES) invalid(`at most ${MAX_TEMPLATES} requests (got ${profile.requests.length})`);
  let total = 0;
  profile.requests.forEach((r, i) => {
    if (!METHODS.has(r.method)) invalid(`requests[${i}].method "${String(r.method)}" is not one of ${[...METHODS].join(', ')}`);
    if (typeof r.path !== 'string' || !r.path.startsWith('/')) invalid(`requests[${i}].path must start with "/"`);
    if (/[^\u0021-\u00ff]/.test(r.path)) invalid(`requests[${i}].path "${r.path}" has spaces or characters that need percent-encoding`);
    if (typeof r.weight !== 'number' || !Number.isFinite(r.weight) || r.weight < 0) {
      invalid(`requests[${i}].weight must be a number >= 0 (got ${String(r.weight)})`);
    }
    for (const [k, v] of Object.entries(r.headers ?? {})) {
      if (!HEADER_NAME.test(k)) invalid(`requests[${i}].headers: "${k}" is not a valid header name`);
      if (UNSENDABLE_HEADERS.has(k.toLowerCase())) invalid(`requests[${i}].headers.${k}: the HTTP client manages this header itself`);
      if (typeof v !== 'string') invalid(`requests[${i}].headers.${k} must be a string`);
      if (/[\r\n\0]/.test(v)) invalid(`requests[${i}].headers.${k} must not contain line breaks`);
    }
    total += r.weight;
  });
  if (total <= 0) invalid('the request weights add up to 0');
  const share = profile.attachments?.share;
  if (share !== undefined && !(typeof share === 'number' && share >= 0 && share < 1))
    invalid(`attachments.share must be a number from 0 to below 1 (got ${String(share)})`);
  return url;
}

/**
 * JSON text of `body` split at the placeholders in its string values. Keys are left alone.
 * The placeholders are swapped for a random private-use marker inside JSON.stringify's replacer,
 * so the result keeps JSON's own rules (toJSON, undefined, escaping) and needs no serialiser of ours.
 */
function splitBody(body: unknown, where: string): { literals: string[]; codes: number[] } {
  const marker = `\u{E000}${randomBytes(8).toString('hex')}`;
  let json: string | undefined;
  try {
    json = JSON.stringify(body, (_key, value: unknown) =>
      typeof value === 'string' ? value.replace(PLACEHOLDER, (_m, name: string) => `${marker}${name}${marker}`) : value,
    );
  } catch (e) {
    invalid(`${where}.body is not JSON: ${(e as Error).message}`);
  }
  if (json === undefined) invalid(`${where}.body is not JSON`);
  const pieces = json.split(marker);
  // split() around `marker name marker` alternates literal, name, literal, ...
  const literals: string[] = [];
  const codes: number[] = [];
  for (let i = 0; i < pieces.length; i++) {
    if (i % 2 === 0) literals.push(pieces[i]!);
    else codes.push(pieces[i] === 'seq' ? Placeholder.seq : Placeholder.token);
  }
  return { literals, codes };
}

export function compileTemplates(profile: LoadProfile, base: URL): CompiledTemplate[] {
  const prefix = base.pathname.replace(/\/+$/, '');
  return profile.requests.map((r, i) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v;
    const path = prefix + r.path;
    if (r.body === undefined) {
      return { method: r.method, path, headers, fixed: { path, method: r.method, headers }, literals: [], codes: [], tokened: false };
    }
    headers['content-type'] ??= 'application/json';
    const { literals, codes } = splitBody(r.body, `requests[${i}]`);
    const fixed = codes.length === 0 ? { path, method: r.method, headers, body: Buffer.from(literals[0]!) } : null;
    return { method: r.method, path, headers, fixed, literals, codes, tokened: codes.includes(Placeholder.token) };
  });
}

/**
 * The body of one request of a template with placeholders; every `{{token}}` in it gets the same token:
 * the one given, or one made by `newToken` (called at most once).
 */
export function fillBody(t: CompiledTemplate, seq: number, newToken: string | (() => string)): string {
  const seqText = String(seq);
  let token = typeof newToken === 'string' ? newToken : '';
  let s = t.literals[0]!;
  for (let k = 0; k < t.codes.length; k++) {
    if (t.codes[k] === Placeholder.seq) s += seqText;
    else s += token ||= (newToken as () => string)();
    s += t.literals[k + 1]!;
  }
  return s;
}

/**
 * Smooth weighted round-robin (nginx's): deterministic, and interleaves templates evenly instead of
 * sending all of one weight's share in a burst, so every second of a run sees the same mix.
 */
export class WeightedPicker {
  private readonly weights: Float64Array;
  private readonly current: Float64Array;
  private readonly total: number;

  constructor(weights: readonly number[]) {
    this.weights = Float64Array.from(weights);
    this.current = new Float64Array(weights.length);
    this.total = weights.reduce((a, b) => a + b, 0);
  }

  next(): number {
    let best = 0;
    for (let k = 0; k < this.weights.length; k++) {
      this.current[k]! += this.weights[k]!;
      if (this.current[k]! > this.current[best]!) best = k;
    }
    this.current[best]! -= this.total;
    return best;
  }
}
