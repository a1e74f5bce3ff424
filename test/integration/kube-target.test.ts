/**
 * The Kubernetes target end to end through the CLI, as an SRE runs it: `drill run --yes` and `drill plan`
 * against the Kubernetes-API-compatible test server, with load on a loopback Service whose endpoints are the
 * server's Ready pods. Guardrails and bad input must exit 2 with nothing deleted, asserted on the server's
 * own state and request log.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { AppsV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../lib/adapters/kubernetes/index.ts';
import { join } from 'node:path';
import { deployment, startKubeApi, type KubeApi, type KubeApiOptions } from '../support/kube-api/index.ts';
import { startPodService, type PodService } from '../support/kube-api/service.ts';
import { drillCli, readEvents, runFolders } from '../support/cli.ts';
import { scratchDir } from '../support/tmp.ts';
import { kubeDrillHead, writeKubeconfig } from '../support/kube-drill.ts';
import { assertRto } from '../support/rto.ts';

interface Setup {
  api: KubeApi;
  svc: PodService;
  dir: string;
  kubeconfig: string;
  /** Writes a drill file whose target is this server and Service; `target` and `scenarios` are YAML fragments. */
  drill(name: string, o: { target?: string; scenarios: string; load?: string; policy?: string }): string;
}

async function setup(t: TestContext, options: KubeApiOptions = {}, token?: string): Promise<Setup> {
  const api = await startKubeApi({
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 3, labels: { app: 'orders' } }),
      deployment({ name: 'coredns', namespace: 'kube-system', replicas: 2, labels: { 'k8s-app': 'kube-dns' } }),
      deployment({ name: 'payments', namespace: 'payments', replicas: 2, labels: { app: 'payments' } }),
    ],
    replaceDelayMs: 300,
    readyDelayMs: 300,
    shutdownMs: 100,
    ...options,
  });
  t.after(() => api.stop());
  const svc = await startPodService(api, { namespace: 'prod', selector: 'app=orders' });
  t.after(() => svc.stop());
  const dir = scratchDir('kube-target');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), { server: api.url, namespace: 'prod', ...(token ? { token } : {}) });
  const drill = (name: string, o: { target?: string; scenarios: string; load?: string; policy?: string }) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        ...kubeDrillHead({ name, kubeconfig, url: svc.url }),
        o.target ?? '  namespaces: [prod]\n  blastRadius: 1',
        // The latency SLO is loose: these tests measure the drill, not a test server on a shared 2-core machine.
        o.policy ?? "policy: { recoveryWindow: 2s, slo: { latency: ['p(95)<3s'] } }",
        o.load ?? 'load: { rate: 25, baseline: 2s, cooldown: 1s, timeout: 5s }',
        'scenarios:',
        o.scenarios,
        '',
      ].join('\n'),
    );
    return file;
  };
  return { api, svc, dir, kubeconfig, drill };
}

function servedTotal(svc: PodService): number {
  return [...svc.served.values()].reduce((a, b) => a + b, 0) + svc.failures[503];
}

function deletes(api: KubeApi): number {
  return api.state.requests.filter((r) => r.method === 'DELETE').length;
}

function podNames(api: KubeApi, ns: string): string[] {
  return api.state
    .list('pods', ns)
    .map((p) => p.metadata.name!)
    .sort();
}

/** Every pod of every namespace, by uid: a guardrail test asserts this is the same after the refused run. */
function snapshot(api: KubeApi): string {
  return ['prod', 'kube-system', 'payments']
    .flatMap((ns) => api.state.list('pods', ns).map((p) => `${ns}/${p.metadata.name}/${p.metadata.uid}`))
    .sort()
    .join('\n');
}

test('pod-kill on the Kubernetes target: every pod of the Deployment killed under load, outage seen, replacements recorded', {
  timeout: 240_000,
}, async (t) => {
  const s = await setup(t);
  const before = podNames(s.api, 'prod');
  const file = s.drill('kube-pod-kill', {
    target: '  namespaces: [prod]\n  blastRadius: 3',
    // Availability and errors keep the organisation's bars (99.9%, 0.1%): a baseline request still in flight when the
    // pods go is judged with the fault, so a kill that lands on it does not fail the baseline.
    scenarios: '  - scenario: pod-kill\n    name: kill-all\n    params: { selector: app=orders, count: 100% }\n    timeout: 30s',
  });
  const results = join(s.dir, 'results');
  const r = await drillCli(['run', file, '--results', results, '--yes', '--json']).done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stderr, /kubernetes target kube:test-ctx\/prod \(http:\/\/127\.0\.0\.1:\d+\): namespaces prod, blast radius 3/);
  const [runDir] = runFolders(results);
  const rec = JSON.parse(readFileSync(join(runDir!, 'run.json'), 'utf8'));
  assert.equal(rec.status, 'passed');
  assert.equal(rec.environment.target.kind, 'kubernetes');
  assert.equal(rec.environment.target.context, 'test-ctx');
  assert.equal(rec.target, 'kubernetes:test-ctx/prod');

  // The three pods that were there are the ones deleted, and each delete reached the API server.
  assert.deepEqual([...rec.actions[0].targets].sort(), before);
  const deleted = s.api.state.requests
    .filter((q) => q.method === 'DELETE' && q.resource === 'pods')
    .map((q) => q.name)
    .sort();
  assert.deepEqual(deleted, before);
  const after = podNames(s.api, 'prod');
  assert.equal(after.length, 3);
  assert.equal(after.filter((n) => before.includes(n)).length, 0, 'all three were replaced by new pods');

  // The load saw the outage: with every pod gone the Service had no endpoints until the replacements were Ready.
  assert.ok(rec.load.errors > 0, `load errors ${rec.load.errors}`);
  assert.ok(s.svc.failures[503] > 0, 'the Service answered 503 while no pod was Ready');
  assert.equal(rec.load.scheduled, rec.load.ok + rec.load.errors + rec.load.dropped);

  // Recovery was watched, not polled: the check runs every 100 ms, but pods were listed only a handful of times
  // (access check, selection, first status, rollback's own watch), each watch resuming from its list.
  const podLists = s.api.state.requests.filter((q) => q.verb === 'list' && q.resource === 'pods').length;
  assert.ok(podLists <= 12, `${podLists} pod lists during the run`);
  t.diagnostic(`${podLists} pod lists during the run`);

  // Verification names the replacements and when they served, for the record, on the harness's millisecond clock
  // (from the pod watch): the server replaces a pod 300 ms after its delete and makes it Ready 300 ms later.
  const replaced = (rec.objectives.verification.probes as Array<{ name: string; detail: string }>).find(
    (p) => p.name === 'killed replicas were replaced by new ones',
  )!.detail;
  const readyAfterKill: number[] = [];
  for (const n of after) {
    const m = new RegExp(`${n} \\(ready (\\d+ms|[\\d.]+s) after the kill, at \\d{4}-\\d\\d-\\d\\dT[\\d:]+\\.\\d{3}Z\\)`).exec(replaced);
    assert.ok(m, `replacement ${n} and when it was ready are named: ${replaced}`);
    const ms = m[1]!.endsWith('ms') ? Number(m[1]!.slice(0, -2)) : Number(m[1]!.slice(0, -1)) * 1000;
    // Created 300 ms after the controller sees the delete, Ready 300 ms later: never before 600 ms (less the few ms
    // between the kill's timestamp and the DELETE reaching the server); 1.4 s more covers a loaded 2-core machine.
    assert.ok(ms >= 580 && ms < 2000, `${n} ready ${ms} ms after the kill`);
    readyAfterKill.push(ms);
  }
  // RTO (fault-injected → recovered, checked against the marks) is the outage the pods' replacements make: with every
  // pod gone the Service answers 503 until replacements are Ready, and recovery needs the workload whole, so it ends
  // with the slowest replacement (plus the recovery check's confirmation). It cannot be under 0.6 s (300 + 300 ms);
  // 3 s is the slowest bound above plus 1 s.
  const slowest = Math.max(...readyAfterKill);
  const rto = assertRto(rec, { min: 0.6, max: 3, why: 'three replacements of 300 + 300 ms, watched, on a loaded machine' });
  assert.ok(Math.abs(rto * 1000 - slowest) < 500, `RTO ${rto} s tracks the slowest replacement, ready ${slowest} ms after its kill`);
  t.diagnostic(
    `RTO ${rto} s, slowest replacement ${slowest} ms, load errors ${rec.load.errors} of ${rec.load.scheduled}, 503s ${s.svc.failures[503]}`,
  );
  // The load here only reads: there is no ledger to read back, and the record says so instead of guessing an RPO.
  const noLedger = 'the load sent no writes with a {{token}}, so there is no write ledger to read back; RPO not measured';
  assert.deepEqual(rec.objectives.verification.skipped, [{ name: 'acknowledged writes survived the kill', reason: noLedger }]);
  assert.equal(rec.objectives.rpo.measuredSeconds, null);
  assert.equal(rec.objectives.rpo.reason, noLedger);
  for (const n of before)
    assert.match(replaced, new RegExp(`${n} at \\d{4}-[\\d-]+T[\\d:.]+Z`), 'each deleted pod is named with its kill time');
  t.diagnostic(replaced);
  const events = readEvents(runDir!);
  const intent = events.findIndex((e) => e.type === 'action.intent');
  const done = events.findIndex((e) => e.type === 'action.done');
  assert.ok(intent >= 0 && done > intent, 'the kill was journaled, with its selection, before it ran');
  assert.equal((events[intent]!.selected as unknown[]).length, 3);
});

test('guardrails: kube-system, a namespace outside the allowlist, more pods than the blast radius: exit 2, nothing deleted', {
  timeout: 240_000,
}, async (t) => {
  const s = await setup(t);
  const state = snapshot(s.api);
  const results = join(s.dir, 'results');
  const kill = '  - scenario: pod-kill\n    params: { selector: app=orders, count: 1 }';

  const kubeSystem = s.drill('kube-system', { target: '  namespace: kube-system\n  namespaces: [kube-system, prod]', scenarios: kill });
  let r = await drillCli(['run', kubeSystem, '--results', results, '--yes']).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /target\.namespaces\[0\]: kube-system is never a drill target/);

  const outside = s.drill('outside', { target: '  namespace: payments\n  namespaces: [prod]', scenarios: kill });
  r = await drillCli(['run', outside, '--results', results, '--yes']).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /target\.namespace: namespace "payments" is not in namespaces \(prod\)/);

  const wide = s.drill('wide', {
    target: '  namespaces: [prod]\n  blastRadius: 2',
    scenarios: '  - scenario: pod-kill\n    params: { selector: app=orders, count: 100% }',
  });
  r = await drillCli(['run', wide, '--results', results, '--yes']).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /the selection is 3 pods \(orders-[^)]+\), more than the target's blast radius of 2 pods per action/);
  assert.match(r.stderr, /not touched: nothing: no load was sent and no pod was deleted/);
  assert.ok(servedTotal(s.svc) <= 1, 'no load was sent (one GET checks that the service URL answers)');

  assert.equal(deletes(s.api), 0);
  assert.equal(snapshot(s.api), state);
  assert.deepEqual(runFolders(results), [], 'no run started');
});

test('drill plan lists exactly the pods a run would hit and what replaces them, touching nothing', { timeout: 240_000 }, async (t) => {
  // Five pods, two picked: a selection that ignored `mode: oldest` would still match one time in ten.
  const s = await setup(t, {
    objects: [
      deployment({ name: 'orders', namespace: 'prod', replicas: 5, labels: { app: 'orders' } }),
      deployment({ name: 'payments', namespace: 'payments', replicas: 2, labels: { app: 'payments' } }),
    ],
  });
  const file = s.drill('plan', {
    target: '  namespaces: [prod, payments]\n  blastRadius: 2',
    scenarios: '  - scenario: pod-kill\n    params: { selector: app=orders, count: 2, mode: oldest }',
  });
  const rvBefore = s.api.state.resourceVersion();
  const r = await drillCli(['plan', file]).done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const pods = s.api.state.list('pods', 'prod');
  // The server gives seeded pods start times a minute apart, in an order unrelated to their names or creation.
  assert.equal(new Set(pods.map((p) => p.status?.startTime)).size, 5, 'distinct start times');
  const oldest = pods
    .sort((a, b) => String(a.status?.startTime).localeCompare(String(b.status?.startTime)))
    .slice(0, 2)
    .map((p) => p.metadata.name);
  const hits = /hits: (.*)/.exec(r.stdout)![1]!.split(', ');
  assert.deepEqual([...hits].sort(), [...oldest].sort() as string[], `mode: oldest picks the two that started first`);
  assert.match(r.stdout, /replaced by: the controller of deployment\/orders/);
  assert.match(r.stdout, /rollback: make sure the workload is back at its desired replica count/);
  assert.match(r.stdout, /target: kubernetes: kube:test-ctx\/prod .*namespaces prod, payments; blast radius 2 pods per action/);
  assert.ok(
    s.api.state.requests.every((q) => q.verb === 'list' || q.verb === 'get'),
    `only reads: ${[...new Set(s.api.state.requests.map((q) => q.verb))].join(', ')}`,
  );
  assert.equal(s.api.state.resourceVersion(), rvBefore, 'nothing changed on the server');

  // The same plan with a blast radius of 1 names the problem and exits 2.
  const tight = s.drill('plan-tight', {
    target: '  namespaces: [prod]',
    scenarios: '  - scenario: pod-kill\n    params: { selector: app=orders, count: 2 }',
  });
  const r2 = await drillCli(['plan', tight]).done;
  assert.equal(r2.code, 2, r2.stdout);
  assert.match(r2.stdout, /CANNOT SELECT: the selection is 2 pods .* more than the target's blast radius of 1 pod per action/);
  assert.equal(deletes(s.api), 0);
});

test('bad input: unknown context, missing kubeconfig, selector matching nothing: a clear message, exit 2, nothing deleted', {
  timeout: 240_000,
}, async (t) => {
  const s = await setup(t);
  const state = snapshot(s.api);
  const results = join(s.dir, 'results');
  const kill = '  - scenario: pod-kill\n    params: { selector: app=orders }';

  const unknownCtx = s.drill('unknown-context', { scenarios: kill });
  writeFileSync(unknownCtx, readFileSync(unknownCtx, 'utf8').replace('context: test-ctx', 'context: aks-prod'));
  let r = await drillCli(['run', unknownCtx, '--results', results, '--yes']).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /context "aks-prod" is not in kubeconfig .*; contexts there: test-ctx/);
  assert.match(r.stderr, /next: set target\.context in the drill file/);

  const missing = s.drill('missing-kubeconfig', { scenarios: kill });
  writeFileSync(missing, readFileSync(missing, 'utf8').replace(`kubeconfig: ${s.kubeconfig}`, `kubeconfig: ${join(s.dir, 'nope')}`));
  r = await drillCli(['plan', missing]).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /kubeconfig .*nope does not exist/);

  const nothing = s.drill('matches-nothing', { scenarios: '  - scenario: pod-kill\n    params: { selector: app=nothing }' });
  r = await drillCli(['run', nothing, '--results', results, '--yes']).done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /pod-kill: kill replicas: no ready replica matches selector "app=nothing"/);
  assert.ok(servedTotal(s.svc) <= 1, 'no load was sent (one GET checks that the service URL answers)');

  // Without --yes and without a terminal to ask, a non-lab run refuses.
  r = await drillCli(['run', s.drill('no-yes', { scenarios: kill }), '--results', results]).done;
  assert.equal(r.code, 2);
  // It names what would break (context, server, namespace, blast radius), not only where the load goes.
  assert.match(
    r.stderr,
    /refusing to act on Kubernetes context test-ctx \(http:\/\/127\.0\.0\.1:\d+\), namespace prod, blast radius 1 pod; load to http:\/\/127\.0\.0\.1:\d+ without confirmation/,
  );

  assert.equal(deletes(s.api), 0);
  assert.equal(snapshot(s.api), state);
});

test('RBAC: a drill identity without delete on pods gets the verb, resource and Role rule needed; nothing deleted', {
  timeout: 240_000,
}, async (t) => {
  const read = {
    verbs: ['get', 'list', 'watch'],
    apiGroups: ['', 'apps'],
    // configmaps: the halt switch (drill-halt) must be readable, or the drill does not start at all.
    resources: ['pods', 'deployments', 'replicasets', 'statefulsets', 'configmaps'],
  };
  const s = await setup(t, { tokens: { 'drill-token': { user: 'system:serviceaccount:drill:drill', rules: [read] } } }, 'drill-token');
  const file = s.drill('rbac', { scenarios: '  - scenario: pod-kill\n    params: { selector: app=orders }\n    timeout: 20s' });
  const results = join(s.dir, 'results');
  const r = await drillCli(['run', file, '--results', results, '--yes', '--json']).done;
  // The selection is readable, so the run starts; the delete is refused: the action fails and the run aborts (4).
  assert.equal(r.code, 4, r.stderr);
  const [runDir] = runFolders(results);
  const rec = JSON.parse(readFileSync(join(runDir!, 'run.json'), 'utf8'));
  const err = JSON.stringify(rec);
  assert.match(err, /not allowed to delete pods \\"orders-[a-z0-9-]+\\" in namespace \\"prod\\" \(403 Forbidden/);
  assert.match(err, /- apiGroups: \[\\"\\"\]\\n {2}resources: \[\\"pods\\"\]\\n {2}verbs: \[\\"delete\\"\]/);
  const refused = s.api.state.requests.filter((q) => q.method === 'DELETE');
  assert.ok(refused.length >= 1 && refused.every((q) => q.status === 403), 'every delete was refused');
  assert.equal(s.api.state.list('pods', 'prod').length, 3);
});

test('drills/kubernetes-example.yaml validates, and plans against a cluster that has its context and namespace', {
  timeout: 240_000,
}, async (t) => {
  let r = await drillCli(['validate', 'drills/kubernetes-example.yaml']).done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ok \(3 scenarios: kill-one-pod, rollback-last-deploy, fail-over-orders-db\)/);

  // A HOME whose ~/.kube/config has the example's context, pointing at the test server (with the example's CloudNativePG cluster).
  const ordersDb = {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: 'orders-db', namespace: 'prod-orders' },
    spec: { instances: 2 },
  };
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod-orders', replicas: 3 }), ordersDb],
    readyDelayMs: 50,
    replaceDelayMs: 50,
  });
  t.after(() => api.stop());
  await api.state.waitFor(() => api.state.get('clusters', 'prod-orders', 'orders-db')?.status?.readyInstances === 2, 'orders-db ready');
  const apps = kubeConfigFor({ url: api.url }).makeApiClient(AppsV1Api);
  const d = await apps.readNamespacedDeployment({ name: 'orders', namespace: 'prod-orders' });
  d.spec!.template.spec!.containers[0]!.image = 'registry.example/orders:2.0.0';
  await apps.replaceNamespacedDeployment({ name: 'orders', namespace: 'prod-orders', body: d });
  await api.state.waitFor(() => api.state.list('replicasets', 'prod-orders').length === 2, 'a second revision');
  const home = scratchDir('kube-home');
  t.after(() => rmSync(home, { recursive: true, force: true }));
  mkdirSync(join(home, '.kube'));
  writeFileSync(
    join(home, '.kube', 'config'),
    `apiVersion: v1\nkind: Config\nclusters:\n  - name: aks\n    cluster: { server: "${api.url}" }\nusers:\n  - name: u\n    user: {}\ncontexts:\n  - name: aks-prod-westeurope\n    context: { cluster: aks, user: u }\ncurrent-context: aks-prod-westeurope\n`,
  );
  const seen = api.state.requests.length;
  r = await drillCli(['plan', 'drills/kubernetes-example.yaml'], { HOME: home, KUBECONFIG: '' }).done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /target: kubernetes: kube:aks-prod-westeurope\/prod-orders/);
  const pods = api.state.list('pods', 'prod-orders').map((p) => p.metadata.name!);
  const hit = /action 1\. kill replicas: .*\n\s+hits: (\S+)/.exec(r.stdout)![1]!;
  assert.ok(pods.includes(hit), `${hit} is one of ${pods.join(', ')}`);
  assert.match(
    r.stdout,
    /hits: deployment\/orders in prod-orders: revision 2 \(registry\.example\/orders:2\.0\.0\) -> revision 1 \(registry\.example\/orders:1\.0\.0\)/,
  );
  assert.match(
    r.stdout,
    /database kube:aks-prod-westeurope\/prod-orders CloudNativePG cluster orders-db \(delete-primary, -rw 127\.0\.0\.1:15432\): a kill deletes primary pod orders-db-1/,
  );
  assert.match(r.stdout, /action 2\. kill primary: .*\n\s+hits: orders-db-1 /);
  assert.ok(
    api.state.requests.slice(seen).every((q) => q.verb === 'list' || q.verb === 'get'),
    'plan only read',
  );
});
