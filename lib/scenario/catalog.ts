import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ScenarioDefinition } from './define.ts';

/** scenarios/ at the top of the repo: the harness ships its scenarios beside its code. */
export const SCENARIO_DIR = resolve(fileURLToPath(new URL('../../scenarios', import.meta.url)));

/**
 * Every scenario module in a folder, by its `name`. A module whose default export is not a scenario
 * is refused loudly: a typo there would otherwise make a drill's scenario silently "unknown".
 */
export async function loadCatalog(dir = SCENARIO_DIR): Promise<Map<string, ScenarioDefinition>> {
  const catalog = new Map<string, ScenarioDefinition>();
  const files = (await readdir(dir)).filter((f) => /\.(ts|mts|js|mjs)$/.test(f) && !f.endsWith('.d.ts')).sort();
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default?: ScenarioDefinition };
    const def = mod.default;
    if (!def || typeof def.name !== 'string' || !Array.isArray(def.actions) || !def.params) {
      throw new Error(`${join(dir, f)}: the default export is not a scenario; export default defineScenario({ ... })`);
    }
    const clash = catalog.get(def.name);
    if (clash) throw new Error(`${join(dir, f)}: scenario name "${def.name}" is already used by another module in ${dir}`);
    catalog.set(def.name, def);
  }
  return catalog;
}
