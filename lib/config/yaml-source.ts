import { LineCounter, parseDocument, isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node, type Pair } from 'yaml';

/**
 * A parsed drill file that remembers where every node came from, so a problem found in the plain
 * JavaScript value (by zod or a scenario) can be pointed at the line and column that caused it.
 */
export type PathKey = string | number;
export interface Position {
  line: number;
  col: number;
}
export interface SourceProblem extends Position {
  path: PathKey[];
  message: string;
}

// The parser's wording is exact but terse; these say how to fix the usual cause.
const SYNTAX_HINTS: Partial<Record<string, string>> = {
  BLOCK_AS_IMPLICIT_KEY: '; a plain value cannot contain ": " (quote the value)',
  TAB_AS_INDENT: '; indent with spaces',
};
// The parser's own wording for these talks about its API rather than the file.
const SYNTAX_MESSAGES: Partial<Record<string, string>> = {
  MULTIPLE_DOCS: 'expected one document, found a "---" starting another; a drill file holds one drill',
};

export class YamlSource {
  readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  constructor(text: string) {
    this.lines = new LineCounter();
    // Duplicate keys are found by walking the tree below, which can also say where the first one was.
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: false });
  }

  /** The plain value zod validates. */
  value(): unknown {
    return this.doc.toJS({ maxAliasCount: 100 });
  }

  position(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line, col };
  }

  /** YAML syntax errors: the tree is not what the author wrote, so nothing else is worth checking. */
  syntaxProblems(): SourceProblem[] {
    return this.doc.errors.map((e) => ({
      ...this.position(e.pos[0]),
      path: this.pathAt(e.pos[0]),
      message: `YAML syntax error: ${SYNTAX_MESSAGES[e.code] ?? e.message + (SYNTAX_HINTS[e.code] ?? '')}`,
    }));
  }

  duplicateKeys(): SourceProblem[] {
    const out: SourceProblem[] = [];
    const walk = (node: unknown, path: PathKey[]): void => {
      if (isMap(node)) {
        const first = new Map<string, Pair>();
        for (const pair of node.items) {
          const key = keyOf(pair);
          if (key === undefined) continue;
          const earlier = first.get(key);
          if (earlier) {
            const at = this.keyPosition(pair);
            const was = this.keyPosition(earlier);
            out.push({
              ...at,
              path: [...path, key],
              message: `duplicate key ${JSON.stringify(key)} (first on line ${was.line}); each key may appear once in a mapping`,
            });
          } else {
            first.set(key, pair);
          }
          walk(pair.value, [...path, key]);
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => walk(item, [...path, i]));
      }
    };
    walk(this.doc.contents, []);
    return out;
  }

  /**
   * Where the value at `path` starts; for a path that does not exist (a missing key), the nearest
   * enclosing node that does: the mapping the key is missing from.
   */
  valuePosition(path: readonly PathKey[]): Position {
    let node: unknown = this.doc.contents;
    let best = this.nodeStart(node) ?? { line: 1, col: 1 };
    for (const key of path) {
      const pair = this.pairOf(node, key);
      if (pair) {
        node = this.resolve(pair.value);
        // An empty value (`load:`) has no text of its own: point at its key instead.
        best = this.nodeStart(pair.value, true) ?? this.keyPosition(pair);
        continue;
      }
      if (isSeq(node) && typeof key === 'number' && node.items[key] !== undefined) {
        const item = node.items[key];
        node = this.resolve(item);
        best = this.nodeStart(item) ?? best;
        continue;
      }
      break;
    }
    return best;
  }

  /** Where the key `key` of the mapping at `path` is written (for unknown keys), else where the mapping is. */
  keyPositionAt(path: readonly PathKey[], key: string): Position {
    const pair = this.pairOf(this.nodeAt(path), key);
    return pair ? this.keyPosition(pair) : this.valuePosition(path);
  }

  /** Line of the node at `path` (a scenario entry), for ScenarioEntry.line. */
  lineOf(path: readonly PathKey[]): number {
    return this.valuePosition(path).line;
  }

  private nodeAt(path: readonly PathKey[]): unknown {
    let node: unknown = this.doc.contents;
    for (const key of path) {
      const pair = this.pairOf(node, key);
      if (pair) node = this.resolve(pair.value);
      else if (isSeq(node) && typeof key === 'number') node = this.resolve(node.items[key]);
      else return undefined;
    }
    return node;
  }

  /** The last pair with this key: toJS keeps the last of duplicates, so positions must agree with it. */
  private pairOf(node: unknown, key: PathKey): Pair | undefined {
    if (!isMap(node)) return undefined;
    let found: Pair | undefined;
    for (const pair of node.items) if (keyOf(pair) === String(key)) found = pair;
    return found;
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  private nodeStart(node: unknown, skipEmpty = false): Position | undefined {
    const range = (node as Node | null | undefined)?.range;
    if (!range) return undefined;
    if (skipEmpty && isScalar(node) && node.value === null && range[0] === range[1]) return undefined;
    return this.position(range[0]);
  }

  private keyPosition(pair: Pair): Position {
    return this.nodeStart(pair.key) ?? { line: 1, col: 1 };
  }

  /** The deepest path whose node spans `offset`, so a syntax error names the part of the drill it is in. */
  private pathAt(offset: number): PathKey[] {
    const path: PathKey[] = [];
    let node: unknown = this.doc.contents;
    for (;;) {
      let next: { key: PathKey; node: unknown } | undefined;
      if (isMap(node)) {
        for (const pair of node.items) {
          const key = keyOf(pair);
          // Only an error inside the value belongs to the key; one in the key itself belongs to the mapping.
          const keyEnd = (pair.key as Node | null)?.range?.[1];
          const end = (pair.value as Node | null)?.range?.[2];
          if (key !== undefined && keyEnd !== undefined && end !== undefined && offset >= keyEnd && offset < end)
            next = { key, node: pair.value };
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => {
          const r = (item as Node | null)?.range;
          if (r && offset >= r[0] && offset < r[2]) next = { key: i, node: item };
        });
      }
      if (!next) return path;
      path.push(next.key);
      node = next.node;
    }
  }
}

function keyOf(pair: unknown): string | undefined {
  if (!isPair(pair)) return undefined;
  const k = pair.key;
  if (isScalar(k)) return String(k.value);
  return undefined;
}

/** `scenarios[0].params.count`; keys that are not plain words are quoted so the path stays unambiguous. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$-]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}
