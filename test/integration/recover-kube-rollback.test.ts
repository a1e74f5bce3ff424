/**
 * `drill recover` for the rollback scenario on the wire-level Kubernetes API, after the harness was SIGKILLed at a
 * journal line (DRILL_CRASH_AFTER_EVENT): right after "roll back deployment" was journaled but never carried out,
 * the Deployment is on the revision the drill found and recover changes nothing; right after it was carried out
 * (rolled back to 1.0.0, never rolled forward), recover rolls forward to the template the drill found. Either
 * way a second recover does nothing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../lib/adapters/kubernetes/index.ts';
import { pendingRollbacks, readJournal } from '../../lib/engine/journal.ts';
import { deployment, startKubeApi, type KubeApi } from '../support/kube-api/index.ts';
import { drillCli, readEvents, runFolders } from '../support/cli.ts';
import { kubeDrillHead, workloadBeside } from '../support/kube-drill.ts';

const image = (api: KubeApi) => api.state.get('deployments', 'prod', 'orders')!.spec.template.spec.containers[0].image as string;

async function deploy(api: KubeApi, tag: string): Promise<void> {
  const apps = kubeConfigFor({ url: api.url }).makeApiClient(AppsV1Api);
  const d = await apps.readNamespacedDeployment({ name: 'orders', namespace: 'prod' });
  d.spec!.template.spec!.containers[0]!.image = `registry.example/orders:${tag}`;
  await apps.replaceNamespacedDeployment({ name: 'orders', namespace: 'prod', body: d });
  await api.state.waitFor(() => {
    const x = api.state.get('deployments', 'prod', 'orders')!;
    return x.status?.observedGeneration === x.metadata.generation && x.status?.updatedReplicas === 3 && x.status?.availableReplicas === 3;
  }, `orders rolled out on ${tag}`);
}

/** orders on 2.0.0 (revision 2, after 1.0.0), a service in front of its pods, and the rollback drill aimed at it. */
async function setup(t: TestContext) {
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders' } })],
    replaceDelayMs: 100,
    readyDelayMs: 250,
    shutdownMs: 100,
  });
  t.after(() => api.stop());
  await deploy(api, '2.0.0');
  const { svc, dir, kubeconfig } = await workloadBeside(t, api, 'recover-kube-rollback');
  const file = join(dir, 'rollback.yaml');
  writeFileSync(
    file,
    [
      ...kubeDrillHead({ name: 'recover-rollback', kubeconfig, url: svc.url, context: false }),
      '  namespaces: [prod]',
      "policy: { recoveryWindow: 2s, slo: { latency: ['p(95)<3s'] } }",
      'load: { rate: 25, baseline: 2s, cooldown: 1s, timeout: 5s, requests: [{ method: GET, path: /version }] }',
      'scenarios:',
      '  - scenario: rollback',
      '    params: { deployment: orders }',
      '    timeout: 60s',
      '',
    ].join('\n'),
  );
  return { api, dir, file, results: join(dir, 'results') };
}

/**
 * The journal of this drill: run.start, the two steady-state probes, then "roll back deployment": intent (line 4),
 * the rollback's and the rollout's log lines, done (line 7).
 */
const ROLLBACK_INTENT = 4;
const ROLLBACK_DONE = 7;

async function crashAfter(s: Awaited<ReturnType<typeof setup>>, n: number, type: string): Promise<string> {
  const r = await drillCli(['run', s.file, '--results', s.results, '--yes'], { DRILL_CRASH_AFTER_EVENT: String(n) }).done;
  assert.equal(r.signal, 'SIGKILL', `the harness killed itself after line ${n}: ${r.stdout}${r.stderr}`);
  const [runDir] = runFolders(s.results);
  assert.ok(runDir);
  const events = readEvents(runDir);
  assert.equal(events.length, n);
  assert.deepEqual([events.at(-1)!.type, events.at(-1)!.name], [type, 'roll back deployment'], 'the crash point meant');
  return runDir;
}

async function assertSecondRecoverDoesNothing(s: Awaited<ReturnType<typeof setup>>, runDir: string): Promise<void> {
  assert.deepEqual(pendingRollbacks(readJournal(join(runDir, 'events.jsonl'))), [], 'the journal is closed');
  const lines = readFileSync(join(runDir, 'events.jsonl'), 'utf8');
  const writes = s.api.state.requests.filter((q) => q.method !== 'GET').length;
  const again = await drillCli(['recover', '--results', s.results]).done;
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /nothing to recover/);
  assert.equal(readFileSync(join(runDir, 'events.jsonl'), 'utf8'), lines);
  assert.equal(s.api.state.requests.filter((q) => q.method !== 'GET').length, writes, 'the second recover changed nothing');
}

test('killed right after the rollback was journaled but never carried out: the Deployment is on the revision found, recover changes nothing', {
  timeout: 180_000,
}, async (t) => {
  const s = await setup(t);
  const runDir = await crashAfter(s, ROLLBACK_INTENT, 'action.intent');
  assert.equal(image(s.api), 'registry.example/orders:2.0.0', 'nothing was rolled back');
  const writes = s.api.state.requests.filter((q) => q.method !== 'GET').length;

  const r = await drillCli(['recover', '--results', s.results]).done;
  t.diagnostic(r.stdout.trim());
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /already held: roll back deployment: deployment\/orders on revision 2 \(registry\.example\/orders:2\.0\.0\)/);
  assert.equal(s.api.state.requests.filter((q) => q.method !== 'GET').length, writes, 'recover wrote nothing to the API');
  assert.equal(image(s.api), 'registry.example/orders:2.0.0');
  await assertSecondRecoverDoesNothing(s, runDir);
});

test('killed right after the Deployment was rolled back: recover rolls it forward to the template the drill found', {
  timeout: 180_000,
}, async (t) => {
  const s = await setup(t);
  const runDir = await crashAfter(s, ROLLBACK_DONE, 'action.done');
  assert.equal(image(s.api), 'registry.example/orders:1.0.0', 'rolled back when the harness died');

  const r = await drillCli(['recover', '--results', s.results]).done;
  t.diagnostic(r.stdout.trim());
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /rolled back: roll back deployment: found deployment\/orders on revision 3 \(registry\.example\/orders:1\.0\.0\) .*; rolled forward to revision 2 \(registry\.example\/orders:2\.0\.0\); .*; now deployment\/orders on revision 4 \(registry\.example\/orders:2\.0\.0\) .*, 3\/3 updated, 3 available$/m,
  );
  assert.equal(image(s.api), 'registry.example/orders:2.0.0');
  await assertSecondRecoverDoesNothing(s, runDir);
});
