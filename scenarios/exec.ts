import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { durationParam } from '../lib/scenario/params.ts';
import { parseDuration } from '../lib/config/duration.ts';
import { scenario, type ScenarioContext } from '../lib/scenario/define.ts';
import type { ExecResult } from '../lib/adapters/types.ts';

/** How long the steady-state command may take to pass once the rollback command has run. */
const STEADY_AFTER_ROLLBACK_MS = 30_000;

const duration = (fallback: string) => durationParam('500ms, 30s, 15m or 1h').default(fallback);

const params = z
  .object({
    /** The runbook command that breaks something (bash). Its output lands in events.jsonl. */
    fault: z.string().min(1),
    /** The command that undoes the fault; leave it out only for a fault that heals itself (a bounded pause). */
    rollback: z.string().min(1).optional(),
    /** Exits 0 once the system is whole again; polled during the observe phase. */
    recoveredWhen: z.string().min(1).optional(),
    /** Exits 0 when the system is healthy; checked before injecting (steady state). */
    steadyState: z.string().min(1).optional(),
    /** Exits 0 when data and service are verified after recovery. */
    verify: z.string().min(1).optional(),
    /** Longest any one of these commands may run. */
    commandTimeout: duration('5m'),
  })
  .strict();
type Params = z.output<typeof params>;

const { probe, action, define } = scenario({ params, requires: ['exec', 'load'] });

async function sh(ctx: ScenarioContext<Params>, command: string): Promise<ExecResult> {
  const r = await ctx.adapters.exec.run(command, { timeoutMs: parseDuration(ctx.params.commandTimeout), signal: ctx.signal });
  ctx.log.info(`$ ${command} -> exit ${r.exitCode ?? r.signal}`, {
    stdout: r.stdout,
    stderr: r.stderr,
    durationMs: Math.round(r.durationMs),
  });
  return r;
}

function verdictOf(r: ExecResult): { ok: boolean; detail: string } {
  const out = (r.stdout.trim() || r.stderr.trim()).split('\n').slice(-1)[0] ?? '';
  return { ok: r.exitCode === 0, detail: `exit ${r.exitCode ?? r.signal}${out ? `: ${out.slice(0, 200)}` : ''}` };
}

const optionalCheck = (name: string, pick: (p: Params) => string | undefined) =>
  probe(name, async (ctx) => {
    const command = pick(ctx.params);
    return command ? verdictOf(await sh(ctx, command)) : { ok: true, detail: 'no command given' };
  });

export default define({
  name: 'exec',
  description: 'Run a runbook command as the fault, with optional commands for steady state, recovery, verification and rollback.',
  steadyState: [optionalCheck('steady-state command', (p) => p.steadyState)],
  actions: [
    action<string, ExecResult>({
      name: 'run fault command',
      description: 'run the fault command with bash; a non-zero exit fails the injection',
      async select(ctx) {
        return ctx.params.fault;
      },
      describeTargets: (command) => [`$ ${command}`],
      async run(ctx, command) {
        const r = await sh(ctx, command);
        if (r.exitCode !== 0) {
          throw new Error(`fault command exited ${r.exitCode ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-500)}`);
        }
        return r;
      },
      // Decided per drill: a fault command either names its undo or heals itself. The condition is the drill's own
      // steady-state command where it has one: the rollback is done when the system is healthy again, which it
      // may already be (the fault never ran, or healed), and a rollback command that is not idempotent then never
      // runs twice. Without one nothing can check the system read-only, so the rollback command's exit status decides.
      rollback: {
        description: (p) => (p.rollback ? `$ ${p.rollback}` : 'none: the drill gives no rollback command, so the fault must heal itself'),
        restores: (p) =>
          p.steadyState
            ? `the steady-state command exits 0 ($ ${p.steadyState})`
            : p.rollback
              ? 'the rollback command exits 0 (no steady-state command to check the system with)'
              : 'nothing to restore: the fault heals itself',
        byHand: (p) =>
          p.rollback
            ? `run the rollback command by hand ($ ${p.rollback})${p.steadyState ? ` until the steady-state command passes ($ ${p.steadyState})` : ''}`
            : `undo the fault by hand${p.steadyState ? ` until the steady-state command passes ($ ${p.steadyState})` : ''}, and give the drill a rollback command`,
        timeout: '5m',
        async holds(ctx) {
          if (ctx.params.steadyState) return verdictOf(await sh(ctx, ctx.params.steadyState));
          if (!ctx.params.rollback) return { ok: true, detail: 'no rollback command: the fault heals itself' };
          return { ok: null, detail: 'no steady-state command to check with: the rollback command decides' };
        },
        async converge(ctx) {
          if (!ctx.params.rollback) throw new Error('the drill gives no rollback command to run');
          const r = await sh(ctx, ctx.params.rollback);
          if (r.exitCode !== 0)
            throw new Error(`rollback command exited ${r.exitCode ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-500)}`);
          const ran = `$ ${ctx.params.rollback} -> ${verdictOf(r).detail}`;
          if (!ctx.params.steadyState) return ran;
          // A system undone by its runbook step may take a moment to be healthy (a service restarting): up to 30 s.
          const t0 = performance.now();
          for (;;) {
            if (verdictOf(await sh(ctx, ctx.params.steadyState)).ok || performance.now() - t0 > STEADY_AFTER_ROLLBACK_MS) return ran;
            await sleep(1000, undefined, { signal: ctx.signal });
          }
        },
      },
    }),
  ],
  recovery: {
    description: 'the recoveredWhen command exits 0 (if given) and the SLOs hold again',
    pollMs: 500,
    until: optionalCheck('recoveredWhen command', (p) => p.recoveredWhen),
  },
  verify: [optionalCheck('verify command', (p) => p.verify)],
});
