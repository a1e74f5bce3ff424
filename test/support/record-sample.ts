import type { Drill, ScenarioEntry } from '../../lib/config/types.ts';
import { createRequestLog, Outcome, type OutcomeCode, type RequestLog } from '../../lib/measure/request-log.ts';
import type { Mark } from '../../lib/measure/timeline.ts';
import { parseThreshold } from '../../lib/config/threshold.ts';
import { DEFAULT_POLICY } from '../../lib/config/defaults.ts';
import { MEAN_MONTH_MS } from '../../lib/score/budget.ts';
import type { RunRecordInput } from '../../lib/record/run-record.ts';

/**
 * A synthetic run, built in memory: what renderers (summary, JUnit, Markdown, HTML) are developed and
 * tested against without starting a lab. Callers change the returned input to get other outcomes.
 */

export type Fate = { outcome: OutcomeCode; latencyMs: number };

/** A constant-rate request log from 0 to durationMs; `fate` decides each request by its scheduled time. */
export function sampleLog(rate: number, durationMs: number, fate: (t: number) => Fate): RequestLog {
  const log = createRequestLog();
  const spacing = 1000 / rate;
  for (let i = 0; i * spacing < durationMs; i++) {
    const t = i * spacing;
    const j = log.push(t, 0);
    const f = fate(t);
    log.outcome[j] = f.outcome;
    log.latencyMs[j] = f.latencyMs;
  }
  return log;
}

export const SAMPLE_EPOCH_MS = Date.UTC(2026, 9, 1, 9, 0, 0);

export function sampleMark(name: string, ms: number): Mark {
  return { name, ms, at: new Date(SAMPLE_EPOCH_MS + ms).toISOString() };
}

export function sampleDrill(): Drill {
  const entry: ScenarioEntry = {
    name: 'pod-kill',
    scenario: 'pod-kill',
    params: { count: 1 },
    timeoutMs: 60_000,
    tier: 'critical',
    dataClass: 'database',
    line: 12,
  };
  return {
    file: 'drills/checkout.yaml',
    name: 'checkout-quarterly',
    kind: 'quarterly',
    participants: ['sre-oncall'],
    service: { name: 'checkout', tier: 'critical', dataClass: 'database' },
    target: { kind: 'lab', replicas: 3 },
    policy: {
      rtoMs: { critical: 3_600_000, important: 14_400_000, standard: 86_400_000 },
      rpoMs: { database: 900_000, 'file-storage': 3_600_000, logs: 86_400_000 },
      slo: {
        availability: [parseThreshold('rate>=99.9%')],
        errors: [parseThreshold('rate<0.1%')],
        latency: [parseThreshold('p(95)<500ms'), parseThreshold('p(99)<1000ms')],
      },
      recoveryWindowMs: 10_000,
      budgetPeriodMs: MEAN_MONTH_MS,
      replicas: { minReplicas: 3, maxReplicas: 20, cpuPercent: 70, memoryPercent: 80 },
      maintenance: { ...DEFAULT_POLICY.maintenance, days: [...DEFAULT_POLICY.maintenance.days] },
    },
    load: {
      rate: 200,
      requests: [{ method: 'GET', path: '/orders', weight: 1 }],
      timeoutMs: 2000,
      maxInFlight: 256,
      connections: 16,
      baselineMs: 10_000,
      cooldownMs: 10_000,
    },
    stopConditions: [],
    scenarios: [entry],
  };
}

/**
 * 40 s at 200 req/s against the lab: fault at 10 s, connections refused for 2 s, recovered at 12 s,
 * verified, one pod killed and its rollback done.
 */
export function sampleRunInput(): RunRecordInput {
  const drill = sampleDrill();
  const log = sampleLog(200, 40_000, (t) =>
    t >= 10_000 && t < 12_000 ? { outcome: Outcome.refused, latencyMs: 1 } : { outcome: Outcome.ok, latencyMs: 20 + (t % 7) },
  );
  const at = (ms: number) => new Date(SAMPLE_EPOCH_MS + ms).toISOString();
  return {
    id: '20261001T090000Z-pod-kill-a1b2c3',
    drill,
    entry: drill.scenarios[0]!,
    targetDetails: { kind: 'lab', dir: '/tmp/drill-lab', serviceUrl: 'http://127.0.0.1:18080' },
    startedAt: at(0),
    endedAt: at(41_000),
    epochMs: SAMPLE_EPOCH_MS,
    marks: [
      sampleMark('load-started', 0),
      sampleMark('steady-state-met', 9_990),
      sampleMark('fault-injected', 10_000),
      sampleMark('outage-detected', 10_000),
      sampleMark('recovered', 12_000),
      sampleMark('verified', 22_500),
      sampleMark('rolled-back', 22_600),
      sampleMark('load-stopped', 40_000),
    ],
    actions: [
      {
        name: 'kill-pod',
        description: 'SIGKILL one replica of the service',
        startedAt: at(10_000),
        endedAt: at(10_004),
        status: 'done',
        targets: ['replica-2 (pid 4242)'],
        rollback: {
          description: 'start the replica again if the supervisor did not',
          status: 'done',
          detail: 'replica-2 running',
          startedAt: at(22_550),
          endedAt: at(22_600),
        },
      },
    ],
    recoveryProbe: { name: 'replicas ready', ok: true, detail: '3/3 replicas ready', at: at(11_500) },
    verification: [{ name: 'replicas ready', ok: true, detail: '3/3 replicas ready', at: at(22_500) }],
    abort: null,
    harnessError: null,
    load: { log, startMs: 0, endMs: 40_000 },
    environment: { harnessVersion: '0.1.0', node: 'v20.20.2', platform: 'linux-x64' },
  };
}
