/**
 * When the lab's archiver takes a new base backup: none yet, a hole in the archive after the newest, or the newest
 * as old as the interval (daily by default, the organisation's schedule), checked often enough to start at most a
 * tenth of the interval late.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BASE_BACKUP_EVERY_MS, baseBackupCheckEveryMs, baseBackupDue, holeAfter } from '../../lib/lab/archive.ts';

const DAY = 86_400_000;
const now = Date.parse('2026-12-06T06:00:00Z');
const ago = (ms: number) => new Date(now - ms).toISOString();

test('the default interval is a day: the organisation backs up daily', () => {
  assert.equal(DEFAULT_BASE_BACKUP_EVERY_MS, DAY);
});

test('a base backup is due with none yet, or once the newest is as old as the interval', () => {
  assert.equal(baseBackupDue(null, now, DAY), true);
  assert.equal(baseBackupDue(ago(DAY - 1000), now, DAY), false);
  assert.equal(baseBackupDue(ago(DAY), now, DAY), true);
  assert.equal(baseBackupDue(ago(3 * DAY), now, DAY), true);
  // A clock set back (the newest appears to end in the future) takes none: it is not older than the interval.
  assert.equal(baseBackupDue(ago(-60_000), now, DAY), false);
  assert.equal(baseBackupDue(ago(15_000), now, 10_000), true);
});

test('the check runs at a tenth of the interval, between every 2 s and every 10 minutes', () => {
  assert.equal(baseBackupCheckEveryMs(DAY), 600_000);
  assert.equal(baseBackupCheckEveryMs(60 * 60_000), 360_000);
  assert.equal(baseBackupCheckEveryMs(60_000), 6000);
  assert.equal(baseBackupCheckEveryMs(10_000), 2000);
});

test('a hole in the archive found after the newest base backup ended makes one due at once; one found before does not', () => {
  const newest = ago(60 * 60_000);
  assert.equal(baseBackupDue(newest, now, DAY, ago(30 * 60_000)), true, 'hole after the newest: no restore from it crosses the hole');
  assert.equal(baseBackupDue(newest, now, DAY, ago(2 * 60 * 60_000)), false, 'hole before the newest: restores from it start past it');
  assert.equal(baseBackupDue(newest, now, DAY, null), false);
  assert.equal(baseBackupDue(null, now, DAY, ago(1000)), true);
});

test('a hole lies after a base backup when it was found at or after the backup ended, which lab status and the archiver both use', () => {
  assert.equal(holeAfter(ago(1000), ago(2000)), true);
  assert.equal(holeAfter(ago(2000), ago(2000)), true);
  assert.equal(holeAfter(ago(3000), ago(2000)), false);
});
