import type { CapabilitiesOf, ScenarioCatalog, Target } from './types.ts';
import { TargetSchema } from './schema.ts';
import { normaliseTarget } from './normalise.ts';
import { errorMap, withChoices } from './messages.ts';
import { issuesToProblems } from './issues.ts';
import type { PathKey, SourceProblem, YamlSource } from './yaml-source.ts';

/**
 * Checks that need the scenario catalogue: names, each scenario's own parameter schema, what the
 * target can do, and the scenario's `validate` hook. They run on the raw value even when other parts
 * of the drill are wrong, so one `drill validate` lists every problem; each check runs only when
 * the parts it reads are themselves valid, so one mistake is not reported twice.
 */
export interface ScenarioChecks {
  problems: SourceProblem[];
  /** Validated, defaulted params by entry index (entries whose params passed). */
  params: Map<number, Record<string, unknown>>;
}

// One of each target kind, to say which kinds would provide a missing capability.
const SAMPLE_TARGETS: Target[] = [
  { kind: 'lab', replicas: 1 },
  { kind: 'http', url: 'http://127.0.0.1' },
  { kind: 'blob', container: 'backups', prefix: '' },
  { kind: 'kubernetes', inCluster: true, namespace: 'default', namespaces: ['default'], blastRadius: 1, url: 'http://127.0.0.1' },
];

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function checkScenarios(
  value: unknown,
  source: YamlSource,
  catalog: ScenarioCatalog,
  capabilitiesOf: CapabilitiesOf,
): ScenarioChecks {
  const out: ScenarioChecks = { problems: [], params: new Map() };
  if (!isRecord(value) || !Array.isArray(value.scenarios)) return out;
  const parsedTarget = TargetSchema.safeParse(value.target);
  const target = parsedTarget.success ? normaliseTarget(parsedTarget.data) : undefined;
  const known = [...catalog.keys()].sort();
  const names = new Map<string, number>();

  value.scenarios.forEach((entry: unknown, i: number) => {
    if (!isRecord(entry)) return;
    const at = (...rest: PathKey[]): PathKey[] => ['scenarios', i, ...rest];
    const problem = (path: PathKey[], message: string): void => {
      out.problems.push({ ...source.valuePosition(path), path, message });
    };

    const scenario = typeof entry.scenario === 'string' && entry.scenario !== '' ? entry.scenario : undefined;
    const explicitName = typeof entry.name === 'string' ? entry.name : undefined;
    const name = explicitName ?? scenario;
    if (name !== undefined) {
      const first = names.get(name);
      if (first === undefined) names.set(name, i);
      else {
        const how = explicitName === undefined ? ' (taken from scenario:, as the entry has no name:)' : '';
        const where = `scenarios[${first}] on line ${source.lineOf(['scenarios', first])}`;
        problem(
          at(explicitName === undefined ? 'scenario' : 'name'),
          `duplicate scenario name ${JSON.stringify(name)}${how}, already used by ${where}; give each entry its own name`,
        );
      }
    }

    if (scenario === undefined) return;
    const def = catalog.get(scenario);
    if (!def) {
      const head = `unknown scenario ${JSON.stringify(scenario)}`;
      problem(at('scenario'), known.length > 0 ? withChoices(head, scenario, known, 'known') : `${head}; no scenarios are installed`);
      return;
    }

    let params: Record<string, unknown> | undefined;
    const rawParams = entry.params ?? {};
    if (isRecord(rawParams)) {
      const r = def.params.safeParse(rawParams, { error: errorMap, reportInput: true });
      if (r.success) {
        params = isRecord(r.data) ? r.data : {};
        out.params.set(i, params);
      } else {
        out.problems.push(...issuesToProblems(r.error.issues, { source, schema: def.params, value: rawParams, prefix: at('params') }));
      }
    }

    if (!target) return;
    const has = capabilitiesOf(target);
    const lacking = def.requires.filter((c) => !has.includes(c));
    if (lacking.length > 0) {
      problem(at('scenario'), capabilityMessage(def.name, lacking, target, has, capabilitiesOf));
      return;
    }
    if (params && def.validate) {
      // A hook's path is relative to the entry's params; `target...` names the drill's target, as a preflight's does.
      for (const p of def.validate(params, target))
        problem(
          p.path === 'target' || p.path.startsWith('target.') ? parsePath(p.path) : [...at('params'), ...parsePath(p.path)],
          p.message,
        );
    }
  });
  return out;
}

/** What a capability is, where the bare name would not tell the SRE what their target lacks. */
const CAPABILITY_MEANS: Record<string, string> = {
  region:
    'region means a secondary region whose storage holds a copy of the backups, and a global front to switch; no secondary storage is configured on this target (the lab has it with regions: 2)',
};

function capabilityMessage(
  scenario: string,
  lacking: readonly string[],
  target: Target,
  has: readonly string[],
  capabilitiesOf: CapabilitiesOf,
): string {
  const kinds = SAMPLE_TARGETS.filter((t) => lacking.every((c) => capabilitiesOf(t).includes(c))).map((t) => t.kind);
  const where = kinds.length > 0 ? `kind: ${kinds.join(' or ')}` : 'no target kind provides it';
  const why = lacking.map((c) => CAPABILITY_MEANS[c]).filter(Boolean);
  return `scenario ${scenario} needs a target with ${lacking.join(' and ')} (${where}); target kind ${target.kind} has ${has.join(', ')}${why.length ? `: ${why.join('; ')}` : ''}`;
}

/** `count`, `steps[0].command` -> path keys, so a hook's path lands on the node it names. */
export function parsePath(path: string): PathKey[] {
  const keys: PathKey[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) keys.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return keys;
}
