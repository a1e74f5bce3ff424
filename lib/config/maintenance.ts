/**
 * Maintenance windows as the organisation writes them (Sundays 02:00-04:00 UTC, 48 h notice): which
 * occurrence an instant falls in, which comes next, and whether a drill of a planned length fits. Pure
 * functions of an instant, so tests hand in fixed times instead of waiting for Sunday.
 */
import { formatDuration } from './duration.ts';
import type { MaintenancePolicy } from './types.ts';

export const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;

/** `sunday`, `Sunday` or `sun` to 0; -1 for anything else. */
export function weekdayIndex(name: string): number {
  const n = name.trim().toLowerCase();
  return WEEKDAYS.findIndex((d) => d === n || d.slice(0, 3) === n);
}

/** `02:00` to 120; `24:00` (the end of the day) is allowed; null when it is not HH:MM. */
export function minuteOfDay(text: string): number | null {
  const m = /^\s*(\d{1,2}):(\d{2})\s*$/.exec(text);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && min !== 0)) return null;
  return h * 60 + min;
}

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export interface WindowOccurrence {
  /** Epoch ms, inclusive. */
  startMs: number;
  /** Epoch ms, exclusive. */
  endMs: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function wallClock(zone: string, ms: number): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  return { y: p.year!, mo: p.month!, d: p.day!, h: p.hour!, mi: p.minute!, s: p.second! };
}

/** How far the zone's wall clock is ahead of UTC at this instant. */
function offsetMs(zone: string, ms: number): number {
  const w = wallClock(zone, ms);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
}

/** The instant the zone's clock shows this date and minute; across a DST change, the offset after it. */
function zonedInstant(zone: string, y: number, mo: number, d: number, minute: number): number {
  const asUtc = Date.UTC(y, mo - 1, d, 0, minute);
  const first = asUtc - offsetMs(zone, asUtc);
  const second = asUtc - offsetMs(zone, first);
  return second;
}

/**
 * Every occurrence overlapping [fromMs, toMs], in order; occurrences that touch (every day 00:00-24:00)
 * are merged, so a drill may run across midnight in such a policy.
 */
export function occurrences(m: MaintenancePolicy, fromMs: number, toMs: number): WindowOccurrence[] {
  const out: WindowOccurrence[] = [];
  // Walk the zone's calendar days, one before `from` so a window open at `from` is found.
  const startDay = wallClock(m.timeZone, fromMs - 86_400_000);
  let day = Date.UTC(startDay.y, startDay.mo - 1, startDay.d);
  const lastDay = toMs + 2 * 86_400_000;
  for (; day <= lastDay; day += 86_400_000) {
    const date = new Date(day);
    if (!m.days.includes(date.getUTCDay())) continue;
    const [y, mo, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
    const o = { startMs: zonedInstant(m.timeZone, y, mo, d, m.startMinute), endMs: zonedInstant(m.timeZone, y, mo, d, m.endMinute) };
    if (o.endMs <= fromMs || o.startMs > toMs) continue;
    const prev = out[out.length - 1];
    if (prev && prev.endMs >= o.startMs) prev.endMs = Math.max(prev.endMs, o.endMs);
    else out.push(o);
  }
  return out;
}

/** The occurrence open at this instant, or null. */
export function windowAt(m: MaintenancePolicy, atMs: number): WindowOccurrence | null {
  // A week ahead, so a window that runs on into the next day's (every day 00:00-24:00) is one occurrence.
  return occurrences(m, atMs, atMs + 8 * 86_400_000).find((o) => o.startMs <= atMs && atMs < o.endMs) ?? null;
}

/** The first occurrence that opens after this instant (a policy names at least one day, so one comes within a week). */
export function nextWindow(m: MaintenancePolicy, afterMs: number): WindowOccurrence {
  const next = occurrences(m, afterMs, afterMs + 8 * 86_400_000).find((o) => o.startMs > afterMs);
  if (!next) throw new Error('internal: a maintenance policy with days has an occurrence every week');
  return next;
}

/** `Sunday 02:00-04:00 UTC`, as the policy is written. */
export function describePolicy(m: MaintenancePolicy): string {
  const days = m.days.map((d) => WEEKDAYS[d]![0]!.toUpperCase() + WEEKDAYS[d]!.slice(1)).join(', ');
  return `${days} ${m.start}-${m.end} ${m.timeZone}, ${m.notice} notice`;
}

function utc(ms: number): string {
  return new Date(ms).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z');
}

/** `2026-12-06T02:00Z-04:00Z (Sunday 02:00-04:00 UTC)`: UTC for the record, the policy's zone for people. */
export function describeOccurrence(o: WindowOccurrence, m: MaintenancePolicy): string {
  const local = (ms: number) => {
    const w = wallClock(m.timeZone, ms);
    return `${String(w.h).padStart(2, '0')}:${String(w.mi).padStart(2, '0')}`;
  };
  const day = WEEKDAYS[new Date(o.startMs + offsetMs(m.timeZone, o.startMs)).getUTCDay()]!;
  return `${utc(o.startMs)} to ${utc(o.endMs)} (${day[0]!.toUpperCase()}${day.slice(1)} ${local(o.startMs)}-${local(o.endMs)} ${m.timeZone})`;
}

export type WindowVerdict =
  | { ok: true; window: WindowOccurrence }
  | { ok: false; why: 'outside'; next: WindowOccurrence; message: string }
  | { ok: false; why: 'overrun'; window: WindowOccurrence; next: WindowOccurrence; message: string };

/**
 * May a drill of this planned length start now? Inside an open occurrence, and finishing before it
 * closes; otherwise the message names the next occurrence (in UTC and in the policy's zone).
 */
export function checkWindow(m: MaintenancePolicy, nowMs: number, plannedMs: number): WindowVerdict {
  const open = windowAt(m, nowMs);
  if (!open) {
    const next = nextWindow(m, nowMs);
    return {
      ok: false,
      why: 'outside',
      next,
      message: `outside the maintenance window (${describePolicy(m)}); the next one is ${describeOccurrence(next, m)}`,
    };
  }
  if (nowMs + plannedMs > open.endMs) {
    const next = nextWindow(m, nowMs);
    return {
      ok: false,
      why: 'overrun',
      window: open,
      next,
      message: `the drill's planned duration (${formatDuration(plannedMs)}) would overrun the maintenance window, which closes at ${utc(open.endMs)} (${formatDuration(open.endMs - nowMs)} from now); the next one is ${describeOccurrence(next, m)}`,
    };
  }
  return { ok: true, window: open };
}
