import type { ConfigProblem, Tier } from '../config/types.ts';
import { formatProblem } from '../config/problem.ts';
import type { RpoResult, RtoResult, SloResult } from './objectives.ts';
import type { RpoClassResult } from './rpo-classes.ts';
import { formatCount, formatSeconds, formatSloValue } from './format.ts';

export type Severity = 'SEV1' | 'SEV2' | 'SEV3' | 'SEV4';

export interface Finding {
  severity: Severity;
  title: string;
  detail: string;
  /** Filled in by a person at the review; the harness cannot know who owns the fix. */
  owner: null;
  /** YYYY-MM-DD, or null when the severity sets no deadline. */
  due: string | null;
  /** The objective this finding is about: `rto`, `rpo`, `verification`, or `slo:<phase>:<name>`. */
  objective?: string;
}

export interface FindingsInput {
  tier: Tier;
  rto: RtoResult;
  rpo: RpoResult;
  /** The data classes other than the entry's own (file storage, logs), when measured. */
  otherRpoClasses?: readonly RpoClassResult[];
  /** SLO results of every phase judged (baseline, fault, recovery). */
  slo: SloResult[];
  verification: ReadonlyArray<{ name: string; ok: boolean; detail: string; severity?: Severity }>;
  actions: ReadonlyArray<{ name: string; rollback: { status: string; error?: string | null } }>;
  /** Requests the generator could not send (its in-flight cap was reached). */
  dropped: number;
  /** When the run ended (ISO): due dates count from it. */
  endedAt: string | null;
  /** Measured downtime (outage intervals), null when unmeasured; it sets how serious failed requests during the fault are. */
  downtimeSeconds?: number | null;
  /** What validation warned about the drill file (a lag longer than an RPO target): the run goes ahead, the record keeps it. */
  configWarnings?: readonly ConfigProblem[];
}

/**
 * Below this much downtime, failed requests during the fault were stragglers (requests in flight on a
 * killed replica), not an outage: a performance issue (SEV3) rather than a feature unavailable (SEV2).
 */
export const SUSTAINED_OUTAGE_SECONDS = 1;

const RTO_SEVERITY: Record<Tier, Severity> = { critical: 'SEV1', important: 'SEV2', standard: 'SEV3' };

/**
 * Due dates follow the response expectation of each severity: SEV1 within 7 days of the run's end,
 * SEV2 within 30, SEV3 within 90; SEV4 is a note and gets no deadline. A reviewer may move them.
 */
const DUE_DAYS: Record<Severity, number | null> = { SEV1: 7, SEV2: 30, SEV3: 90, SEV4: null };

export function dueDate(severity: Severity, endedAt: string | null): string | null {
  const days = DUE_DAYS[severity];
  if (days === null || endedAt === null) return null;
  const end = Date.parse(endedAt);
  if (Number.isNaN(end)) return null;
  return new Date(end + days * 86_400_000).toISOString().slice(0, 10);
}

const ORDER: Severity[] = ['SEV1', 'SEV2', 'SEV3', 'SEV4'];

function sentence(s: string): string {
  const t = s.trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

export function deriveFindings(i: FindingsInput): Finding[] {
  const out: Finding[] = [];
  const add = (severity: Severity, title: string, detail: string, objective?: string) => {
    const f: Finding = { severity, title, detail, owner: null, due: dueDate(severity, i.endedAt) };
    if (objective !== undefined) f.objective = objective;
    out.push(f);
  };

  if (i.rto.met === false) {
    const target = formatSeconds(i.rto.targetSeconds);
    const title =
      i.rto.measuredSeconds === null
        ? `RTO missed: not recovered (target ${target})`
        : `RTO missed: recovered in ${formatSeconds(i.rto.measuredSeconds)} vs target ${target}`;
    add(RTO_SEVERITY[i.tier], title, sentence(`tier ${i.tier} service${i.rto.reason ? `; ${i.rto.reason}` : ''}`), 'rto');
  }

  const lost = i.rpo.lostWrites ?? 0;
  const rpoFigures = `RPO ${i.rpo.measuredSeconds === null ? 'n/a' : formatSeconds(i.rpo.measuredSeconds)} vs target ${formatSeconds(i.rpo.targetSeconds)}`;
  if (i.rpo.met === false) {
    add(
      'SEV1',
      `Data loss beyond RPO: ${formatCount(lost)} acknowledged writes lost`,
      `${rpoFigures}; ${formatCount(i.rpo.unknownWrites ?? 0)} writes with unknown fate. Method: ${i.rpo.method ?? 'n/a'}.`,
      'rpo',
    );
  } else if (lost > 0) {
    add(
      'SEV2',
      `${formatCount(lost)} acknowledged writes lost (within RPO)`,
      `${rpoFigures}. An acknowledged write should survive the fault; the loss is inside the objective but not zero.`,
      'rpo',
    );
  }

  for (const c of i.otherRpoClasses ?? []) {
    const items = c.dataClass === 'logs' ? 'log lines' : 'files';
    const figures = `RPO ${c.measuredSeconds === null ? 'n/a' : formatSeconds(c.measuredSeconds)} vs target ${formatSeconds(c.targetSeconds)}`;
    if (c.met === false)
      add(
        'SEV1',
        `Data loss beyond RPO (${c.dataClass}): ${formatCount(c.lost ?? 0)} acknowledged ${items} lost`,
        `${figures}; ${formatCount(c.unknown ?? 0)} with unknown fate. Method: ${c.method ?? 'n/a'}.`,
        `rpo:${c.dataClass}`,
      );
    else if ((c.lost ?? 0) > 0)
      // An acknowledged file lost is a user's document gone (SEV2, as a lost write); log lines not yet shipped
      // are the loss the ship interval accepts by design, worth a note (SEV4) while inside the target.
      add(
        c.dataClass === 'logs' ? 'SEV4' : 'SEV2',
        `${formatCount(c.lost ?? 0)} acknowledged ${items} lost (within RPO, ${c.dataClass})`,
        `${figures}. Method: ${c.method ?? 'n/a'}.`,
        `rpo:${c.dataClass}`,
      );
  }

  const discarded = i.rpo.ledger?.discardedByRestore;
  if (discarded && discarded.writes > 0) {
    add(
      'SEV3',
      `${formatCount(discarded.writes)} acknowledged writes discarded by the point-in-time restore`,
      `They were acknowledged after the restore point (${formatSeconds(discarded.restorePointMs / 1000)} into the run, just before the destructive change) by the damaged database, and the restore to that point threw them away on purpose, so they are not counted as lost in the RPO. The runbook must say what happens to them (replayed from the damaged cluster kept in quarantine, re-entered, or accepted as gone) and who tells the users who made them. First tokens: ${discarded.sample.slice(0, 5).join(', ') || 'none recorded'}.`,
      'rpo',
    );
  }

  for (const s of i.slo) {
    if (s.met !== false) continue;
    const measured = `${s.name} measured ${formatSloValue(s.threshold, s.measured)}`;
    const objective = `slo:${s.phase}:${s.name}`;
    if (s.phase === 'fault') {
      const what = s.kind === 'latency' ? 'Latency' : s.kind === 'errors' ? 'Error-rate' : 'Availability';
      if (s.kind === 'latency') add('SEV3', `${what} SLO missed during the fault`, measured, objective);
      else if ((i.downtimeSeconds ?? Infinity) >= SUSTAINED_OUTAGE_SECONDS) {
        add(
          'SEV2',
          `${what} SLO missed during the fault: the service was down`,
          `${measured}; downtime ${formatSeconds(i.downtimeSeconds ?? 0)}`,
          objective,
        );
      } else {
        add(
          'SEV3',
          `${what} SLO missed during the fault: some requests failed, no sustained outage`,
          `${measured}; downtime ${formatSeconds(i.downtimeSeconds ?? 0)}`,
          objective,
        );
      }
    } else if (s.phase === 'recovery') {
      add('SEV2', 'SLO missed after recovery: service degraded after it counted as recovered', measured, objective);
    } else if (s.phase === 'baseline') {
      add('SEV2', 'SLO missed before the fault: service degraded at baseline', measured, objective);
    }
  }

  for (const v of i.verification) {
    if (!v.ok) add(v.severity ?? 'SEV1', `Verification failed: ${v.name}`, v.detail, 'verification');
  }

  for (const a of i.actions) {
    if (a.rollback.status === 'failed') {
      add(
        'SEV1',
        `Rollback failed: ${a.name}`,
        `${sentence(a.rollback.error ?? 'no error given')} The target may be left broken: a person must look.`,
      );
    }
  }

  if (i.dropped > 0) {
    add(
      'SEV4',
      `Load generator dropped ${formatCount(i.dropped)} requests`,
      'Its in-flight cap was reached: those requests count as failed, and latency beyond the cap was not measured. Raise maxInFlight if the service was expected to keep up.',
    );
  }

  for (const w of i.configWarnings ?? []) {
    add(
      'SEV3',
      `Configured lag longer than an RPO target (${w.path})`,
      `${formatProblem(w)}. The drill ran as configured; shorten the lag or accept the larger loss in the runbook.`,
      'rpo',
    );
  }

  return out.sort((a, b) => ORDER.indexOf(a.severity) - ORDER.indexOf(b.severity));
}
