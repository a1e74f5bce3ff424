import { sha256 } from './parse.ts';
import type { ChainEntry, Integrity } from './types.ts';

/**
 * Every run record's sha256 and a hash chain across them in start order: changing, removing or
 * reordering a run after the record was made shows up in `drill verify`. The chain starts from the
 * previous quarter's head, so quarters link up the way an auditor's folder does.
 */

export const GENESIS = '0'.repeat(64);
export const CHAIN_RULE =
  'chain[i] = sha256(chain[i-1] + "\\n" + id + "\\n" + digest); chain[-1] = genesis; runs in startedAt, then id, order';

export function link(previous: string, id: string, digest: string): string {
  return sha256(`${previous}\n${id}\n${digest}`);
}

export function buildChain(
  runs: ReadonlyArray<{ id: string; file: string; digest: string }>,
  genesis = GENESIS,
  genesisFrom: string | null = null,
): Integrity {
  let prev = genesis;
  const entries: ChainEntry[] = runs.map((r) => {
    prev = link(prev, r.id, r.digest);
    return { id: r.id, file: r.file, digest: r.digest, chain: prev };
  });
  return { algorithm: 'sha256', rule: CHAIN_RULE, genesis, genesisFrom, entries, head: prev };
}

export interface ChainProblem {
  id: string | null;
  file: string | null;
  problem: string;
}

/**
 * Checks a record's chain against the digests actually read now (`actual`: id -> sha256 of the
 * file, or null when the file is gone). Pure: the reading is the caller's.
 */
export function checkChain(integrity: Integrity, actual: ReadonlyMap<string, string | null>): ChainProblem[] {
  const problems: ChainProblem[] = [];
  let prev = integrity.genesis;
  for (const e of integrity.entries) {
    const expected = link(prev, e.id, e.digest);
    if (expected !== e.chain)
      problems.push({ id: e.id, file: e.file, problem: `chain value does not follow from the entry before it (record.json was edited)` });
    prev = e.chain;
    const now = actual.get(e.id);
    if (now === undefined || now === null)
      problems.push({ id: e.id, file: e.file, problem: 'run record missing: it was in the record and cannot be read now' });
    else if (now !== e.digest)
      problems.push({
        id: e.id,
        file: e.file,
        problem: `digest mismatch: recorded ${e.digest.slice(0, 12)}…, file now ${now.slice(0, 12)}… (the run record changed after the quarterly record was made)`,
      });
  }
  if (prev !== integrity.head)
    problems.push({
      id: null,
      file: null,
      problem: `chain head ${integrity.head.slice(0, 12)}… does not match the entries (${prev.slice(0, 12)}…)`,
    });
  return problems;
}
