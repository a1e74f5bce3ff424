// The floor plan (README, "How the code is laid out"), checked: every import points to its own room or a lower floor,
// no cycles, and the SDKs stay in the rooms that own them. The checker is a pure function over (file, imports) so it is
// itself tested on a small made-up tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';

// [room, floor, why it sits there]. A room ending in '/' is a folder; otherwise one file.
const FLOORS: [string, number, string][] = [
  ['lib/errors.ts', 0, 'the error every floor may throw'],
  ['lib/util/', 0, 'tools that know nothing about drills: atomic writes, redaction, PIDs'],
  ['lib/measure/', 1, 'clocks, histograms and the request log: plain numbers'],
  ['lib/load/', 2, 'the load generator fills the request log'],
  ['lib/config/', 3, 'the drill file, which names load and thresholds'],
  ['lib/score/', 4, 'judges measurements against the config'],
  ['lib/backup/', 5, 'pure backup policy, naming and manifest'],
  ['lib/adapters/', 6, 'the only room that talks to Kubernetes, Blob, PostgreSQL and shells'],
  ['lib/lab/', 7, 'the sample system, built on the adapters'],
  ['lib/scenario/', 8, 'the authoring API scenarios are written against'],
  ['lib/targets/', 9, 'one module per target kind, assembling adapters and lab'],
  ['lib/plan/', 10, 'what a drill will do, before it does it'],
  ['lib/record/', 10, 'shapes, redacts and writes what a run did'],
  ['lib/engine/', 11, 'runs scenarios against targets'],
  ['lib/cli/', 12, 'commands a person types'],
  ['scenarios/', 13, 'the drills themselves, on top of everything but engine and cli'],
];
// Package -> the only places that may import it.
const SDKS: [string, string[]][] = [
  ['@kubernetes/client-node', ['lib/adapters/kubernetes/', 'lib/adapters/postgres/failover/cnpg.ts']],
  ['@azure/storage-blob', ['lib/adapters/blob/']],
  ['pg', ['lib/adapters/postgres/', 'lib/lab/']], // the lab's sample service is the system under test
  ['zx', ['lib/adapters/']],
  ['node:child_process', ['lib/adapters/', 'lib/lab/', 'lib/util/']],
];

interface Import {
  spec: string; // a package name, or a path relative to the repository root once resolved
  line: number;
  typeOnly: boolean;
}

function importsOf(file: string, text: string): Import[] {
  const out: Import[] = [];
  const lineAt = (i: number) => text.slice(0, i).split('\n').length;
  const resolve = (s: string) =>
    s.startsWith('.') ? posix.join(posix.dirname(file), s) : s.replace(/^child_process$/, 'node:child_process');
  for (const m of text.matchAll(/^[ \t]*(?:import|export)\b([^;'"]*?)\bfrom\s*['"]([^'"]+)['"]/gm)) {
    const clause = m[1]!.trim();
    const names = /^\{([^}]*)\}$/
      .exec(clause)?.[1]
      ?.split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    const typeOnly = /^type\b/.test(clause) || (names !== undefined && names.length > 0 && names.every((n) => n.startsWith('type ')));
    out.push({ spec: resolve(m[2]!), line: lineAt(m.index), typeOnly });
  }
  for (const m of text.matchAll(/^[ \t]*import\s*['"]([^'"]+)['"]/gm))
    out.push({ spec: resolve(m[1]!), line: lineAt(m.index), typeOnly: false });
  for (const m of text.matchAll(/(typeof\s+)?\bimport\(\s*['"]([^'"]+)['"]\s*\)/g))
    out.push({ spec: resolve(m[2]!), line: lineAt(m.index), typeOnly: !!m[1] });
  return out;
}

const under = (path: string, place: string) => (place.endsWith('/') ? path.startsWith(place) : path === place);
const roomOf = (path: string) => FLOORS.find(([room]) => under(path, room));
const isPackage = (spec: string, pkg: string) => spec === pkg || spec.startsWith(`${pkg}/`);

/** Every way `files` breaks the floor plan, one line each; empty when the plan holds. */
function layeringProblems(files: Map<string, Import[]>): string[] {
  const problems: string[] = [];
  const fileEdges = new Map<string, string[]>();
  const roomEdges = new Map<string, Set<string>>();
  for (const [file, imports] of files) {
    const from = roomOf(file);
    if (!from) {
      problems.push(`${file}: in no room of the floor table`);
      continue;
    }
    for (const { spec, line, typeOnly } of imports) {
      const at = `${file}:${line} imports ${spec}`;
      for (const [pkg, allowed] of SDKS) {
        if (isPackage(spec, pkg) && !allowed.some((p) => under(file, p)))
          problems.push(`${at}: ${pkg} belongs in ${allowed.join(' or ')} only`);
      }
      if (file.startsWith('scenarios/') && /^lib\/(engine|cli)\//.test(spec))
        problems.push(`${at}: a scenario is run by the engine, not part of it`);
      if (file.startsWith('lib/engine/')) {
        const concreteTarget = spec.startsWith('lib/targets/') && spec !== 'lib/targets/index.ts';
        const adapterOrLab =
          spec.startsWith('lib/lab/') || (spec.startsWith('lib/adapters/') && !(typeOnly && spec === 'lib/adapters/types.ts'));
        if (concreteTarget || adapterOrLab) problems.push(`${at}: the engine reaches targets through lib/targets/index.ts only`);
      }
      const to = roomOf(spec);
      if (!to) continue; // a package
      if (!typeOnly) fileEdges.set(file, [...(fileEdges.get(file) ?? []), spec]);
      if (to[0] === from[0]) continue;
      roomEdges.set(from[0], (roomEdges.get(from[0]) ?? new Set()).add(to[0]));
      if (to[1] > from[1]) problems.push(`${at}: floor ${from[1]} -> floor ${to[1]} runs back up`);
      else if (to[1] === from[1] && from[1] !== 0) problems.push(`${at}: ${from[0]} and ${to[0]} share floor ${to[1]} and stay apart`);
    }
  }
  for (const c of cycles(fileEdges)) problems.push(`import cycle between files: ${c.join(' -> ')}`);
  const rooms = new Map([...roomEdges].map(([r, to]) => [r, [...to]]));
  for (const c of cycles(rooms)) problems.push(`import cycle between rooms: ${c.join(' -> ')}`);
  return problems;
}

/** One cycle per back edge of a depth-first walk: enough to name every cycle that needs breaking. */
function cycles(edges: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const walk = (node: string) => {
    path.push(node);
    for (const next of edges.get(node) ?? []) {
      const i = path.indexOf(next);
      if (i >= 0) found.push([...path.slice(i), next]);
      else if (!done.has(next)) walk(next);
    }
    path.pop();
    done.add(node);
  };
  for (const node of [...edges.keys()].sort()) if (!done.has(node)) walk(node);
  return found;
}

function sources(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = `${dir}/${name}`;
      if (statSync(p).isDirectory()) return dir === 'scenarios' ? [] : sources(p);
      return /\.(ts|mjs)$/.test(name) ? [p] : [];
    });
}

test('the checker reports an upward import, a file cycle and an SDK out of its room', () => {
  const files = new Map<string, Import[]>([
    ['lib/measure/a.ts', importsOf('lib/measure/a.ts', "import { b } from './b.ts';\nimport type { C } from '../config/types.ts';\n")],
    ['lib/measure/b.ts', importsOf('lib/measure/b.ts', "export { a } from './a.ts';\nconst pg = await import('pg');\n")],
    ['lib/config/types.ts', importsOf('lib/config/types.ts', "import type { A } from '../measure/a.ts';\n")],
  ]);
  assert.deepEqual(layeringProblems(files), [
    'lib/measure/a.ts:2 imports lib/config/types.ts: floor 1 -> floor 3 runs back up',
    'lib/measure/b.ts:2 imports pg: pg belongs in lib/adapters/postgres/ or lib/lab/ only',
    'import cycle between files: lib/measure/a.ts -> lib/measure/b.ts -> lib/measure/a.ts',
    'import cycle between rooms: lib/config/ -> lib/measure/ -> lib/config/',
  ]);
});

test('lib/ and scenarios/ import only down the floors, without cycles', () => {
  const files = new Map([...sources('lib'), ...sources('scenarios')].map((f) => [f, importsOf(f, readFileSync(f, 'utf8'))]));
  const problems = layeringProblems(files);
  assert.equal(problems.length, 0, `${problems.length} problems with the floor plan:\n${problems.join('\n')}`);
});
