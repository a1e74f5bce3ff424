/**
 * Blob metadata travels as `x-ms-meta-<key>` headers, and the service requires keys to be valid
 * C# identifiers: a hyphenated key is rejected (Azure) or mangled, so refuse it before any request.
 */

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Header values: visible ASCII and spaces; no leading/trailing space (the service trims them, so a
// round trip would not return what was written).
const VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

/** Problems with a metadata map, one sentence each; empty when it is valid. */
export function metadataProblems(metadata: Record<string, string>): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(metadata)) {
    if (!IDENTIFIER.test(key)) {
      const fixed = key.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=[0-9])/, '_');
      problems.push(
        `metadata key "${key}" is not a C# identifier (letters, digits and underscores, not starting with a digit; no hyphens): use "${fixed}"`,
      );
    }
    const lower = key.toLowerCase();
    const prev = seen.get(lower);
    if (prev !== undefined)
      problems.push(`metadata keys "${prev}" and "${key}" differ only in case; Blob metadata keys are case-insensitive`);
    seen.set(lower, key);
    if (typeof value !== 'string' || !VALUE.test(value)) {
      problems.push(`metadata value of "${key}" must be printable ASCII without leading or trailing spaces`);
    }
  }
  return problems;
}
