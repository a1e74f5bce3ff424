/**
 * Masking of storage secrets in anything that may reach a log, an error message or a record.
 *
 * Patterns catch secrets in their usual carriers (connection strings, SAS query strings, SharedKey
 * headers); the registry catches a known secret value wherever it appears, e.g. an account key
 * pasted into a drill parameter or echoed back by a tool.
 */

const MASK = '***';

/** Secret values seen by this process (account keys, SAS signatures), in raw and URL-encoded form. */
const known = new Set<string>();

/**
 * Remember a secret so redactSecrets masks it anywhere. Values shorter than 8 characters are ignored:
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

const patterns: Array<[RegExp, string]> = [
  [/(AccountKey=)[^;\s"']+/gi, `$1${MASK}`],
  [/(SharedAccessSignature=)[^;\s"']+/gi, `$1${MASK}`],
  [/([?&;]sig=)[^&;\s"']+/gi, `$1${MASK}`],
  [/^(sig=)[^&;\s"']+/gi, `$1${MASK}`],
  [/(SharedKey(?:Lite)? [^:\s]+:)[A-Za-z0-9+/=]+/g, `$1${MASK}`],
];

export function redactSecrets(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const [re, replacement] of patterns) out = out.replace(re, replacement);
  // Longest first, so a secret that contains another registered one is masked whole.
  const values = [...known, ...secrets].filter((s) => s.length >= 8).sort((a, b) => b.length - a.length);
  for (const v of values) out = out.split(v).join(MASK);
  return out;
}
