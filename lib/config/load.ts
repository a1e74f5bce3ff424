import { readFile } from 'node:fs/promises';
import type { CapabilitiesOf, ConfigProblem, Drill, ScenarioCatalog } from './types.ts';
import { drillFileSchemaFor } from './schema.ts';
import { errorMap } from './messages.ts';
import { issuesToProblems } from './issues.ts';
import { checkScenarios } from './scenarios.ts';
import { normaliseDrill } from './normalise.ts';
import { lagOverRpoWarnings } from './lag-warnings.ts';
import { YamlSource, formatPath, type SourceProblem } from './yaml-source.ts';

export type DrillResult = { drill: Drill } | { problems: ConfigProblem[] };

export interface LoadOptions {
  /** What each target kind provides, to check each scenario's `requires` against the drill's target. */
  capabilitiesOf: CapabilitiesOf;
}

/** Reads and validates a drill file. Never throws for a bad or missing file: that is a problem like any other. */
export async function loadDrill(file: string, catalog: ScenarioCatalog, options: LoadOptions): Promise<DrillResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { problems: [{ file, line: 1, col: 1, path: '', message: readFailure(e) }] };
  }
  return validateDrillText(file, text, catalog, options);
}

function readFailure(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'cannot read the drill file: no such file';
  if (code === 'EISDIR') return 'cannot read the drill file: it is a directory';
  if (code === 'EACCES') return 'cannot read the drill file: permission denied';
  return `cannot read the drill file: ${(e as Error).message}`;
}

/**
 * Validates drill text completely and reports every problem at once, sorted by position: a drill
 * is fixed in one edit, not one error per run. Pure, for tests and editors.
 */
export function validateDrillText(file: string, text: string, catalog: ScenarioCatalog, options: LoadOptions): DrillResult {
  const source = new YamlSource(text);
  const syntax = source.syntaxProblems();
  // After a syntax error the tree is a guess; schema messages about it would mislead.
  if (syntax.length > 0) return { problems: finish(file, [...syntax, ...source.duplicateKeys()]) };

  const found: SourceProblem[] = source.duplicateKeys();
  let value: unknown;
  try {
    value = source.value();
  } catch (e) {
    // toJS refuses alias bombs and the like; nothing below can run without a value.
    return { problems: finish(file, [...found, { line: 1, col: 1, path: [], message: `cannot read the YAML: ${(e as Error).message}` }]) };
  }
  const schema = drillFileSchemaFor(value);
  const parsed = schema.safeParse(value, { error: errorMap, reportInput: true });
  if (!parsed.success) found.push(...issuesToProblems(parsed.error.issues, { source, schema, value }));
  const scenarios = checkScenarios(value, source, catalog, options.capabilitiesOf);
  found.push(...scenarios.problems);

  if (!parsed.success || found.length > 0) return { problems: finish(file, found) };
  const drill = normaliseDrill(file, parsed.data, {
    params: scenarios.params,
    catalog,
    lineOf: (i) => source.lineOf(['scenarios', i]),
  });
  const warnings = lagOverRpoWarnings(drill, (path) => source.valuePosition(path));
  return { drill: warnings.length > 0 ? { ...drill, warnings } : drill };
}

function finish(file: string, found: SourceProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const p of found) {
    const problem = { file, line: p.line, col: p.col, path: formatPath(p.path), message: p.message };
    const key = formatProblem(problem);
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** `file:line:col: path: message`; a problem with no path (the file itself, a syntax error at the top) drops that part. */
import { formatProblem } from './problem.ts';
export { formatProblem };
