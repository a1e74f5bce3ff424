/**
 * Where `drill announce` leaves its notice for `drill run` to find: one JSON file per announced drill
 * and start, under <results>/announcements/. The run looks for the notice that covers its start.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MaintenancePolicy } from '../config/types.ts';
import { windowAt } from '../config/maintenance.ts';
import { writeJsonAtomic } from '../util/atomic-file.ts';

export interface Announcement {
  schemaVersion: 1;
  drill: string;
  file: string;
  /** When the drill is announced to start (UTC ISO). */
  at: string;
  /** When the notice was written: what `noticeGivenAt` of the run becomes. */
  announcedAt: string;
  plannedDurationMs: number;
  /** The maintenance occurrence `at` falls in, or null when it falls outside every one. */
  window: { opens: string; closes: string } | null;
  /** What each action would hit, from the plan when the notice was written. */
  blastRadius: { scenario: string; action: string; hits: string }[];
}

export function announcementsDir(resultsDir: string): string {
  return join(resultsDir, 'announcements');
}

/** `2026-12-06T02:00:00.000Z` to `20261206T0200Z`: sortable, and safe in a file name. */
export function stampOf(iso: string): string {
  return new Date(iso)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\d\d\.\d{3}Z$/, 'Z');
}

export function writeAnnouncement(resultsDir: string, a: Announcement): string {
  const dir = announcementsDir(resultsDir);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${a.drill}-${stampOf(a.at)}.json`);
  writeJsonAtomic(path, a);
  return path;
}

/** The span a notice announces: the window occurrence its start falls in, else its start plus the planned duration. */
function covered(a: Announcement, m: MaintenancePolicy): { fromMs: number; toMs: number } {
  const atMs = Date.parse(a.at);
  const w = windowAt(m, atMs);
  return w ? { fromMs: w.startMs, toMs: w.endMs } : { fromMs: atMs, toMs: atMs + a.plannedDurationMs };
}

/** The earliest notice for this drill whose announced span holds `nowMs`; null when there is none. */
export function findAnnouncement(
  resultsDir: string,
  drill: string,
  nowMs: number,
  m: MaintenancePolicy,
): { announcement: Announcement; path: string } | null {
  const dir = announcementsDir(resultsDir);
  if (!existsSync(dir)) return null;
  const found: { announcement: Announcement; path: string }[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(`${drill}-`) || !name.endsWith('.json')) continue;
    const path = join(dir, name);
    let a: Announcement;
    try {
      a = JSON.parse(readFileSync(path, 'utf8')) as Announcement;
    } catch {
      continue;
    }
    if (a.drill !== drill) continue;
    const c = covered(a, m);
    if (c.fromMs <= nowMs && nowMs < c.toMs) found.push({ announcement: a, path });
  }
  found.sort((x, y) => Date.parse(x.announcement.announcedAt) - Date.parse(y.announcement.announcedAt));
  return found[0] ?? null;
}
