/**
 * Records are shared with auditors and pasted into tickets: nothing that grants access may reach them.
 * Keys that name a secret are dropped whole (the value's shape could leak it too); strings are scanned
 * for the inline forms secrets take in connection strings, SAS URLs and userinfo.
 */
const SECRET_KEY = /password|secret|key|token|sas|connection.?string/i;

const INLINE_SECRETS: Array<[RegExp, string]> = [
  // password=..., AccountKey=..., SharedAccessSignature=... up to the next separator.
  [/\b(password|pwd|accountkey|sharedaccesskey|sharedaccesssignature)=[^;&\s"']*/gi, '$1=***'],
  // SAS signature in a query string.
  [/([?&]sig=)[^&\s"']*/gi, '$1***'],
  // scheme://user:password@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^/:@\s"']*):[^@/\s"']*@/gi, '$1:***@'],
];

export function redactString(s: string): string {
  let out = s;
  for (const [re, to] of INLINE_SECRETS) out = out.replace(re, to);
  return out;
}

/** A deep copy with secret-named keys removed and inline secrets masked. */
export function redact<T>(value: T): T {
  return redactValue(value) as T;
}

function redactValue(v: unknown): unknown {
  if (typeof v === 'string') return redactString(v);
  if (Array.isArray(v)) return v.map(redactValue);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (!SECRET_KEY.test(k)) out[k] = redactValue(x);
    }
    return out;
  }
  return v;
}
