import { parseDuration } from './duration.ts';
import { parseThreshold } from './threshold.ts';
import { parseStopCondition } from './stop-condition.ts';
import {
  DEFAULT_LOAD,
  DEFAULT_SCENARIO_TIMEOUT_MS,
  KUBE_DATABASE_DEFAULTS,
  LAB_DATABASE_DEFAULTS,
  REGION_DEFAULTS,
  SERVICE_DEFAULTS,
  TARGET_DEFAULTS,
  defaultPolicy,
  parsePercent,
} from './defaults.ts';
import type { BlobDrillFile, DrillFile, TargetFile } from './schema.ts';
import { minuteOfDay, weekdayIndex } from './maintenance.ts';
import type { DataClass, Drill, KubernetesDatabase, LoadConfig, Policy, ScenarioCatalog, ScenarioEntry, Target, Tier } from './types.ts';
import type { RequestTemplate } from '../load/types.ts';

/**
 * A validated drill file to the `Drill` the rest of the harness reads: durations in ms, thresholds
 * and stop conditions parsed, defaults filled. Only called once validation found nothing, so the
 * parsers here cannot throw on user input.
 */
export function normaliseTarget(t: TargetFile): Target {
  if (t.kind === 'http') return { kind: 'http', url: t.url };
  if (t.kind === 'blob') {
    const prefix = (t.prefix ?? '').replace(/^\/+/, '');
    return {
      kind: 'blob',
      container: t.container,
      prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
      ...(t.scratchDir === undefined ? {} : { scratchDir: t.scratchDir }),
    };
  }
  if (t.kind === 'kubernetes') {
    return {
      kind: 'kubernetes',
      ...(t.kubeconfig === undefined ? {} : { kubeconfig: t.kubeconfig }),
      ...(t.context === undefined ? {} : { context: t.context }),
      inCluster: t.inCluster ?? false,
      namespace: t.namespace ?? t.namespaces[0]!,
      namespaces: [...t.namespaces],
      blastRadius: t.blastRadius ?? TARGET_DEFAULTS.blastRadius,
      url: t.url,
      ...(t.database === undefined ? {} : { database: normaliseKubeDatabase(t.database, t.namespace ?? t.namespaces[0]!) }),
      ...(t.allowDataLoss === true && t.dataLossReason !== undefined ? { dataLoss: { reason: t.dataLossReason } } : {}),
    };
  }
  return {
    kind: 'lab',
    replicas: t.replicas ?? TARGET_DEFAULTS.replicas,
    ...(t.labDir === undefined ? {} : { labDir: t.labDir }),
    ...(t.archiveLag === undefined ? {} : { archiveLagMs: parseDuration(t.archiveLag) }),
    ...(t.logShipInterval === undefined ? {} : { logShipIntervalMs: parseDuration(t.logShipInterval) }),
    ...(t.regions === 2
      ? { regions: 2 as const, replicationLagMs: parseDuration(t.replicationLag ?? REGION_DEFAULTS.replicationLag) }
      : {}),
    ...(t.database === undefined
      ? {}
      : {
          database: {
            replication: t.database.replication ?? LAB_DATABASE_DEFAULTS.replication,
            provider: t.database.provider ?? LAB_DATABASE_DEFAULTS.provider,
          },
        }),
    ...(t.allowDataLoss === true && t.dataLossReason !== undefined ? { dataLoss: { reason: t.dataLossReason } } : {}),
  };
}

function normaliseKubeDatabase(
  d: NonNullable<Extract<TargetFile, { kind: 'kubernetes' }>['database']>,
  targetNamespace: string,
): KubernetesDatabase {
  return {
    provider: d.provider,
    cluster: d.cluster,
    namespace: d.namespace ?? targetNamespace,
    mode: d.mode ?? KUBE_DATABASE_DEFAULTS.mode,
    host: d.host,
    port: d.port ?? KUBE_DATABASE_DEFAULTS.port,
    database: d.database ?? KUBE_DATABASE_DEFAULTS.database,
    user: d.user ?? KUBE_DATABASE_DEFAULTS.user,
    passwordEnv: d.passwordEnv ?? KUBE_DATABASE_DEFAULTS.passwordEnv,
    ...(d.restore === undefined
      ? {}
      : {
          restore: {
            destinationPath: d.restore.destinationPath,
            serverName: d.restore.serverName ?? d.cluster,
            azureCredentials: d.restore.azureCredentials,
            service: d.restore.service,
            ...(d.restore.instances === undefined ? {} : { instances: d.restore.instances }),
          },
        }),
  };
}

export function normalisePolicy(p: DrillFile['policy']): Policy {
  const policy = defaultPolicy();
  for (const [tier, d] of Object.entries(p?.rto ?? {})) if (d !== undefined) policy.rtoMs[tier as Tier] = parseDuration(d);
  for (const [cls, d] of Object.entries(p?.rpo ?? {})) if (d !== undefined) policy.rpoMs[cls as DataClass] = parseDuration(d);
  // A list replaces the default list as a whole: merging would keep a default the author meant to drop.
  if (p?.slo?.availability) policy.slo.availability = p.slo.availability.map(parseThreshold);
  if (p?.slo?.latency) policy.slo.latency = p.slo.latency.map(parseThreshold);
  if (p?.slo?.errors) policy.slo.errors = p.slo.errors.map(parseThreshold);
  if (p?.recoveryWindow !== undefined) policy.recoveryWindowMs = parseDuration(p.recoveryWindow);
  if (p?.budgetPeriod !== undefined) policy.budgetPeriodMs = parseDuration(p.budgetPeriod);
  const r = p?.replicas;
  if (r?.min !== undefined) policy.replicas.minReplicas = r.min;
  if (r?.max !== undefined) policy.replicas.maxReplicas = r.max;
  if (r?.cpu !== undefined) policy.replicas.cpuPercent = parsePercent(r.cpu);
  if (r?.memory !== undefined) policy.replicas.memoryPercent = parsePercent(r.memory);
  const m = p?.maintenance;
  if (m?.days !== undefined) policy.maintenance.days = [...new Set(m.days.map(weekdayIndex))].sort();
  if (m?.start !== undefined) policy.maintenance.start = m.start.trim();
  if (m?.end !== undefined) policy.maintenance.end = m.end.trim();
  policy.maintenance.startMinute = minuteOfDay(policy.maintenance.start)!;
  policy.maintenance.endMinute = minuteOfDay(policy.maintenance.end)!;
  if (m?.timeZone !== undefined) policy.maintenance.timeZone = m.timeZone;
  if (m?.notice !== undefined) {
    policy.maintenance.noticeMs = parseDuration(m.notice);
    policy.maintenance.notice = m.notice.trim();
  }
  return policy;
}

export function normaliseLoad(l: DrillFile['load']): LoadConfig {
  const requests: RequestTemplate[] = (l.requests ?? DEFAULT_LOAD.requests).map((r) => ({
    method: r.method,
    path: r.path,
    ...('body' in r && r.body !== undefined ? { body: r.body } : {}),
    ...('headers' in r && r.headers !== undefined ? { headers: { ...r.headers } } : {}),
    weight: r.weight ?? 1,
  }));
  return {
    rate: l.rate,
    requests,
    timeoutMs: l.timeout === undefined ? DEFAULT_LOAD.timeoutMs : parseDuration(l.timeout),
    maxInFlight: l.maxInFlight ?? DEFAULT_LOAD.maxInFlight,
    connections: l.connections ?? DEFAULT_LOAD.connections,
    baselineMs: l.baseline === undefined ? DEFAULT_LOAD.baselineMs : parseDuration(l.baseline),
    cooldownMs: l.cooldown === undefined ? DEFAULT_LOAD.cooldownMs : parseDuration(l.cooldown),
    ...(l.attachments && l.attachments.share > 0 ? { attachments: { share: l.attachments.share } } : {}),
  };
}

export function normaliseDrill(
  file: string,
  raw: DrillFile | BlobDrillFile,
  ctx: { params: ReadonlyMap<number, Record<string, unknown>>; catalog: ScenarioCatalog; lineOf: (index: number) => number },
): Drill {
  const scenarios: ScenarioEntry[] = raw.scenarios.map((e, i) => {
    const def = ctx.catalog.get(e.scenario);
    const params = ctx.params.get(i);
    if (!def || !params) throw new Error(`internal: scenarios[${i}] (${e.scenario}) reached normalisation without validated params`);
    return {
      name: e.name ?? e.scenario,
      scenario: e.scenario,
      params,
      timeoutMs: e.timeout === undefined ? DEFAULT_SCENARIO_TIMEOUT_MS : parseDuration(e.timeout),
      // What the drill says about its service outranks what the scenario assumes; the scenario's own
      // class only fills in when the drill is silent, and the organisation's default after that.
      tier: e.tier ?? raw.service?.tier ?? def.tier ?? SERVICE_DEFAULTS.tier,
      dataClass: e.dataClass ?? raw.service?.dataClass ?? def.dataClass ?? SERVICE_DEFAULTS.dataClass,
      line: ctx.lineOf(i),
    };
  });
  return {
    file,
    name: raw.name,
    kind: raw.kind,
    ...(raw.description === undefined ? {} : { description: raw.description }),
    ...(raw.owner === undefined ? {} : { owner: raw.owner }),
    participants: [...(raw.participants ?? [])],
    ...(raw.approver === undefined ? {} : { approver: raw.approver }),
    service: {
      name: raw.service?.name ?? SERVICE_DEFAULTS.name,
      tier: raw.service?.tier ?? SERVICE_DEFAULTS.tier,
      dataClass: raw.service?.dataClass ?? SERVICE_DEFAULTS.dataClass,
    },
    target: normaliseTarget(raw.target),
    policy: normalisePolicy(raw.policy),
    load: 'load' in raw ? normaliseLoad(raw.load) : null,
    stopConditions: (raw.stopConditions ?? []).map(parseStopCondition),
    scenarios,
  };
}
