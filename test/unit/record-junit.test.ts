import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outcome } from '../../lib/measure/request-log.ts';
import { buildRunRecord, type RunRecord } from '../../lib/record/run-record.ts';
import { renderJUnit } from '../../lib/record/junit.ts';
import { sampleLog, sampleMark, sampleRunInput } from '../support/record-sample.ts';

/**
 * A tiny XML reader, strict where JUnit consumers are: balanced tags, quoted attributes, no raw `<`
 * or stray `&` in text or attribute values, only the five predefined entities. Throws on anything else.
 */
interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: number): string {
  if (raw.includes('<')) throw new Error(`raw < at ${where}`);
  return raw.replace(/&([^;]*);|&/g, (m, name: string | undefined) => {
    if (name === undefined || !(name in ENTITIES)) throw new Error(`bad entity ${JSON.stringify(m)} at ${where}`);
    return ENTITIES[name]!;
  });
}

function parseXml(xml: string): XmlNode {
  let i = 0;
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  const nameAt = () => {
    const m = /^[A-Za-z_][\w.-]*/.exec(xml.slice(i));
    if (!m) throw new Error(`expected a name at ${i}`);
    i += m[0].length;
    return m[0];
  };
  while (i < xml.length) {
    const top = stack[stack.length - 1]!;
    if (xml[i] !== '<') {
      const end = xml.indexOf('<', i);
      const raw = xml.slice(i, end === -1 ? xml.length : end);
      if (top === root && raw.trim() !== '') throw new Error(`text outside the root at ${i}`);
      top.text += decode(raw, i);
      i += raw.length;
      continue;
    }
    if (xml[i + 1] === '/') {
      i += 2;
      const name = nameAt();
      if (xml[i] !== '>') throw new Error(`expected > at ${i}`);
      i++;
      if (stack.length < 2 || top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    i++;
    const node: XmlNode = { name: nameAt(), attrs: {}, children: [], text: '' };
    for (;;) {
      const ws = /^\s*/.exec(xml.slice(i))![0].length;
      i += ws;
      if (xml.startsWith('/>', i)) {
        i += 2;
        top.children.push(node);
        break;
      }
      if (xml[i] === '>') {
        i++;
        top.children.push(node);
        stack.push(node);
        break;
      }
      if (ws === 0) throw new Error(`expected whitespace before an attribute at ${i}`);
      const attr = nameAt();
      if (xml[i] !== '=' || xml[i + 1] !== '"') throw new Error(`expected ="..." at ${i}`);
      const end = xml.indexOf('"', i + 2);
      if (end === -1) throw new Error(`unterminated attribute at ${i}`);
      if (attr in node.attrs) throw new Error(`duplicate attribute ${attr}`);
      node.attrs[attr] = decode(xml.slice(i + 2, end), i);
      i = end + 1;
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error('expected exactly one root element');
  return root.children[0]!;
}

function all(node: XmlNode, name: string): XmlNode[] {
  return [...(node.name === name ? [node] : []), ...node.children.flatMap((c) => all(c, name))];
}

function passedRecord(): RunRecord {
  return buildRunRecord(sampleRunInput());
}

function failedRecord(): RunRecord {
  const input = sampleRunInput();
  input.marks = input.marks.filter((m) => m.name !== 'recovered' && m.name !== 'verified');
  input.load = {
    log: sampleLog(200, 40_000, (t) => (t >= 10_000 ? { outcome: Outcome.refused, latencyMs: 1 } : { outcome: Outcome.ok, latencyMs: 20 })),
    startMs: 0,
    endMs: 40_000,
  };
  input.verification = [
    { name: 'orders <readable> & "complete"', ok: false, detail: "2 rows missing ]]> 'really' \u0001", at: input.endedAt },
  ];
  return buildRunRecord(input);
}

function abortedRecord(): RunRecord {
  const input = sampleRunInput();
  input.marks = [sampleMark('load-started', 0), sampleMark('load-stopped', 10_000)];
  input.abort = { kind: 'steady-state', message: 'steady state not met: p(95) 900 ms > 500 ms' };
  input.verification = [];
  input.actions = [];
  input.load = { log: sampleLog(200, 10_000, () => ({ outcome: Outcome.ok, latencyMs: 900 })), startMs: 0, endMs: 10_000 };
  return buildRunRecord(input);
}

test('well-formed: one testsuite per run, totals that add up', () => {
  const records = [passedRecord(), failedRecord(), abortedRecord()];
  const xml = renderJUnit(records);
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n'));
  const root = parseXml(xml);
  assert.equal(root.name, 'testsuites');
  const suites = all(root, 'testsuite');
  assert.deepEqual(
    suites.map((s) => s.attrs.id),
    records.map((r) => r.id),
  );
  for (const s of suites) {
    const cases = all(s, 'testcase');
    assert.equal(Number(s.attrs.tests), cases.length);
    assert.equal(Number(s.attrs.failures), all(s, 'failure').length);
    assert.equal(Number(s.attrs.errors), all(s, 'error').length);
    assert.equal(Number(s.attrs.skipped), all(s, 'skipped').length);
  }
  assert.equal(Number(root.attrs.tests), all(root, 'testcase').length);
  assert.equal(Number(root.attrs.failures), all(root, 'failure').length);
});

test('one testcase per objective: RTO, RPO, each SLO, verification (plus rollback when something was rolled back)', () => {
  const r = passedRecord();
  const suite = all(parseXml(renderJUnit([r])), 'testsuite')[0]!;
  const names = all(suite, 'testcase').map((c) => c.attrs.name);
  assert.deepEqual(names, ['RTO', 'RPO', ...r.objectives.slo.map((s) => `SLO ${s.phase}: ${s.name}`), 'verification', 'rollback']);
  assert.equal(all(suite, 'failure').length, 0);
  // Unmeasured objectives are skipped, with the record's reason.
  const rpo = all(suite, 'testcase').find((c) => c.attrs.name === 'RPO')!;
  assert.deepEqual(
    rpo.children.map((c) => [c.name, c.attrs.message]),
    [['skipped', 'scenario writes no data; RPO not measured']],
  );
});

test('a missed objective is a failure saying measured vs target; special characters survive escaping', () => {
  const suite = all(parseXml(renderJUnit([failedRecord()])), 'testsuite')[0]!;
  const failures = all(suite, 'failure').map((f) => f.attrs.message);
  assert.ok(failures.includes('measured none (not recovered) vs target 1 h'), failures.join('\n'));
  assert.ok(failures.includes('measured 0 of 1 probes passed vs target all probes pass'));
  const verification = all(suite, 'testcase').find((c) => c.attrs.name === 'verification')!;
  // The control character cannot be carried by XML 1.0 and is replaced; the rest is intact.
  assert.equal(verification.children[0]!.text, 'orders <readable> & "complete": 2 rows missing ]]> \'really\' \uFFFD');
});

test('an aborted run: objectives skipped with reasons, and a `run` case in error', () => {
  const suite = all(parseXml(renderJUnit([abortedRecord()])), 'testsuite')[0]!;
  const rto = all(suite, 'testcase').find((c) => c.attrs.name === 'RTO')!;
  assert.match(rto.children[0]!.attrs.message!, /steady state not met/);
  const run = all(suite, 'testcase').find((c) => c.attrs.name === 'run')!;
  assert.equal(run.children[0]!.name, 'error');
  assert.equal(run.children[0]!.attrs.message, 'aborted (exit 3): steady state not met: p(95) 900 ms > 500 ms');
  assert.equal(suite.children[0]!.name, 'properties');
  const props = Object.fromEntries(suite.children[0]!.children.map((p) => [p.attrs.name, p.attrs.value]));
  assert.deepEqual([props.status, props.exitCode], ['aborted', '3']);
});

test('the checker itself rejects what a JUnit consumer would', () => {
  assert.throws(() => parseXml('<a><b></a></b>'), /closes/);
  assert.throws(() => parseXml('<a x="1 & 2"/>'), /bad entity/);
  assert.throws(() => parseXml('<a>1 < 2</a>'), /expected a name/);
  assert.throws(() => parseXml('<a x=1/>'), /expected ="/);
  assert.equal(parseXml('<a x="&lt;&amp;&quot;">&apos;</a>').attrs.x, '<&"');
});
