/**
 * The halt switch on the wire-level Kubernetes server: the ConfigMap `drill-halt` in the target namespace.
 * Set before a run, nothing starts (exit 2, naming who set it and why); set during one, the run aborts and
 * rolls back within 2 s of the ConfigMap existing (exit 4); unreadable (RBAC 403), the drill refuses to start.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployment, startKubeApi, type KubeApi, type KubeApiOptions } from '../support/kube-api/index.ts';
import { drillCli, readEvents, runFolders, waitFor } from '../support/cli.ts';
import { kubeDrillHead, workloadBeside } from '../support/kube-drill.ts';

async function setup(t: TestContext, options: KubeApiOptions = {}, token?: string) {
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders' } })],
    // Replacements take 4 s: the run is still observing when the switch is set.
    replaceDelayMs: 4000,
    readyDelayMs: 300,
    shutdownMs: 100,
    ...options,
  });
  t.after(() => api.stop());
  const { svc, dir, kubeconfig } = await workloadBeside(t, api, 'halt-kube', { namespace: 'prod', ...(token ? { token } : {}) });
  const file = join(dir, 'halt.yaml');
  writeFileSync(
    file,
    [
      ...kubeDrillHead({ name: 'halt', kubeconfig, url: svc.url }),
      '  namespaces: [prod]',
      '  blastRadius: 1',
      "policy: { recoveryWindow: 2s, slo: { latency: ['p(95)<3s'] } }",
      'load: { rate: 20, baseline: 2s, cooldown: 1s, timeout: 5s }',
      'scenarios:',
      '  - scenario: pod-kill',
      '    params: { selector: app=orders }',
      '    timeout: 60s',
      '',
    ].join('\n'),
  );
  return { api, dir, file, results: join(dir, 'results'), token };
}

/** Creates the halt ConfigMap through the API, as kubectl would; resolves once the server has stored it. */
async function setHalt(api: KubeApi, reason: string, token?: string): Promise<number> {
  const res = await fetch(`${api.url}/api/v1/namespaces/prod/configmaps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'drill-halt' }, data: { reason, by: 'oncall-alice' } }),
  });
  assert.equal(res.status, 201, await res.text());
  return Date.now();
}

const deletes = (api: KubeApi) => api.state.requests.filter((r) => r.method === 'DELETE' && r.resource === 'pods').length;

test('halt ConfigMap set before the run: the drill does not start (exit 2), names who set it and why, deletes nothing', {
  timeout: 60_000,
}, async (t) => {
  const s = await setup(t);
  await setHalt(s.api, 'payments incident INC-42');
  const r = await drillCli(['run', s.file, '--results', s.results, '--yes']).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /halt switch set: prod\/drill-halt by oncall-alice at \S+: payments incident INC-42/);
  assert.equal(deletes(s.api), 0);
  assert.deepEqual(runFolders(s.results), [], 'no run folder: nothing started');
});

test('halt ConfigMap set during the run: aborted within 2 s, rollbacks ran, exit 4', { timeout: 120_000 }, async (t) => {
  const s = await setup(t);
  const run = drillCli(['run', s.file, '--results', s.results, '--yes']);
  t.after(() => run.child.kill('SIGKILL'));
  const runDir = await waitFor(
    'the pod kill to be done',
    () => runFolders(s.results).find((d) => existsSync(join(d, 'events.jsonl')) && readEvents(d).some((e) => e.type === 'action.done')),
    60_000,
  );
  const setAt = await setHalt(s.api, 'stop: customer demo');
  const r = await run.done;
  assert.equal(r.code, 4, r.stderr + r.stdout);
  const events = readEvents(runDir);
  const abort = events.find((e) => e.type === 'run.abort')!;
  assert.ok(abort, 'the run journaled its abort');
  assert.match(String(abort.reason), /halt switch set: prod\/drill-halt by oncall-alice .*stop: customer demo/);
  const latencyMs = Date.parse(String(abort.at)) - setAt;
  t.diagnostic(`halt to abort: ${latencyMs} ms`);
  assert.ok(latencyMs <= 2000, `aborted ${latencyMs} ms after the halt was set`);
  const rollback = events.find((e) => e.type === 'rollback.done' || e.type === 'rollback.failed');
  assert.equal(rollback?.type, 'rollback.done', JSON.stringify(rollback));
  const rec = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'aborted');
  assert.equal(rec.actions[0].rollback.status, 'done');
  assert.equal(s.api.state.list('pods', 'prod').length, 3, 'the rollback brought the Deployment back to 3 pods');
});

test('halt ConfigMap that cannot be read (RBAC 403): the drill refuses to start, saying so', { timeout: 60_000 }, async (t) => {
  const rules = [
    { verbs: ['get', 'list', 'watch'], apiGroups: ['', 'apps'], resources: ['pods', 'deployments', 'replicasets', 'statefulsets'] },
    { verbs: ['delete'], apiGroups: [''], resources: ['pods'] },
  ];
  const s = await setup(t, { tokens: { 'drill-token': { user: 'system:serviceaccount:drill:drill', rules } } }, 'drill-token');
  const r = await drillCli(['run', s.file, '--results', s.results, '--yes']).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /cannot read the halt switch, so the drill does not start/);
  assert.match(r.stderr, /configmaps/);
  assert.match(r.stderr, /403|forbidden/i);
  assert.equal(deletes(s.api), 0);
  assert.deepEqual(runFolders(s.results), []);
});

test("the README's minimal Role (get on configmaps/drill-halt only) is enough: the switch is read and the drill runs", {
  timeout: 120_000,
}, async (t) => {
  const rules = [
    { verbs: ['get', 'list', 'watch', 'delete'], apiGroups: [''], resources: ['pods'] },
    { verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['drill-halt'] },
    { verbs: ['get', 'list', 'watch'], apiGroups: ['apps'], resources: ['deployments', 'replicasets', 'statefulsets'] },
  ];
  const s = await setup(t, { tokens: { 'drill-token': { user: 'system:serviceaccount:drill:drill', rules } } }, 'drill-token');
  const r = await drillCli(['run', s.file, '--results', s.results, '--yes']).done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const haltReads = s.api.state.requests.filter((q) => q.resource === 'configmaps' && q.name === 'drill-halt');
  assert.ok(haltReads.length >= 2, `${haltReads.length} reads of the switch`);
  assert.ok(
    haltReads.every((q) => q.verb === 'get' && q.status === 404),
    'read-only, and absent means off',
  );
});
