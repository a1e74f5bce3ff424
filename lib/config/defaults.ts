import { parseDuration } from './duration.ts';
import { parseThreshold } from './threshold.ts';
import type { DataClass, LabDatabase, Policy, Tier } from './types.ts';
import type { RequestTemplate } from '../load/types.ts';
import { minuteOfDay, weekdayIndex } from './maintenance.ts';

/**
 * The organisation's numbers, spelled the way a drill file spells them: the JSON Schema shows these
 * to editors, and the normalised constants below are parsed from them, so the two cannot drift.
 */
export const POLICY_DEFAULTS = {
  rto: { critical: '1h', important: '4h', standard: '24h' },
  rpo: { database: '15m', 'file-storage': '1h', logs: '24h' },
  slo: {
    availability: ['rate>=99.9%'],
    latency: ['p(50)<100ms', 'p(95)<500ms', 'p(99)<1000ms'],
    errors: ['rate<0.1%'],
  },
  recoveryWindow: '10s',
  // A mean Gregorian month (365.25 d / 12): 0.1% of it is the familiar 43.8 minutes.
  budgetPeriod: '30.4375d',
  // Production autoscaling: 3-20 replicas, scaling at 70% CPU and 80% memory.
  replicas: { min: 3, max: 20, cpu: '70%', memory: '80%' },
  // Changes to anything but the lab: Sundays 02:00-04:00 UTC, announced 48 h ahead.
  maintenance: { days: ['sunday'], start: '02:00', end: '04:00', timeZone: 'UTC', notice: '48h' },
} as const satisfies {
  rto: Record<Tier, string>;
  rpo: Record<DataClass, string>;
  slo: Record<'availability' | 'latency' | 'errors', readonly string[]>;
  recoveryWindow: string;
  budgetPeriod: string;
  replicas: { min: number; max: number; cpu: string; memory: string };
  maintenance: { days: readonly string[]; start: string; end: string; timeZone: string; notice: string };
};

export const LOAD_DEFAULTS = {
  requests: [{ method: 'GET', path: '/', weight: 1 }] as const satisfies readonly RequestTemplate[],
  timeout: '2s',
  maxInFlight: 1000,
  connections: 64,
  baseline: '10s',
  cooldown: '5s',
} as const;

export const SERVICE_DEFAULTS = { name: 'orders', tier: 'critical', dataClass: 'database' } as const satisfies {
  name: string;
  tier: Tier;
  dataClass: DataClass;
};

export const TARGET_DEFAULTS = { replicas: 3, blastRadius: 1 } as const;

/**
 * A lab of two regions copies its storage to the secondary after `replicationLag`. 15m is what Azure states for
 * geo-redundant storage: "Azure Storage typically has an RPO of less than 15 minutes, although there's currently
 * no SLA on how long it takes to replicate data to the secondary region" (Microsoft Learn, Azure Storage redundancy,
 * https://learn.microsoft.com/azure/storage/common/storage-redundancy#redundancy-in-a-secondary-region).
 */
export const REGION_DEFAULTS = { regions: 1, replicationLag: '15m' } as const;
export const DEFAULT_REPLICATION_LAG_MS = parseDuration(REGION_DEFAULTS.replicationLag);

export const SCENARIO_DEFAULTS = { timeout: '5m' } as const;

export const LAB_DATABASE_DEFAULTS = { replication: 'async', provider: 'pg-promote' } as const satisfies LabDatabase;

/** A CloudNativePG database on a Kubernetes target: the operator's own failover, and the database and owner CloudNativePG bootstraps (`app`). */
export const KUBE_DATABASE_DEFAULTS = {
  mode: 'delete-primary',
  port: 5432,
  database: 'app',
  user: 'app',
  passwordEnv: 'PGPASSWORD',
} as const;

/** `70%` or `70` to 70: utilisation targets read as the HPA's own docs write them. */
export function parsePercent(value: string | number): number {
  return typeof value === 'number' ? value : Number(value.trim().replace(/%$/, ''));
}

function durations<K extends string>(spelled: Readonly<Record<K, string>>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of Object.keys(spelled) as K[]) out[k] = parseDuration(spelled[k]);
  return out;
}

/** A fresh copy each call: callers merge drill overrides into it. */
export function defaultPolicy(): Policy {
  return {
    rtoMs: durations(POLICY_DEFAULTS.rto),
    rpoMs: durations(POLICY_DEFAULTS.rpo),
    slo: {
      availability: POLICY_DEFAULTS.slo.availability.map(parseThreshold),
      latency: POLICY_DEFAULTS.slo.latency.map(parseThreshold),
      errors: POLICY_DEFAULTS.slo.errors.map(parseThreshold),
    },
    recoveryWindowMs: parseDuration(POLICY_DEFAULTS.recoveryWindow),
    budgetPeriodMs: parseDuration(POLICY_DEFAULTS.budgetPeriod),
    replicas: {
      minReplicas: POLICY_DEFAULTS.replicas.min,
      maxReplicas: POLICY_DEFAULTS.replicas.max,
      cpuPercent: parsePercent(POLICY_DEFAULTS.replicas.cpu),
      memoryPercent: parsePercent(POLICY_DEFAULTS.replicas.memory),
    },
    maintenance: {
      days: POLICY_DEFAULTS.maintenance.days.map(weekdayIndex),
      start: POLICY_DEFAULTS.maintenance.start,
      end: POLICY_DEFAULTS.maintenance.end,
      startMinute: minuteOfDay(POLICY_DEFAULTS.maintenance.start)!,
      endMinute: minuteOfDay(POLICY_DEFAULTS.maintenance.end)!,
      timeZone: POLICY_DEFAULTS.maintenance.timeZone,
      noticeMs: parseDuration(POLICY_DEFAULTS.maintenance.notice),
      notice: POLICY_DEFAULTS.maintenance.notice,
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The defaults, normalised, for readers (plans, docs); frozen because a shared mutable policy would leak between drills. */
export const DEFAULT_POLICY: Readonly<Policy> = deepFreeze(defaultPolicy());

export const DEFAULT_LOAD = {
  requests: LOAD_DEFAULTS.requests,
  timeoutMs: parseDuration(LOAD_DEFAULTS.timeout),
  maxInFlight: LOAD_DEFAULTS.maxInFlight,
  connections: LOAD_DEFAULTS.connections,
  baselineMs: parseDuration(LOAD_DEFAULTS.baseline),
  cooldownMs: parseDuration(LOAD_DEFAULTS.cooldown),
} as const;

export const DEFAULT_SCENARIO_TIMEOUT_MS = parseDuration(SCENARIO_DEFAULTS.timeout);

/** A rollback that names no time limit of its own gets this one; the planned duration of a drill counts it. */
export const DEFAULT_ROLLBACK_TIMEOUT_MS = 5 * 60_000;

/** Upper bounds the loader enforces: beyond them the harness itself, not the service, is the bottleneck. */
export const LIMITS = {
  maxRate: 100_000,
  maxReplicas: 20,
  /** A drill that may take down more pods than this at once is an outage, not a drill. */
  maxBlastRadius: 100,
  /** The request log stores the template index in a Uint8Array (lib/load/templates.ts). */
  maxRequestTemplates: 256,
} as const;
