import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Drill, ScenarioEntry } from '../config/types.ts';
import { parseDuration } from '../config/duration.ts';
import { createClock, type Clock } from '../measure/clock.ts';
import { summarize } from '../measure/summary.ts';
import { findRecovery } from '../measure/recovery.ts';
import { scoreSlos } from '../score/objectives.ts';
import { LoadGenerator } from '../load/generator.ts';
import type { SecondStats } from '../load/types.ts';
import type { Action, Adapters, ProbeResult, ScenarioContext, ScenarioDefinition } from '../scenario/define.ts';
import { UserError } from '../errors.ts';
import { Journal } from './journal.ts';
import { StopWatch } from './stop.ts';
import { RunAbort, Timeline, eventLogger, scenarioContext, sleep } from './context.ts';
import type { JournaledEvent } from './events.ts';
import type { ProbeFact, RunFacts } from './facts.ts';

export interface RunHooks {
  /** A line for the person watching (events, phase changes). */
  say(line: string): void;
  /** Phase changes, for the live progress line. */
  phase(name: string): void;
  /** Called once the load runs, so the UI can show req/s and p95 live. */
  loadStarted?(load: LoadGenerator, clock: Clock): void;
  /** Every completed second of load. */
  second?(s: SecondStats): void;
}

export interface ScenarioRunInput {
  drill: Drill;
  entry: ScenarioEntry;
  scenario: ScenarioDefinition;
  adapters: Adapters;
  /** Null for a target without a service (blob): no load runs and SLOs are not judged. */
  serviceUrl: string | null;
  resultsDir: string;
  targetDetails: Record<string, unknown>;
  /** Drill-level abort: SIGINT/SIGTERM. */
  signal: AbortSignal;
  hooks: RunHooks;
}

const DEFAULT_ROLLBACK_TIMEOUT_MS = 5 * 60_000;
const RECOVERY_EVAL_MS = 250;

export function newRunId(entry: ScenarioEntry, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${entry.name}-${randomBytes(3).toString('hex')}`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function rollbackDescription<P>(a: Action<P>, params: P): string {
  if ('none' in a.rollback) return `none: ${a.rollback.none}`;
  const d = a.rollback.description;
  return typeof d === 'function' ? d(params) : d;
}

/**
 * One scenario, start to finish: baseline load and steady state, inject (each action journaled before
 * it runs), observe until recovered, verify, roll back, cool down. Returns the facts; it never throws
 * for a failure of the system under test, only records it.
 */
export async function runScenario(input: ScenarioRunInput): Promise<RunFacts> {
  const { drill, entry, scenario, hooks } = input;
  const id = newRunId(entry);
  const dir = join(input.resultsDir, 'runs', id);
  mkdirSync(dir, { recursive: true });
  const clock = createClock();
  const journal = new Journal(join(dir, 'events.jsonl'));
  const timeline = new Timeline(clock);
  const event = (e: JournaledEvent) => {
    const ms = clock.now();
    journal.append(e, clock.iso(ms), ms);
  };
  const log = eventLogger((e) => {
    event(e);
    hooks.say(`  ${e.level === 'warn' ? `warning: ${e.message}` : e.message}`);
  });

  // One controller for the run: SIGINT, a stop condition or a failed action aborts whatever phase is running.
  const run = new AbortController();
  const onOuterAbort = () => run.abort(new RunAbort('signal', `interrupted (${String(input.signal.reason ?? 'signal')})`));
  if (input.signal.aborted) onOuterAbort();
  else input.signal.addEventListener('abort', onOuterAbort, { once: true });

  const facts: RunFacts = {
    id,
    dir,
    drill,
    entry,
    targetDetails: input.targetDetails,
    startedAt: clock.iso(0),
    endedAt: clock.iso(0),
    epochMs: clock.epochMs,
    marks: [],
    steadyState: [],
    actions: scenario.actions.map((a, index) => ({
      index,
      name: a.name,
      description: a.description,
      startedAt: null,
      endedAt: null,
      status: 'not-run',
      targets: [],
      rollback: { description: rollbackDescription(a, entry.params), status: 'not-run' },
    })),
    recoveryProbe: null,
    verification: [],
    skippedChecks: [],
    abort: null,
    harnessError: null,
    load: null,
    rpo: null,
  };

  event({
    type: 'run.start',
    id,
    // The whole normalised drill, so `drill recover` can rebuild the scenario's context after a crash.
    drill,
    scenario: scenario.name,
    entry: { name: entry.name, params: entry.params, timeoutMs: entry.timeoutMs, tier: entry.tier, dataClass: entry.dataClass },
    target: input.targetDetails,
    epochMs: clock.epochMs,
  });

  // A target without a service (a restore from Blob) runs no load: recovery is the scenario's own check.
  const loadConfig = input.serviceUrl === null ? null : drill.load;
  const load =
    loadConfig && input.serviceUrl !== null
      ? new LoadGenerator(
          {
            url: input.serviceUrl,
            rate: loadConfig.rate,
            requests: loadConfig.requests,
            timeoutMs: loadConfig.timeoutMs,
            maxInFlight: loadConfig.maxInFlight,
            connections: loadConfig.connections,
          },
          clock,
        )
      : null;
  const stopWatch = new StopWatch(drill.stopConditions);
  const metricsPath = join(dir, 'metrics.jsonl');
  load?.onSecond((s) => {
    // Appended as each second completes, like the journal, so a crashed run still has its metrics.
    appendFileSync(metricsPath, JSON.stringify(s) + '\n');
    hooks.second?.(s);
    const fired = stopWatch.observe(s);
    if (fired && !run.signal.aborted) {
      const why = `stop condition "${fired.condition.source}" held (last value ${fired.value.toFixed(3)})`;
      event({ type: 'stop-condition', condition: fired.condition.source, value: fired.value });
      run.abort(new RunAbort('stop-condition', why));
    }
  });

  const results = new Map<string, unknown>();
  const ctx: ScenarioContext<unknown> = scenarioContext({
    params: entry.params,
    drill,
    entry,
    adapters: input.adapters,
    signal: run.signal,
    log,
    timeline,
    clock,
    load: load ? { window: (ms) => load.window(ms), ledger: load.ledger } : undefined,
    results,
    onRpo: (m) => {
      facts.rpo = m;
      event({ type: 'rpo.measured', ...m });
    },
  });

  const probeFact = async (p: { name: string; check(c: ScenarioContext<unknown>): Promise<ProbeResult> }, c = ctx): Promise<ProbeFact> => {
    let r: ProbeResult;
    try {
      r = await p.check(c);
    } catch (e) {
      if (run.signal.aborted) throw run.signal.reason;
      r = { ok: false, detail: `probe failed: ${errText(e)}` };
    }
    const f = { name: p.name, ok: r.ok, detail: r.detail, ...(r.severity ? { severity: r.severity } : {}), ...(r.final ? { final: true } : {}), at: clock.iso(clock.now()) };
    event({ type: 'probe', ...f });
    return f;
  };

  const started: number[] = [];
  const selections = new Map<number, unknown>();
  try {
    // Baseline: load runs, and steady state is judged on it before anything is touched.
    if (load && loadConfig) {
      hooks.phase('baseline');
      load.start();
      hooks.loadStarted?.(load, clock);
      timeline.mark('load-started');
      hooks.say(`  baseline: ${loadConfig.rate} req/s for ${loadConfig.baselineMs / 1000}s`);
      await sleep(loadConfig.baselineMs, run.signal);
    }

    hooks.phase('steady-state');
    if (load) {
      const baseline = summarize(load.log, 0, clock.now());
      const sloNow = scoreSlos(drill.policy.slo, baseline, 'baseline');
      for (const s of sloNow) {
        facts.steadyState.push({ name: `SLO ${s.name}`, ok: s.met === true, detail: `measured ${s.measured ?? 'n/a'} over the baseline`, at: clock.iso(clock.now()) });
      }
    }
    for (const p of scenario.steadyState) facts.steadyState.push(await probeFact(p));
    const unmet = facts.steadyState.filter((f) => !f.ok);
    if (unmet.length > 0) {
      throw new RunAbort('steady-state', `steady state not met: ${unmet.map((f) => `${f.name} (${f.detail})`).join('; ')}`);
    }
    timeline.mark('steady-state-met');

    // Inject: write ahead, then act.
    hooks.phase('inject');
    for (const [i, a] of scenario.actions.entries()) {
      const fact = facts.actions[i]!;
      const selected = await a.select(ctx);
      fact.targets = a.describeTargets(selected);
      event({
    type: 'action.intent',
        action: i,
        name: a.name,
        scenario: scenario.name,
        selected,
        targets: fact.targets,
        rollback: fact.rollback.description,
      });
      started.push(i);
      selections.set(i, selected);
      if (i === 0) timeline.mark('fault-injected');
      fact.startedAt = clock.iso(clock.now());
      hooks.say(`  ${a.name}: ${fact.targets.join(', ') || '(no targets)'}`);
      try {
        const result = await a.run(ctx, selected);
        results.set(a.name, result);
        fact.status = 'done';
        fact.endedAt = clock.iso(clock.now());
        event({ type: 'action.done', action: i, name: a.name, result: result ?? null });
      } catch (e) {
        fact.status = 'failed';
        fact.error = errText(e);
        fact.endedAt = clock.iso(clock.now());
        event({ type: 'action.failed', action: i, name: a.name, error: fact.error });
        if (run.signal.aborted) throw run.signal.reason;
        throw new RunAbort('action-failed', `action "${a.name}" failed: ${fact.error}`);
      }
    }

    // Observe: until the scenario says the system is whole and the SLOs held for a full window.
    hooks.phase('observe');
    const faultMs = timeline.get('fault-injected')!.ms;
    const until = scenario.recovery.until;
    const pollMs = scenario.recovery.pollMs ?? 500;
    let probeOkMs: number | null = until ? null : faultMs;
    let lastProbeAt = -Infinity;
    const deadline = faultMs + entry.timeoutMs + drill.policy.recoveryWindowMs;
    for (;;) {
      const now = clock.now();
      if (until && probeOkMs === null && now - lastProbeAt >= pollMs) {
        lastProbeAt = now;
        const f = await probeFact(until);
        facts.recoveryProbe = f;
        if (f.ok) probeOkMs = clock.now();
        else if (f.final) {
          hooks.say(`  not recovered: ${f.detail}`);
          event({ type: 'recovery.failed', probe: f });
          break;
        }
      }
      const rec = load
        ? findRecovery(load.log, { faultMs, slo: drill.policy.slo, windowMs: drill.policy.recoveryWindowMs, nowMs: clock.now() })
        : { recoveredMs: probeOkMs, outageDetectedMs: null };
      if (rec.recoveredMs !== null && probeOkMs !== null) {
        timeline.mark('recovered', Math.max(rec.recoveredMs, probeOkMs));
        if (rec.outageDetectedMs !== null) timeline.mark('outage-detected', rec.outageDetectedMs);
        hooks.say(`  recovered ${((Math.max(rec.recoveredMs, probeOkMs) - faultMs) / 1000).toFixed(2)}s after the fault`);
        break;
      }
      if (now > deadline) {
        hooks.say(`  not recovered within ${entry.timeoutMs / 1000}s (+${drill.policy.recoveryWindowMs / 1000}s SLO window)`);
        event({ type: 'recovery.timeout', timeoutMs: entry.timeoutMs, probe: facts.recoveryProbe });
        break;
      }
      await sleep(Math.min(RECOVERY_EVAL_MS, pollMs), run.signal);
    }

    hooks.phase('verify');
    for (const p of scenario.verify) {
      const skipped = p.skip?.(ctx) ?? null;
      if (skipped === null) {
        facts.verification.push(await probeFact(p));
        continue;
      }
      facts.skippedChecks.push({ name: p.name, reason: skipped });
      event({ type: 'probe.skipped', name: p.name, reason: skipped });
      hooks.say(`  skipped ${p.name}: ${skipped}`);
    }
    if (facts.verification.every((v) => v.ok) && timeline.get('recovered')) timeline.mark('verified');
  } catch (e) {
    if (e instanceof RunAbort) {
      facts.abort = e;
      event({ type: 'run.abort', kind: e.kind, reason: e.message });
      hooks.say(`  ${e.kind === 'steady-state' ? 'not injecting' : 'aborting'}: ${e.message}`);
    } else if (e instanceof UserError) {
      // An impossible selection found at run time: nothing was touched yet (select is read-only).
      facts.abort = new RunAbort('action-failed', e.message);
      event({ type: 'run.abort', kind: 'action-failed', reason: e.message });
      hooks.say(`  aborting: ${e.message}`);
    } else {
      facts.harnessError = { message: errText(e), stack: e instanceof Error ? e.stack : undefined };
      event({ type: 'harness.error', ...facts.harnessError });
      hooks.say(`  harness error: ${errText(e)}`);
    }
  }

  // Rollback, newest first, each under its own time limit: they run after an abort too.
  hooks.phase('rollback');
  for (const i of [...started].reverse()) {
    const a = scenario.actions[i]!;
    const fact = facts.actions[i]!;
    if ('none' in a.rollback) {
      fact.rollback.status = 'none';
      event({ type: 'rollback.none', action: i, name: a.name, why: a.rollback.none });
      continue;
    }
    const limitMs = a.rollback.timeout ? parseDuration(a.rollback.timeout) : DEFAULT_ROLLBACK_TIMEOUT_MS;
    const rbSignal = AbortSignal.timeout(limitMs);
    fact.rollback.startedAt = clock.iso(clock.now());
    event({ type: 'rollback.start', action: i, name: a.name, timeoutMs: limitMs });
    try {
      const detail = await a.rollback.run({ ...ctx, signal: rbSignal }, { selected: selections.get(i), result: results.get(a.name) });
      fact.rollback.status = 'done';
      fact.rollback.detail = detail ?? undefined;
      event({ type: 'rollback.done', action: i, name: a.name, detail: detail ?? null });
      hooks.say(`  rolled back ${a.name}${detail ? `: ${detail}` : ''}`);
    } catch (e) {
      fact.rollback.status = 'failed';
      fact.rollback.error = rbSignal.aborted ? `did not finish within ${limitMs / 1000}s` : errText(e);
      event({ type: 'rollback.failed', action: i, name: a.name, error: fact.rollback.error });
      hooks.say(`  ROLLBACK FAILED for ${a.name}: ${fact.rollback.error}`);
    }
    fact.rollback.endedAt = clock.iso(clock.now());
  }
  if (started.length > 0 && facts.actions.every((a) => a.rollback.status !== 'failed')) timeline.mark('rolled-back');

  // Cool down: the recovery phase needs traffic after the system is whole, unless the run was cut short.
  if (load && loadConfig && !facts.abort && !facts.harnessError && loadConfig.cooldownMs > 0) {
    hooks.phase('cooldown');
    await sleep(loadConfig.cooldownMs, input.signal).catch(() => undefined);
  }
  if (load) {
    await load.stop();
    timeline.mark('load-stopped');
  }
  input.signal.removeEventListener('abort', onOuterAbort);

  facts.marks = timeline.all();
  facts.load = load
    ? {
        log: load.log,
    ledger: load.ledger,
    seconds: load.seconds(),
    startMs: timeline.get('load-started')?.ms ?? 0,
    endMs: timeline.get('load-stopped')!.ms,
      }
    : null;
  facts.endedAt = clock.iso(clock.now());
  event({ type: 'run.end', aborted: facts.abort?.kind ?? null, harnessError: facts.harnessError?.message ?? null });
  journal.close();
  return facts;
}
