/**
 * A lab kept as a stopped copy beside its folder, so that later tests or kill points start from the same state
 * without a fresh `lab up`: a two-region lab and its secondary's first copy took about 40 s under the suite's load,
 * putting the copy back and starting it a few seconds (2026-12-05). The copy goes back to the same folder only: the
 * lab's files name their own paths.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { labDown } from '../../lib/lab/index.ts';

/** Where the copy of the lab in `lab` is kept: beside it, for the test's clean-up to remove with it. */
export const keptLabCopy = (lab: string): string => `${lab}.kept`;

/** `cp -a`: PostgreSQL's data directories keep their owner (postgres, when the tests run as root) and modes. */
const copyTree = async (from: string, to: string): Promise<void> => {
  await promisify(execFile)('cp', ['-a', from, to]);
};

/** Stops the lab (a clean shutdown: no half-written page or blob in the copy) and keeps a copy; start it again yourself. */
export async function keepLabCopy(lab: string): Promise<void> {
  await labDown({ dir: lab });
  await rm(keptLabCopy(lab), { recursive: true, force: true });
  await copyTree(lab, keptLabCopy(lab));
}

/** Stops whatever runs in `lab`, and replaces its folder with the kept copy (not started). */
export async function putLabCopyBack(lab: string): Promise<void> {
  await labDown({ dir: lab, purge: true });
  await copyTree(keptLabCopy(lab), lab);
}
