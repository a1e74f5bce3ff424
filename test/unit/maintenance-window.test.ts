/**
 * Maintenance windows as pure functions of fixed instants: inside or not, the next occurrence, an overrun,
 * a zone with daylight saving, touching windows merged; and the drill file's maintenance errors by line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWindow, nextWindow, windowAt } from '../../lib/config/maintenance.ts';
import { DEFAULT_POLICY } from '../../lib/config/defaults.ts';
import { formatProblem, validateDrillText } from '../../lib/config/load.ts';
import type { MaintenancePolicy } from '../../lib/config/types.ts';
import { capabilitiesOf } from '../../lib/targets/index.ts';
import { testCatalog } from '../fixtures/bad-drills/catalog.ts';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const MIN = 60_000;

test("the organisation's default: Sundays 02:00-04:00 UTC, 48h notice", () => {
  const m = DEFAULT_POLICY.maintenance;
  assert.deepEqual([m.days, m.startMinute, m.endMinute, m.timeZone, m.noticeMs], [[0], 120, 240, 'UTC', 48 * 3600_000]);
  // 2026-12-06 is a Sunday.
  const open = windowAt(m, at('2026-12-06T02:00:00Z'))!;
  assert.deepEqual([iso(open.startMs), iso(open.endMs)], ['2026-12-06T02:00:00.000Z', '2026-12-06T04:00:00.000Z']);
  assert.equal(windowAt(m, at('2026-12-06T04:00:00Z')), null, 'the end is exclusive');
  assert.equal(windowAt(m, at('2026-12-06T01:59:59Z')), null);
  assert.equal(windowAt(m, at('2026-12-04T03:00:00Z')), null, 'a Friday');
  assert.equal(iso(nextWindow(m, at('2026-12-04T10:00:00Z')).startMs), '2026-12-06T02:00:00.000Z');
  assert.equal(iso(nextWindow(m, at('2026-12-06T02:30:00Z')).startMs), '2026-12-13T02:00:00.000Z', 'the one after the open one');
});

test('checkWindow: outside names the next window in UTC and the zone; an overrun names the close', () => {
  const m = DEFAULT_POLICY.maintenance;
  const outside = checkWindow(m, at('2026-12-04T10:00:00Z'), 30 * MIN);
  assert.equal(outside.ok, false);
  assert.match(
    (outside as { message: string }).message,
    /outside the maintenance window \(Sunday 02:00-04:00 UTC, .*\); the next one is 2026-12-06T02:00Z to 2026-12-06T04:00Z \(Sunday 02:00-04:00 UTC\)/,
  );
  assert.equal(checkWindow(m, at('2026-12-06T02:00:00Z'), 120 * MIN).ok, true, 'exactly the window fits');
  const over = checkWindow(m, at('2026-12-06T03:00:00Z'), 61 * MIN);
  assert.equal(over.ok, false);
  assert.equal((over as { why: string }).why, 'overrun');
  assert.match(
    (over as { message: string }).message,
    /planned duration \(1h1m\) would overrun .* closes at 2026-12-06T04:00Z \(1h from now\)/,
  );
});

test('a window in a zone with daylight saving follows the wall clock', () => {
  const m: MaintenancePolicy = {
    ...DEFAULT_POLICY.maintenance,
    days: [6],
    start: '22:00',
    end: '23:30',
    startMinute: 1320,
    endMinute: 1410,
    timeZone: 'Europe/Berlin',
  };
  // Saturday 2026-07-04 is summer time (UTC+2), Saturday 2026-12-05 winter time (UTC+1).
  assert.equal(iso(windowAt(m, at('2026-07-04T20:30:00Z'))!.startMs), '2026-07-04T20:00:00.000Z');
  assert.equal(iso(windowAt(m, at('2026-12-05T21:30:00Z'))!.startMs), '2026-12-05T21:00:00.000Z');
  assert.equal(windowAt(m, at('2026-12-05T20:30:00Z')), null);
  const outside = checkWindow(m, at('2026-12-04T12:00:00Z'), MIN) as { message: string };
  assert.match(outside.message, /next one is 2026-12-05T21:00Z to 2026-12-05T22:30Z \(Saturday 22:00-23:30 Europe\/Berlin\)/);
});

test('windows on consecutive days that touch are one: a drill may run across midnight', () => {
  const m: MaintenancePolicy = {
    ...DEFAULT_POLICY.maintenance,
    days: [0, 1, 2, 3, 4, 5, 6],
    start: '00:00',
    end: '24:00',
    startMinute: 0,
    endMinute: 1440,
  };
  const open = windowAt(m, at('2026-12-04T23:00:00Z'))!;
  assert.ok(open.endMs - open.startMs > 86_400_000, `${iso(open.startMs)} to ${iso(open.endMs)}`);
  assert.equal(checkWindow(m, at('2026-12-04T23:00:00Z'), 3 * 3600_000).ok, true);
});

function check(policy: string): string[] {
  const text = `name: w\nkind: adhoc\ntarget: { kind: lab }\n${policy}load: { rate: 10 }\nscenarios:\n  - scenario: pod-kill\n`;
  const r = validateDrillText('w.yaml', text, testCatalog(), { capabilitiesOf });
  return 'problems' in r ? r.problems.map(formatProblem) : [];
}

test('policy.maintenance in a drill file: given keys replace the default, others stay', () => {
  const text = `name: w\nkind: adhoc\ntarget: { kind: lab }\npolicy:\n  maintenance: { days: [Sat, sunday], end: "05:30", timeZone: Europe/Berlin, notice: 72h }\nload: { rate: 10 }\nscenarios:\n  - scenario: pod-kill\n`;
  const r = validateDrillText('w.yaml', text, testCatalog(), { capabilitiesOf });
  assert.ok('drill' in r, JSON.stringify(r));
  const m = r.drill.policy.maintenance;
  assert.deepEqual(
    [m.days, m.start, m.end, m.startMinute, m.endMinute, m.timeZone, m.noticeMs],
    [[0, 6], '02:00', '05:30', 120, 330, 'Europe/Berlin', 72 * 3600_000],
  );
});

test('bad maintenance windows: each problem names file:line:col and the field', () => {
  assert.deepEqual(check('policy:\n  maintenance:\n    start: "04:00"\n    end: "03:00"\n'), [
    'w.yaml:7:10: policy.maintenance.end: expected end after start (04:00); a window ends on the day it starts, got "03:00"',
  ]);
  assert.deepEqual(check('policy:\n  maintenance: { days: [sunday, funday] }\n'), [
    'w.yaml:5:33: policy.maintenance.days[1]: expected a day of the week (sunday ... saturday, or sun ... sat), got "funday"',
  ]);
  const [tz] = check('policy:\n  maintenance: { timeZone: Mars/Olympus }\n');
  assert.match(tz!, /^w\.yaml:5:\d+: policy\.maintenance\.timeZone: expected an IANA time zone/);
  const [time] = check('policy:\n  maintenance: { start: "2am" }\n');
  assert.match(time!, /^w\.yaml:5:\d+: policy\.maintenance\.start: expected a time of day HH:MM/);
  // Only an end before the default start (02:00): the field named is the one written.
  const [early] = check('policy:\n  maintenance: { end: "01:00" }\n');
  assert.match(early!, /policy\.maintenance\.end: expected end after start \(02:00\)/);
  assert.deepEqual(check('policy:\n  maintenance: { days: [] }\n').length, 1);
});
