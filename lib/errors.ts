/**
 * An expected failure, told to a person: what happened, what was left untouched, what to do next.
 * The CLI prints these without a stack trace and exits with `exitCode`.
 */
export class UserError extends Error {
  readonly exitCode: number;
  readonly untouched?: string;
  readonly next?: string;

  constructor(message: string, options: { exitCode?: number; untouched?: string; next?: string } = {}) {
    super(message);
    this.name = 'UserError';
    this.exitCode = options.exitCode ?? 2;
    this.untouched = options.untouched;
    this.next = options.next;
  }
}

export function formatUserError(e: UserError): string {
  const lines = [`drill: ${e.message}`];
  if (e.untouched) lines.push(`  not touched: ${e.untouched}`);
  if (e.next) lines.push(`  next: ${e.next}`);
  return lines.join('\n');
}

/** Exit codes of every command (DESIGN.md). */
export const ExitCode = {
  ok: 0,
  objectiveMissed: 1,
  invalidInput: 2,
  steadyStateNotMet: 3,
  aborted: 4,
  rollbackFailed: 5,
  internal: 70,
} as const;
