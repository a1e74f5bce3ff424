/**
 * Maintenance window and notice through the CLI on an http target (a local service): `drill announce` writes
 * the notice as Markdown and an iCalendar event a strict parser accepts; `drill run` refuses outside the window
 * or overrunning it, unless overridden with a reason, and records the window and the notice in run.json. The
 * clock is fixed with DRILL_NOW; 2026-12-06 is a Sunday.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/load-servers.ts';
import { drillCli, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';

async function setup(t: TestContext) {
  let served = 0;
  const srv = await startServer((_req, res) => {
    served++;
    res.end('ok');
  });
  t.after(() => srv.close());
  const dir = scratchDir('announce');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'change.yaml');
  writeFileSync(
    file,
    [
      'name: orders-change',
      'kind: adhoc',
      'owner: platform-sre',
      `target: { kind: http, url: "${srv.url}" }`,
      "policy: { recoveryWindow: 1s, slo: { latency: ['p(95)<2s'] } }",
      'load: { rate: 5, baseline: 1s, cooldown: 0s }',
      'scenarios:',
      '  - scenario: exec',
      '    name: restart-orders',
      '    params: { fault: "true", rollback: "true" }',
      '    timeout: 5s',
      '',
    ].join('\n'),
  );
  return { dir, file, results: join(dir, 'results'), served: () => served };
}

const run = (file: string, results: string, now: string, ...extra: string[]) =>
  drillCli(['run', file, '--results', results, '--yes', '--json', ...extra], { DRILL_NOW: now }).done;

function onlyRecord(results: string) {
  const [dir] = runFolders(results);
  return JSON.parse(readFileSync(join(dir!, 'run.json'), 'utf8'));
}

test('drill announce: Markdown notice and an RFC 5545 event; a run in the window 64 h later records the notice in time', {
  timeout: 90_000,
}, async (t) => {
  const s = await setup(t);
  const a = await drillCli(['announce', s.file, '--at', '2026-12-06T02:00:00Z', '--results', s.results], {
    DRILL_NOW: '2026-12-03T10:00:00Z',
  }).done;
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stderr, '', 'no warning: 64 h ahead and inside the window');
  const dir = join(s.results, 'announcements');
  assert.deepEqual(readdirSync(dir).sort(), [
    'orders-change-20261206T0200Z.ics',
    'orders-change-20261206T0200Z.json',
    'orders-change-20261206T0200Z.md',
  ]);
  const md = readFileSync(join(dir, 'orders-change-20261206T0200Z.md'), 'utf8');
  assert.match(md, /\*\*Maintenance window\*\*: 2026-12-06T02:00Z to 2026-12-06T04:00Z \(Sunday 02:00-04:00 UTC\)/);
  assert.match(md, /\| restart-orders \| run fault command \| \$ true \|/, 'the blast radius lists what each action hits');
  assert.match(md, /planned duration 5m7s/);
  assert.match(md, /At most 5m7s: per scenario: baseline load \+ recovery timeout/);

  const ics = readFileSync(join(dir, 'orders-change-20261206T0200Z.ics'));
  const text = ics.toString('utf8');
  // RFC 5545 3.1: every line ends in CRLF and is at most 75 octets; a continuation starts with one space.
  assert.ok(text.endsWith('\r\n'));
  assert.equal(text.replace(/\r\n/g, '').includes('\n'), false, 'no bare LF');
  const lines = text.split('\r\n').slice(0, -1);
  for (const l of lines) assert.ok(Buffer.byteLength(l) <= 75, `${Buffer.byteLength(l)} octets: ${l}`);
  assert.ok(
    lines.some((l) => l.startsWith(' ')),
    'the long description is folded',
  );
  // A strict parser: python3-icalendar, reading the event back field by field.
  const py = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      `import sys, json, icalendar
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
assert cal.errors == [], cal.errors
ev = [c for c in cal.walk('VEVENT')]
assert len(ev) == 1
e = ev[0]
assert not e.errors, e.errors
print(json.dumps({k: str(e.get(k).dt.isoformat()) if hasattr(e.get(k), 'dt') else str(e.get(k)) for k in ['UID', 'DTSTAMP', 'DTSTART', 'DTEND', 'SUMMARY', 'DESCRIPTION']}))`,
      join(dir, 'orders-change-20261206T0200Z.ics'),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(py.status, 0, py.stderr);
  const ev = JSON.parse(py.stdout);
  assert.equal(ev.UID, 'orders-change-20261206T0200Z@drill');
  assert.equal(ev.DTSTAMP, '2026-12-03T10:00:00+00:00');
  assert.equal(ev.DTSTART, '2026-12-06T02:00:00+00:00');
  assert.equal(ev.DTEND, '2026-12-06T02:05:07+00:00');
  assert.equal(ev.SUMMARY, 'Drill orders-change (adhoc) on http');
  assert.equal(ev.DESCRIPTION, md, 'the description unfolds and unescapes to the Markdown notice');

  const r = await run(s.file, s.results, '2026-12-06T02:10:00Z');
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /window: inside the maintenance window 2026-12-06T02:00Z to 2026-12-06T04:00Z .*; notice given 2026-12-03T10:00:00.000Z/,
  );
  const rec = onlyRecord(s.results);
  assert.equal(rec.window.inside, true);
  assert.equal(rec.window.override, false);
  assert.equal(rec.window.reason, null);
  assert.equal(rec.window.noticeGivenAt, '2026-12-03T10:00:00.000Z');
  assert.equal(rec.window.noticeInTime, true);
  assert.equal(rec.findings.filter((f: { objective?: string }) => f.objective === 'notice').length, 0);
});

test('outside the window: refused (exit 2) naming the next one; --outside-window needs --reason; with one it runs and says so', {
  timeout: 90_000,
}, async (t) => {
  const s = await setup(t);
  const friday = '2026-12-04T10:00:00Z';
  const refused = await run(s.file, s.results, friday);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(
    refused.stderr,
    /outside the maintenance window \(Sunday 02:00-04:00 UTC, 48h notice\); the next one is 2026-12-06T02:00Z to 2026-12-06T04:00Z \(Sunday 02:00-04:00 UTC\)/,
  );
  assert.match(refused.stderr, /--outside-window --reason/);
  assert.equal(s.served(), 0, 'no request reached the service');

  const noReason = await run(s.file, s.results, friday, '--outside-window');
  assert.equal(noReason.code, 2);
  assert.match(noReason.stderr, /--outside-window needs --reason/);
  assert.deepEqual(runFolders(s.results), []);

  const r = await run(s.file, s.results, friday, '--outside-window', '--reason', 'hotfix verification, CHG-7');
  assert.equal(r.code, 0, r.stderr);
  const rec = onlyRecord(s.results);
  assert.deepEqual(
    [rec.window.inside, rec.window.override, rec.window.reason, rec.window.noticeGivenAt, rec.window.noticeInTime],
    [false, true, 'hotfix verification, CHG-7', null, false],
  );
  const notice = rec.findings.find((f: { objective?: string }) => f.objective === 'notice');
  assert.equal(notice?.severity, 'SEV3');
  assert.match(notice.title, /not announced/);
  assert.equal(rec.status, 'passed', 'a missing notice is a finding, not a failed run');
});

test('a drill that would overrun the window is refused; late notice is a SEV3 finding shown in the summary', {
  timeout: 90_000,
}, async (t) => {
  const s = await setup(t);
  const overrun = await run(s.file, s.results, '2026-12-06T03:58:00Z');
  assert.equal(overrun.code, 2);
  assert.match(
    overrun.stderr,
    /planned duration \(5m7s\) would overrun the maintenance window, which closes at 2026-12-06T04:00Z \(2m from now\)/,
  );

  const a = await drillCli(['announce', s.file, '--at', '2026-12-06T02:00:00Z', '--results', s.results], {
    DRILL_NOW: '2026-12-05T20:00:00Z',
  }).done;
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /6h ahead is less than the policy's 48h notice/);
  const r = await drillCli(['run', s.file, '--results', s.results, '--yes'], { DRILL_NOW: '2026-12-06T02:01:00Z' }).done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /Window\s+inside 2026-12-06T02:00:00.000Z to 2026-12-06T04:00:00.000Z; notice given\s+2026-12-05T20:00:00.000Z, less than 48h ahead/,
  );
  assert.match(r.stdout, /SEV3 +Drill announced late: less than 48h notice/);
  const rec = onlyRecord(s.results);
  assert.equal(rec.window.noticeInTime, false);
  assert.equal(rec.window.noticeGivenAt, '2026-12-05T20:00:00.000Z');
});
