import { readFile } from 'node:fs/promises';

/** The last lines of a log, for an error that says why a lab process did not come up. */
export async function tail(path: string, lines = 15): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
