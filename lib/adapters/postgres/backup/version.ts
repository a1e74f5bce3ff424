import { readFileSync } from 'node:fs';

let cached: string | null = null;

/** The harness version, for manifests: a restore can tell which harness wrote a backup. */
export function harnessVersion(): string {
  if (cached) return cached;
  try {
    cached =
      (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    cached = 'unknown';
  }
  return cached;
}
