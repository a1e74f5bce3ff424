import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Drill, LoadConfig, ScenarioEntry } from '../../config/types.ts';
import { createClock, type Clock } from '../../measure/clock.ts';
import { LoadGenerator } from '../../load/generator.ts';
import type { SecondStats } from '../../measure/request-log.ts';
import {
  describeRollback,
  restoresOf,
  type Adapters,
  type Progress,
  type ProbeResult,
  type ScenarioContext,
  type ScenarioDefinition,
} from '../../scenario/define.ts';
import { Journal } from '../journal.ts';
import { findRecovery } from '../../score/recovery.ts';
import { StopWatch } from '../stop.ts';
import { RunAbort, eventLogger } from '../context.ts';
import { scenarioContext } from '../../scenario/context.ts';
import { Timeline } from '../../measure/timeline.ts';
import type { JournaledEvent, ProgressEvent, RunEvent } from '../events.ts';
import type { ProbeFact, RunFacts } from '../facts.ts';
import type { WindowRecord } from '../../record/run-record.ts';

/** Whoever watches a run: every event, and the load itself for a live line. Every hook is optional but `event`. */
export interface RunHooks {
  event(e: RunEvent): void;
  /** Called once the load runs, so the UI can show req/s and p95 live. */
  loadStarted?(load: LoadGenerator, clock: Clock): void;
  /** Every completed second of load. */
  second?(s: SecondStats): void;
  /** A scenario's transfer progress (`ctx.progress`), for a live line on a terminal. */
  progress?(update: Progress): void;
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
  /** Drill-level abort: SIGINT/SIGTERM, or the halt switch (its reason a RunAbort). */
  signal: AbortSignal;
  hooks: RunHooks;
  /** The maintenance window and notice for the record; null on the lab. */
  window?: WindowRecord | null;
}

/** One run as the phases share it: what they read (input, clock, load), what they fill in (facts), what they tell. */
export interface RunState {
  input: ScenarioRunInput;
  drill: Drill;
  entry: ScenarioEntry;
  scenario: ScenarioDefinition;
  clock: Clock;
  timeline: Timeline;
  journal: Journal;
  /** One controller for the run: SIGINT, a stop condition or a failed action aborts whatever phase is running. */
  run: AbortController;
  /** Null when the target has no service: recovery is then the scenario's own check. */
  load: { generator: LoadGenerator; config: LoadConfig } | null;
  ctx: ScenarioContext<unknown>;
  facts: RunFacts;
  /** Action results by action name: later actions and rollbacks read them, and the journal keeps them the same way. */
  results: Map<string, unknown>;
  /** Actions whose intent was journaled, in order: the rollback stack. */
  started: number[];
  selections: Map<number, unknown>;
  /** Journals the event (fsynced) and shows it. */
  record(e: JournaledEvent): void;
  /** Shows the event; the journal does not keep it. */
  tell(e: ProgressEvent): void;
  /** Runs a probe, journals its answer; a probe that throws has failed, unless the run was aborted under it. */
  probe(p: { name: string; check(c: ScenarioContext<unknown>): Promise<ProbeResult> }): Promise<ProbeFact>;
  /** Drops the run's hold on the drill's signal. */
  release(): void;
}

function newRunId(entry: ScenarioEntry, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${entry.name}-${randomBytes(3).toString('hex')}`;
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function emptyFacts(id: string, dir: string, input: ScenarioRunInput, clock: Clock): RunFacts {
  const { drill, entry, scenario } = input;
  return {
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
      rollback: {
        description: describeRollback(a, entry.params),
        ...(restoresOf(a, entry.params) ? { restores: restoresOf(a, entry.params)! } : {}),
        status: 'not-run',
      },
    })),
    recoveryProbe: null,
    verification: [],
    skippedChecks: [],
    abort: null,
    harnessError: null,
    load: null,
    rpo: null,
    window: input.window ?? null,
  };
}

/** Creates the run's folder, journal, clock and load (not started yet), and the context the scenario sees. */
export function openRun(input: ScenarioRunInput): RunState {
  const { drill, entry, hooks } = input;
  const id = newRunId(entry);
  const dir = join(input.resultsDir, 'runs', id);
  mkdirSync(dir, { recursive: true });
  const clock = createClock();
  const journal = new Journal(join(dir, 'events.jsonl'));
  const timeline = new Timeline(clock);
  const record = (e: JournaledEvent) => {
    const ms = clock.now();
    journal.append(e, clock.iso(ms), ms);
    hooks.event(e);
  };

  const run = new AbortController();
  const onOuterAbort = () =>
    run.abort(
      input.signal.reason instanceof RunAbort
        ? input.signal.reason
        : new RunAbort('signal', `interrupted (${String(input.signal.reason ?? 'signal')})`),
    );
  if (input.signal.aborted) onOuterAbort();
  else input.signal.addEventListener('abort', onOuterAbort, { once: true });

  const facts = emptyFacts(id, dir, input, clock);
  // A target without a service (a restore from Blob) runs no load: recovery is the scenario's own check.
  const config = input.serviceUrl === null ? null : drill.load;
  const generator =
    config && input.serviceUrl !== null
      ? new LoadGenerator(
          {
            url: input.serviceUrl,
            rate: config.rate,
            requests: config.requests,
            timeoutMs: config.timeoutMs,
            maxInFlight: config.maxInFlight,
            connections: config.connections,
            ...(config.attachments ? { attachments: config.attachments } : {}),
          },
          clock,
        )
      : null;
  const stopWatch = new StopWatch(drill.stopConditions);
  const metricsPath = join(dir, 'metrics.jsonl');
  generator?.onSecond((s) => {
    // Appended as each second completes, like the journal, so a crashed run still has its metrics.
    appendFileSync(metricsPath, JSON.stringify(s) + '\n');
    hooks.second?.(s);
    const fired = stopWatch.observe(s);
    if (fired && !run.signal.aborted) {
      const why = `stop condition "${fired.condition.source}" held (last value ${fired.value.toFixed(3)})`;
      record({ type: 'stop-condition', condition: fired.condition.source, value: fired.value });
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
    log: eventLogger(record),
    timeline,
    clock,
    load: generator
      ? {
          window: (ms) => generator.window(ms),
          ledger: generator.ledger,
          serviceUrl: input.serviceUrl ?? undefined,
          recoveredAfter: (faultMs) =>
            findRecovery(generator.log, { faultMs, slo: drill.policy.slo, windowMs: drill.policy.recoveryWindowMs, nowMs: clock.now() })
              .recoveredMs,
        }
      : undefined,
    results,
    progress: input.hooks.progress,
    onRpo: (m) => {
      facts.rpo = m;
      record({ type: 'rpo.measured', ...m });
    },
  });

  return {
    input,
    drill,
    entry,
    scenario: input.scenario,
    clock,
    timeline,
    journal,
    run,
    load: generator && config ? { generator, config } : null,
    ctx,
    facts,
    results,
    started: [],
    selections: new Map(),
    record,
    tell: (e) => hooks.event(e),
    probe: async (p) => {
      let r: ProbeResult;
      try {
        r = await p.check(ctx);
      } catch (e) {
        if (run.signal.aborted) throw run.signal.reason;
        r = { ok: false, detail: `probe failed: ${errText(e)}` };
      }
      const f = {
        name: p.name,
        ok: r.ok,
        detail: r.detail,
        ...(r.severity ? { severity: r.severity } : {}),
        ...(r.final ? { final: true } : {}),
        // The recovery check's own dating of its evidence: observe counts recovery from it, not from this poll.
        ...(r.heldSinceMs !== undefined ? { heldSinceMs: r.heldSinceMs } : {}),
        at: clock.iso(clock.now()),
      };
      record({ type: 'probe', ...f });
      return f;
    },
    release: () => input.signal.removeEventListener('abort', onOuterAbort),
  };
}
