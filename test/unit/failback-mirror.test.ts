/**
 * The failback's mirror rule: the primary's account ends holding what the secondary's holds. A blob is copied
 * when the primary lacks it or holds another version; the same version on both sides (one a copy of the other,
 * either way) is left; a blob only the primary has (written there after the last replication, lost with the
 * region) is removed, as an account failed back holds what its secondary held.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ReplicaListing } from '../../lib/adapters/blob/replicate.ts';
import { planMirror } from '../../lib/lab/regions/failback.ts';

const blob = (name: string, etag: string, sourceEtag: string | null = null): ReplicaListing => ({
  name,
  etag,
  sourceEtag,
  contentLength: 1,
  lastModifiedMs: 0,
  contentMD5: null,
});

test('copied: missing in the primary, or another version there; kept: a copy either way; removed: primary-only', () => {
  const secondary = [
    blob('replicated-before-the-loss', 's1', 'p1'),
    blob('written-in-the-secondary', 's2'),
    blob('mirrored-by-an-earlier-pass', 's3'),
    blob('overwritten-in-the-secondary', 's4'),
  ];
  const primary = [
    blob('replicated-before-the-loss', 'p1'),
    blob('mirrored-by-an-earlier-pass', 'p3', 's3'),
    blob('overwritten-in-the-secondary', 'p4'),
    blob('never-replicated', 'p5'),
  ];
  const plan = planMirror(secondary, primary);
  assert.deepEqual(
    plan.copy.map((b) => b.name),
    ['written-in-the-secondary', 'overwritten-in-the-secondary'],
  );
  assert.deepEqual(plan.remove, ['never-replicated']);
});

test('a second pass over what the first copied copies nothing', () => {
  const secondary = [blob('a', 's1'), blob('b', 's2', 'p2')];
  const primary = [blob('a', 'p9', 's1'), blob('b', 'p2')];
  assert.deepEqual(planMirror(secondary, primary), { copy: [], remove: [] });
});
