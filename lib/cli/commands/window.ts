/**
 * The maintenance window and the notice, judged before `drill run` touches a target other than the lab.
 * The clock is DRILL_NOW when set (an ISO instant, for tests and rehearsals; the record keeps the instant
 * used as `window.checkedAt`), else the machine's.
 */
import type { Drill } from '../../config/types.ts';
import { checkWindow, describeOccurrence, describePolicy } from '../../config/maintenance.ts';
import { UserError } from '../../errors.ts';
import type { PlannedDuration } from '../../plan/duration.ts';
import { findAnnouncement } from '../../record/announcements.ts';
import type { WindowRecord } from '../../record/run-record.ts';

export function drillNow(env: NodeJS.ProcessEnv = process.env): number {
  const fixed = env.DRILL_NOW;
  if (fixed === undefined || fixed === '') return Date.now();
  const ms = Date.parse(fixed);
  if (Number.isNaN(ms))
    throw new UserError(`DRILL_NOW=${fixed} is not an ISO time`, {
      untouched: 'nothing: no target was contacted',
      next: 'unset DRILL_NOW, or give an instant like 2026-12-06T02:00:00Z',
    });
  return ms;
}

/**
 * The window guards changes to shared, live systems: a Kubernetes or http target. The lab is throwaway and
 * on loopback; a blob target only reads backups and restores them into scratch clusters of its own.
 */
export function windowApplies(target: Drill['target']): boolean {
  return target.kind === 'kubernetes' || target.kind === 'http';
}

export interface WindowOverride {
  outsideWindow: boolean;
  reason?: string;
}

/** Refuses (exit 2) a start outside the window, or one that would overrun it, unless overridden with a reason. */
export function judgeWindow(
  drill: Drill,
  planned: PlannedDuration,
  override: WindowOverride,
  resultsDir: string,
  nowMs: number,
): WindowRecord {
  const m = drill.policy.maintenance;
  const verdict = checkWindow(m, nowMs, planned.ms);
  if (!verdict.ok && !override.outsideWindow) {
    throw new UserError(`${drill.name} on ${drill.target.kind}: ${verdict.message}`, {
      untouched: 'nothing: no target was contacted',
      next: `run it then (announce it first: \`drill announce ${drill.file} --at ${new Date(verdict.next.startMs).toISOString()}\`), or, if it cannot wait, add --outside-window --reason "why"`,
    });
  }
  const notice = findAnnouncement(resultsDir, drill.name, nowMs, m);
  const givenMs = notice ? Date.parse(notice.announcement.announcedAt) : null;
  const open = verdict.ok ? verdict.window : verdict.why === 'overrun' ? verdict.window : null;
  return {
    inside: verdict.ok,
    override: !verdict.ok,
    reason: verdict.ok ? null : (override.reason ?? null),
    noticeGivenAt: notice ? notice.announcement.announcedAt : null,
    noticeInTime: givenMs !== null && nowMs - givenMs >= m.noticeMs,
    noticeRequired: m.notice,
    opens: open ? new Date(open.startMs).toISOString() : null,
    closes: open ? new Date(open.endMs).toISOString() : null,
    policy: describePolicy(m),
    plannedDurationMs: planned.ms,
    checkedAt: new Date(nowMs).toISOString(),
    announcement: notice?.path ?? null,
  };
}

/** One line for the terminal before the run starts. */
export function describeJudgement(w: WindowRecord, m: Drill['policy']['maintenance']): string {
  const where = w.inside
    ? `inside the maintenance window ${w.opens ? describeOccurrence({ startMs: Date.parse(w.opens), endMs: Date.parse(w.closes!) }, m) : ''}`
    : `OUTSIDE the maintenance window (${w.policy}), overridden: ${w.reason}`;
  const notice = w.noticeGivenAt
    ? w.noticeInTime
      ? `notice given ${w.noticeGivenAt}`
      : `notice given late (${w.noticeGivenAt}, less than ${w.noticeRequired} ahead): a SEV3 finding`
    : `no notice found (\`drill announce\`): a SEV3 finding`;
  return `${where}; ${notice}`;
}
