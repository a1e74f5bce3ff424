/**
 * Replication probes for a scenario's steadyState: "the standby streams" and "its replay lag is below N".
 * A drill that would fail over to a standby that is down or minutes behind measures the wrong thing, so
 * either failing blocks injection (exit 3). The judging is pure (over a Topology); the probes read it
 * from whichever failover provider the target chose.
 */
import type { Probe, ProbeResult, ScenarioContext } from '../define.ts';
import type { FailoverProvider, Topology } from '../../adapters/postgres/failover/types.ts';

type ProviderOf = (ctx: ScenarioContext<any>) => FailoverProvider | undefined;

const fromTarget: ProviderOf = (ctx) => ctx.adapters.database?.provider;

function describeStandby(s: Topology['standbys'][number]): string {
  if (s.role !== 'standby') return `${s.name} down or not a standby`;
  const r = s.replication;
  const lag =
    r.replayLagMs === null
      ? `replay lag unknown${r.unknownBecause ? `: ${r.unknownBecause}` : ''}`
      : `replay lag ${Math.round(r.replayLagMs)} ms`;
  const bytes = r.lagBytes === null ? '' : `, ${r.lagBytes} bytes behind`;
  return `${s.name} ${r.streaming ? 'streaming' : 'NOT streaming'} (${r.mode}), ${lag}${bytes}`;
}

/** At least `min` standbys stream from a single primary. */
export function judgeStreaming(topo: Topology, min = 1): ProbeResult {
  if (!topo.primary)
    return { ok: false, detail: `no single primary: ${topo.standbys.map(describeStandby).join('; ') || 'no node answers'}` };
  const streaming = topo.standbys.filter((s) => s.role === 'standby' && s.replication.streaming);
  const all = topo.standbys.map(describeStandby).join('; ') || 'no standby configured';
  return {
    ok: streaming.length >= min,
    detail: `primary ${topo.primary.name}; ${streaming.length}/${min} streaming standby${min === 1 ? '' : 's'} needed: ${all}`,
  };
}

/**
 * Every streaming standby replays within `maxLagMs`, and there is at least one. A lag the provider cannot
 * measure fails the probe: an unknown lag is no promise that a failover loses little.
 */
export function judgeReplayLag(topo: Topology, maxLagMs: number): ProbeResult {
  const streaming = topo.standbys.filter((s) => s.role === 'standby' && s.replication.streaming);
  if (!topo.primary || streaming.length === 0)
    return { ok: false, detail: `no streaming standby to measure: ${judgeStreaming(topo).detail}` };
  const unknown = streaming.filter((s) => s.replication.replayLagMs === null).map((s) => s.name);
  const over = streaming.filter((s) => s.replication.replayLagMs !== null && s.replication.replayLagMs > maxLagMs).map((s) => s.name);
  const verdict = [over.length ? `${over.join(', ')} over it` : '', unknown.length ? `${unknown.join(', ')} not measurable` : '']
    .filter(Boolean)
    .join(', ');
  return {
    ok: unknown.length === 0 && over.length === 0,
    detail: `${streaming.map(describeStandby).join('; ')}; limit ${maxLagMs} ms${verdict ? `: ${verdict}` : ''}`,
  };
}

async function read(ctx: ScenarioContext<any>, providerOf: ProviderOf): Promise<Topology | ProbeResult> {
  const provider = providerOf(ctx);
  if (!provider) return { ok: false, detail: 'the target has no database adapter: nothing to probe' };
  try {
    return await provider.topology(ctx.signal);
  } catch (e) {
    return { ok: false, detail: `${provider.kind} could not read the topology: ${(e as Error).message}` };
  }
}

const isResult = (x: Topology | ProbeResult): x is ProbeResult => 'ok' in x;

/** Probe: at least `min` (default 1) standbys stream from the primary. */
export function standbyStreaming(options: { min?: number; provider?: ProviderOf } = {}): Probe {
  const min = options.min ?? 1;
  return {
    name: min === 1 ? 'standby streaming' : `${min} standbys streaming`,
    async check(ctx) {
      const t = await read(ctx, options.provider ?? fromTarget);
      return isResult(t) ? t : judgeStreaming(t, min);
    },
  };
}

/** Probe: every streaming standby's replay lag is at most `maxLagMs` (e.g. from a `maxReplayLag: 5s` param). */
export function replayLagBelow(maxLagMs: number | ((ctx: ScenarioContext<any>) => number), options: { provider?: ProviderOf } = {}): Probe {
  return {
    name: typeof maxLagMs === 'number' ? `replay lag below ${maxLagMs} ms` : 'replay lag below the limit',
    async check(ctx) {
      const t = await read(ctx, options.provider ?? fromTarget);
      return isResult(t) ? t : judgeReplayLag(t, typeof maxLagMs === 'number' ? maxLagMs : maxLagMs(ctx));
    },
  };
}
