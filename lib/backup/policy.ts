import type { Severity } from '../score/findings.ts';
import type { BackupKind } from './naming.ts';

/**
 * The organisation's backup policy as pure checks over a listing: daily backups (the newest younger
 * than 24 h), kept 30 days (backups reach back that far, with no day-sized holes), and nothing kept
 * longer than the retention. Each finding carries a severity, so a drill can fail on the serious
 * ones and record the rest.
 */

export interface PolicyBackup {
  folder: string;
  kind: BackupKind;
  database: string | null;
  /** ISO time the backup was taken (its folder stamp). */
  takenAt: string;
  /** A backup without a usable manifest cannot be verified, so it does not count as a backup. */
  usable: boolean;
  problem?: string;
}

export interface BackupPolicy {
  maxAgeMs: number;
  /** Backups must reach back this far. */
  coverMs: number;
  /** Nothing may be older than this. */
  retentionMs: number;
  /** Slack on cover and retention: the daily job runs once a day, not continuously. */
  scheduleSlackMs: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export const DEFAULT_BACKUP_POLICY: BackupPolicy = { maxAgeMs: DAY, coverMs: 30 * DAY, retentionMs: 30 * DAY, scheduleSlackMs: DAY };

export type PolicyCheck = 'exists' | 'newest-age' | 'coverage' | 'gap' | 'retention' | 'manifest';

export interface PolicyFinding {
  check: PolicyCheck;
  severity: Severity;
  title: string;
  detail: string;
}

export function formatAge(ms: number): string {
  if (ms < HOUR) return `${Math.round(ms / 60_000)} min`;
  if (ms < 2 * DAY) return `${(ms / HOUR).toFixed(1)} h`;
  return `${(ms / DAY).toFixed(1)} days`;
}

/**
 * Findings for one set of backups (one database, one kind), judged at `now`. An empty list means
 * the policy holds. `what` names the set in messages (`logical backups of orders`).
 */
export function checkBackupPolicy(
  backups: readonly PolicyBackup[],
  now: Date,
  what: string,
  policy: BackupPolicy = DEFAULT_BACKUP_POLICY,
): PolicyFinding[] {
  const out: PolicyFinding[] = [];
  const t = now.getTime();
  for (const b of backups.filter((x) => !x.usable)) {
    out.push({
      check: 'manifest',
      severity: 'SEV3',
      title: `unusable backup ${b.folder}`,
      detail: `${b.problem ?? 'no manifest'}; it cannot be verified and does not count as a backup`,
    });
  }
  const usable = backups.filter((b) => b.usable).sort((a, b) => Date.parse(a.takenAt) - Date.parse(b.takenAt));
  if (usable.length === 0) {
    out.push({
      check: 'exists',
      severity: 'SEV1',
      title: `no ${what}`,
      detail: `no usable backup was found: nothing could be restored today`,
    });
    return out;
  }
  const newest = usable[usable.length - 1]!;
  const newestAge = t - Date.parse(newest.takenAt);
  if (newestAge > policy.maxAgeMs) {
    out.push({
      check: 'newest-age',
      severity: newestAge > 2 * policy.maxAgeMs ? 'SEV1' : 'SEV2',
      title: `newest of the ${what} is ${formatAge(newestAge)} old`,
      detail: `taken ${newest.takenAt}; the policy wants one younger than ${formatAge(policy.maxAgeMs)}: the daily backup did not run or did not finish`,
    });
  }
  const oldest = usable[0]!;
  const oldestAge = t - Date.parse(oldest.takenAt);
  if (oldestAge < policy.coverMs - policy.scheduleSlackMs) {
    out.push({
      check: 'coverage',
      severity: 'SEV3',
      title: `${what} reach back only ${formatAge(oldestAge)}`,
      detail: `oldest taken ${oldest.takenAt}; the policy keeps ${formatAge(policy.coverMs)}`,
    });
  }
  const windowStart = t - policy.coverMs;
  for (let i = 1; i < usable.length; i++) {
    const a = Date.parse(usable[i - 1]!.takenAt);
    const b = Date.parse(usable[i]!.takenAt);
    if (b < windowStart) continue;
    if (b - a > policy.maxAgeMs + policy.scheduleSlackMs) {
      out.push({
        check: 'gap',
        severity: 'SEV3',
        title: `${formatAge(b - a)} without a backup in the ${what}`,
        detail: `between ${usable[i - 1]!.takenAt} and ${usable[i]!.takenAt}: a restore point inside it would lose up to that much data`,
      });
    }
  }
  const expired = backups.filter((b) => t - Date.parse(b.takenAt) > policy.retentionMs + policy.scheduleSlackMs);
  if (expired.length > 0) {
    const first = expired.reduce((x, y) => (Date.parse(x.takenAt) <= Date.parse(y.takenAt) ? x : y));
    out.push({
      check: 'retention',
      severity: 'SEV3',
      title: `${expired.length} of the ${what} older than the ${formatAge(policy.retentionMs)} retention`,
      detail: `oldest ${first.folder} taken ${first.takenAt}: retention clean-up is not running; data is kept longer than the policy allows`,
    });
  }
  return out;
}

const RANK: Record<Severity, number> = { SEV1: 1, SEV2: 2, SEV3: 3, SEV4: 4 };

/** Whether a finding is serious enough to fail a drill (default: SEV1 and SEV2). */
export function failsDrill(f: PolicyFinding, threshold: Severity = 'SEV2'): boolean {
  return RANK[f.severity] <= RANK[threshold];
}
