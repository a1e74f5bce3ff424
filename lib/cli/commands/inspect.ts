import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadDrill, formatProblem } from '../../config/load.ts';
import { loadCatalog } from '../../scenario/catalog.ts';
import { buildPlan } from '../../plan/plan.ts';
import { renderPlan } from '../../plan/render.ts';
import { ExitCode } from '../../errors.ts';
import { capabilitiesOf } from '../../targets/index.ts';
import { validatedDrill } from './load-drill.ts';

export async function listCommand(drillsDir: string): Promise<number> {
  const catalog = await loadCatalog();
  console.log('scenarios:');
  for (const s of catalog.values()) console.log(`  ${s.name.padEnd(16)} ${s.description}`);
  console.log(`drills (${drillsDir}/):`);
  let files: string[] = [];
  try {
    files = (await readdir(drillsDir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch {
    console.log(`  (no folder ${drillsDir})`);
  }
  for (const f of files) {
    const r = await loadDrill(join(drillsDir, f), catalog, { capabilitiesOf });
    if ('drill' in r) {
      const d = r.drill;
      console.log(
        `  ${join(drillsDir, f).padEnd(32)} ${d.kind.padEnd(9)} target ${d.target.kind.padEnd(5)} ${d.scenarios.map((e) => e.name).join(', ')}`,
      );
    } else {
      console.log(`  ${join(drillsDir, f).padEnd(32)} INVALID (${r.problems.length} problems; drill validate ${join(drillsDir, f)})`);
    }
  }
  return ExitCode.ok;
}

export async function validateCommand(files: string[]): Promise<number> {
  const catalog = await loadCatalog();
  let bad = 0;
  let problems = 0;
  for (const file of files) {
    const r = await loadDrill(file, catalog, { capabilitiesOf });
    if ('problems' in r) {
      bad++;
      problems += r.problems.length;
      for (const p of r.problems) process.stdout.write(formatProblem(p) + '\n');
    } else {
      process.stdout.write(
        `${file}: ok (${r.drill.scenarios.length} scenario${r.drill.scenarios.length === 1 ? '' : 's'}: ${r.drill.scenarios.map((e) => e.name).join(', ')})\n`,
      );
      for (const w of r.drill.warnings ?? []) process.stdout.write(`warning: ${formatProblem(w)}\n`);
    }
  }
  if (bad > 0) {
    process.stderr.write(
      `${problems} problem${problems === 1 ? '' : 's'} in ${bad} of ${files.length} file${files.length === 1 ? '' : 's'}\n`,
    );
    return ExitCode.invalidInput;
  }
  return ExitCode.ok;
}

export async function planCommand(file: string, only: string[], json: boolean): Promise<number> {
  const { drill, catalog } = await validatedDrill(file, only);
  const plan = await buildPlan(drill, catalog, only);
  process.stdout.write(json ? JSON.stringify(plan, null, 2) + '\n' : renderPlan(plan));
  // An impossible selection is invalid input: a run would stop before touching anything.
  return plan.problems.length > 0 ? ExitCode.invalidInput : ExitCode.ok;
}
