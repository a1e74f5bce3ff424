import type { Drill } from '../../config/types.ts';
import { loadDrill, formatProblem } from '../../config/load.ts';
import { loadCatalog } from '../../scenario/catalog.ts';
import type { ScenarioDefinition } from '../../scenario/define.ts';
import { UserError } from '../../errors.ts';
import { capabilitiesOf } from '../../targets/index.ts';

/** Validates a drill completely before anything else happens; every problem is printed, then exit 2. */
export async function validatedDrill(
  file: string,
  only: string[] = [],
): Promise<{ drill: Drill; catalog: Map<string, ScenarioDefinition> }> {
  const catalog = await loadCatalog();
  const r = await loadDrill(file, catalog, { capabilitiesOf });
  if ('problems' in r) {
    for (const p of r.problems) process.stderr.write(formatProblem(p) + '\n');
    throw new UserError(`${file} is not a valid drill (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} above)`, {
      untouched: 'nothing: no target was contacted',
      next: `fix the file and check it with \`drill validate ${file}\``,
    });
  }
  const unknown = only.filter((n) => !r.drill.scenarios.some((e) => e.name === n));
  if (unknown.length > 0) {
    throw new UserError(`--scenario ${unknown.join(', ')}: no such scenario entry in ${file}`, {
      untouched: 'nothing: no target was contacted',
      next: `choose from: ${r.drill.scenarios.map((e) => e.name).join(', ')}`,
    });
  }
  return { drill: r.drill, catalog };
}
