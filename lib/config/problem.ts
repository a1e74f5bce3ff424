import type { ConfigProblem } from './types.ts';

/** `file:line:col: path: message`, as an editor jumps to it. */
export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}
