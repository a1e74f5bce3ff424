/**
 * The one redactor: anything that may reach a log, an error message, a record or a report passes through
 * it. Patterns catch secrets in their usual carriers (connection strings, SAS query strings, SharedKey
 * headers, userinfo in URLs); the registry catches a known secret value wherever it appears, e.g. an
 * account key pasted into a drill parameter or echoed back by a tool. Adapters register what they read.
 */

const MASK = '***';

/** Secret values seen by this process (account keys, SAS signatures, passwords), raw and URL-encoded. */
const known = new Set<string>();

/**
 * Remember a secret so every redaction masks it anywhere. Values shorter than 8 characters are ignored:
 * masking them would mangle ordinary text and they are not real keys or signatures anyway.
 */
export function registerSecret(value: string | undefined): void {
  if (!value || value.length < 8) return;
  known.add(value);
  // Signatures and keys travel URL-encoded in query strings (`+` `/` `=` become %2B %2F %3D).
  known.add(encodeURIComponent(value));
}

/** Register the signature of a SAS token (with or without a leading `?`). */
export function registerSasToken(token: string | undefined): void {
  if (!token) return;
  const sig = new URLSearchParams(token.replace(/^\?/, '')).get('sig');
  if (sig) registerSecret(sig);
}

const INLINE_SECRETS: Array<[RegExp, string]> = [
  // Connection-string parts run to the next `;` (a SAS holds `&`s); a password in a query or DSN stops at `&` too.
  [/\b(accountkey|sharedaccesskey|sharedaccesssignature)=[^;\s"']*/gi, `$1=${MASK}`],
  [/\b(password|pwd)=[^;&\s"']*/gi, `$1=${MASK}`],
  // SAS signature in a query string, or a bare `sig=` at the start.
  [/([?&;]sig=)[^&;\s"']*/gi, `$1${MASK}`],
  [/^(sig=)[^&;\s"']+/gi, `$1${MASK}`],
  // Authorization: SharedKey account:signature
  [/(SharedKey(?:Lite)? [^:\s]+:)[A-Za-z0-9+/=]+/g, `$1${MASK}`],
  // scheme://user:password@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^/:@\s"']*):[^@/\s"']*@/gi, `$1:${MASK}@`],
];

/** Masks inline secrets and every registered (or given) secret value in a piece of text. */
export function redactSecrets(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const [re, to] of INLINE_SECRETS) out = out.replace(re, to);
  // Longest first, so a secret that contains another registered one is masked whole.
  const values = [...known, ...secrets].filter((s) => s.length >= 8).sort((a, b) => b.length - a.length);
  for (const v of values) out = out.split(v).join(MASK);
  return out;
}

/**
 * Records are shared with auditors and pasted into tickets: nothing that grants access may reach them.
 * Keys that name a secret are dropped whole (the value's shape could leak it too).
 */
const SECRET_KEY = /password|secret|key|token|sas|connection.?string/i;

/** A deep copy with secret-named keys removed and every string redacted. */
export function redact<T>(value: T): T {
  return redactValue(value) as T;
}

function redactValue(v: unknown): unknown {
  if (typeof v === 'string') return redactSecrets(v);
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
