/**
 * The window and the notice in the records: run.json's `window`, the SEV3 finding for missing or late notice,
 * and the quarterly record's table of overrides and notice exceptions in JSON, Markdown and HTML.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRunRecord, windowFindings, type RunRecord, type WindowRecord } from '../../lib/record/run-record.ts';
import { sampleRunInput } from '../support/record-sample.ts';
import { parseQuarter } from '../../lib/record/quarterly/quarter.ts';
import { buildQuarterlyRecord } from '../../lib/record/quarterly/build.ts';
import { sha256 } from '../../lib/record/quarterly/parse.ts';
import { renderRecordMarkdown } from '../../lib/record/render/markdown.ts';
import { renderRecordHtml } from '../../lib/record/render/html.ts';
import type { RunInput } from '../../lib/record/quarterly/types.ts';

const inside: WindowRecord = {
  inside: true,
  override: false,
  reason: null,
  noticeGivenAt: '2026-12-03T10:00:00.000Z',
  noticeInTime: true,
  noticeRequired: '48h',
  opens: '2026-12-06T02:00:00.000Z',
  closes: '2026-12-06T04:00:00.000Z',
  policy: 'Sunday 02:00-04:00 UTC, 48h notice',
  plannedDurationMs: 600_000,
  checkedAt: '2026-12-06T02:05:00.000Z',
  announcement: 'results/announcements/checkout-20261206T0200Z.json',
};
const overridden: WindowRecord = {
  ...inside,
  inside: false,
  override: true,
  reason: 'hotfix verification, CHG-7',
  noticeGivenAt: null,
  noticeInTime: false,
  opens: null,
  closes: null,
  announcement: null,
};

test('run.json keeps the window; no notice is a SEV3 finding with a due date, timely notice none, the lab no window', () => {
  const lab = buildRunRecord(sampleRunInput());
  assert.equal(lab.window, null);
  const ok = buildRunRecord({ ...sampleRunInput(), window: inside });
  assert.deepEqual(ok.window, inside);
  assert.equal(ok.findings.filter((f) => f.objective === 'notice').length, 0);
  const late = buildRunRecord({ ...sampleRunInput(), window: overridden });
  const f = late.findings.find((x) => x.objective === 'notice')!;
  assert.deepEqual([f.severity, f.title], ['SEV3', 'Drill not announced: no notice 48h ahead']);
  assert.ok(f.due, 'SEV3 has a due date');
  assert.equal(late.status, ok.status, 'notice never changes the verdict');
  assert.match(windowFindings({ ...inside, noticeInTime: false }, null)[0]!.title, /announced late: less than 48h notice/);
});

test('quarterly record: overrides and notice exceptions listed for auditors, with the reason, in JSON, Markdown and HTML', () => {
  const mk = (id: string, window: WindowRecord | null): RunInput => {
    const r = buildRunRecord({ ...sampleRunInput(), window }) as RunRecord;
    r.id = id;
    r.startedAt = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T02:05:00.000Z`;
    return {
      file: `results/runs/${id}/run.json`,
      digest: sha256(JSON.stringify(r)),
      record: r,
      context: {
        drillKind: 'quarterly',
        drillFile: 'drills/checkout.yaml',
        owner: 'payments-sre',
        approver: null,
        participants: [],
        service: { name: 'checkout', tier: 'critical', dataClass: 'database' },
      },
      series: { resolutionSeconds: 1, points: [] },
    };
  };
  const record = buildQuarterlyRecord({
    quarter: parseQuarter('2026-Q4')!,
    generatedAt: '2027-01-05T10:00:00.000Z',
    harnessVersion: 'test',
    source: { kind: 'folder', path: 'results/runs' },
    runs: [
      mk('20261206T020500Z-pod-kill-000001', inside),
      mk('20261204T020500Z-pod-kill-000002', overridden),
      mk('20261101T020500Z-pod-kill-000003', null),
    ],
    excluded: [],
    requirements: [],
    policyDrills: [],
    previous: null,
    people: {},
  });
  assert.deepEqual(
    record.windowExceptions.map((w) => [w.run, w.override, w.reason, w.noticeGivenAt]),
    [['20261204T020500Z-pod-kill-000002', true, 'hotfix verification, CHG-7', null]],
  );
  assert.equal(record.runs.find((r) => r.id.endsWith('000001'))!.window?.noticeGivenAt, inside.noticeGivenAt);
  const md = renderRecordMarkdown(record);
  assert.match(md, /## Maintenance window overrides and notice\n\n\| Run \|/);
  assert.match(md, /\| 20261204T020500Z-pod-kill-000002 \| .* \| \*\*overridden\*\* \| hotfix verification, CHG-7 \| \*\*none\*\* \|/);
  const html = renderRecordHtml(record);
  assert.match(
    html,
    /<section id="window-exceptions"><h2>Maintenance window overrides and notice<\/h2>.*hotfix verification, CHG-7.*<\/section>/s,
  );
});
