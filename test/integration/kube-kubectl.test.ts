/**
 * Real kubectl against the test API server: if kubectl's discovery, table printing, delete-and-wait and
 * rollout undo/status work, the server speaks the API closely enough to trust the adapter tests built on it.
 * kubectl is required: without it this file fails (CI installs it), it does not skip.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { deployment, startKubeApi, type KubeApi } from '../support/kube-api/index.ts';
import { makeTempDir } from '../support/tmp.ts';

function findKubectl(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'];
  for (const d of dirs.filter(Boolean)) {
    try {
      accessSync(join(d, 'kubectl'), constants.X_OK);
      return join(d, 'kubectl');
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

type Kubectl = (...args: string[]) => Promise<Run>;

/**
 * A server plus a kubectl bound to it through a temporary kubeconfig, HOME and cache dir. kubectl runs
 * asynchronously: the server lives in this process, and a synchronous spawn would stop it from answering.
 */
async function setup(t: TestContext): Promise<{ api: KubeApi; kubectl: Kubectl }> {
  const bin = findKubectl();
  if (!bin)
    assert.fail(
      'kubectl is required for this test and was not found on PATH or in /usr/bin: install the Debian package kubernetes-client or the kubectl binary (CI installs it)',
    );
  const api = await startKubeApi({
    objects: [deployment({ name: 'orders', namespace: 'prod', replicas: 3 })],
    readyDelayMs: 100,
    replaceDelayMs: 100,
    shutdownMs: 150,
  });
  t.after(() => api.stop());
  const dir = await makeTempDir('kubectl');
  t.after(() => dir.remove());
  const home = join(dir.path, 'home');
  await mkdir(home);
  const kubeconfig = join(dir.path, 'kubeconfig');
  await writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters:\n- name: test\n  cluster:\n    server: ${api.url}`,
      'users:\n- name: test\n  user: {}',
      'contexts:\n- name: test\n  context: {cluster: test, user: test}',
      'current-context: test',
      '',
    ].join('\n'),
  );
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
  const kubectl: Kubectl = (...args) =>
    new Promise((resolve) => {
      execFile(
        bin,
        ['--kubeconfig', kubeconfig, '--cache-dir', join(dir.path, 'cache'), '--request-timeout=20s', ...args],
        { env, timeout: 40_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  return { api, kubectl };
}

function ok(r: Run, what: string): string {
  assert.equal(r.code, 0, `${what} failed with exit ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function livePods(api: KubeApi): string[] {
  return api.state
    .list('pods', 'prod', 'app=orders')
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.name!)
    .sort();
}

test('kubectl get pods -l app=orders -n prod prints the server-side table', async (t) => {
  const { api, kubectl } = await setup(t);
  const out = ok(await kubectl('get', 'pods', '-l', 'app=orders', '-n', 'prod'), 'kubectl get pods');
  const [header, ...rows] = out.trim().split('\n');
  assert.deepEqual(header!.split(/\s+/), ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
  const cells = rows.map((r) => r.split(/\s+/));
  assert.deepEqual(cells.map((c) => c[0]).sort(), livePods(api));
  assert.ok(
    cells.every((c) => c[1] === '1/1' && c[2] === 'Running' && c[3] === '0'),
    out,
  );

  const none = await kubectl('get', 'pods', '-l', 'app=payments', '-n', 'prod');
  assert.equal(none.code, 0);
  assert.match(none.stderr, /No resources found in prod namespace/);
});

test('kubectl delete pod waits for the pod to be gone; the ReplicaSet replaces it', async (t) => {
  const { api, kubectl } = await setup(t);
  const [victim] = livePods(api);
  const out = ok(await kubectl('delete', 'pod', victim!, '-n', 'prod'), 'kubectl delete pod');
  assert.equal(out.trim(), `pod "${victim}" deleted`);
  assert.equal(api.state.get('pods', 'prod', victim!), undefined, 'kubectl returned only once the pod was gone');
  const del = api.state.requests.find((r) => r.method === 'DELETE')!;
  assert.deepEqual([del.resource, del.name, del.status], ['pods', victim, 200]);
  await api.state.waitFor(
    () => livePods(api).length === 3 && api.state.get('deployments', 'prod', 'orders')!.status.readyReplicas === 3,
    'a ready replacement',
  );
  assert.ok(!livePods(api).includes(victim!), 'the replacement has a new name');

  const missing = await kubectl('delete', 'pod', victim!, '-n', 'prod');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, new RegExp(`Error from server \\(NotFound\\): pods "${victim}" not found`));
});

test('kubectl rollout undo and rollout status: back to the previous revision, all pods on the old image', async (t) => {
  const { api, kubectl } = await setup(t);
  ok(await kubectl('set', 'image', 'deployment/orders', 'app=registry.example/orders:2.0.0', '-n', 'prod'), 'kubectl set image');
  assert.match(
    ok(await kubectl('rollout', 'status', 'deployment/orders', '-n', 'prod', '--timeout=20s'), 'rollout status after set image'),
    /deployment "orders" successfully rolled out/,
  );
  const image = () => api.state.get('deployments', 'prod', 'orders')!.spec.template.spec.containers[0].image;
  assert.equal(image(), 'registry.example/orders:2.0.0');

  assert.equal(
    ok(await kubectl('rollout', 'undo', 'deployment/orders', '-n', 'prod'), 'kubectl rollout undo').trim(),
    'deployment.apps/orders rolled back',
  );
  const status = ok(await kubectl('rollout', 'status', 'deployment/orders', '-n', 'prod', '--timeout=20s'), 'kubectl rollout status');
  assert.match(status, /deployment "orders" successfully rolled out/);

  const d = api.state.get('deployments', 'prod', 'orders')!;
  assert.equal(image(), 'registry.example/orders:1.0.0');
  assert.equal(d.metadata.annotations?.['deployment.kubernetes.io/revision'], '3');
  assert.deepEqual([d.status.replicas, d.status.updatedReplicas, d.status.readyReplicas, d.status.availableReplicas], [3, 3, 3, 3]);
  const revisions = api.state
    .list('replicasets', 'prod')
    .map((rs) => [
      rs.spec.template.spec.containers[0].image,
      rs.metadata.annotations?.['deployment.kubernetes.io/revision'],
      rs.spec.replicas,
    ]);
  assert.deepEqual(revisions.sort(), [
    ['registry.example/orders:1.0.0', '3', 3],
    ['registry.example/orders:2.0.0', '2', 0],
  ]);
  const images = api.state
    .list('pods', 'prod')
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.spec.containers[0].image);
  assert.deepEqual(images, Array(3).fill('registry.example/orders:1.0.0'));

  const patches = api.state.requests.filter((r) => r.method === 'PATCH').map((r) => [r.resource, r.contentType, r.status]);
  assert.deepEqual(
    patches,
    [
      ['deployments', 'application/strategic-merge-patch+json', 200],
      ['deployments', 'application/json-patch+json', 200],
    ],
    'set image sends a strategic merge patch, rollout undo a JSON patch of the template',
  );
  const history = ok(await kubectl('rollout', 'history', 'deployment/orders', '-n', 'prod'), 'kubectl rollout history');
  assert.deepEqual(
    history
      .trim()
      .split('\n')
      .slice(2)
      .map((l) => l.split(/\s+/)[0]),
    ['2', '3'],
  );
});

test('kubectl rollout status fails on the progress deadline of a rollout that cannot progress, as on a cluster', async (t) => {
  const { api, kubectl } = await setup(t);
  ok(await kubectl('patch', 'deployment/orders', '-n', 'prod', '-p', '{"spec":{"progressDeadlineSeconds":2}}'), 'kubectl patch');
  ok(await kubectl('set', 'image', 'deployment/orders', 'app=unpullable.example/orders:2.0.0', '-n', 'prod'), 'kubectl set image');
  const t0 = performance.now();
  const r = await kubectl('rollout', 'status', 'deployment/orders', '-n', 'prod', '--timeout=30s');
  const took = performance.now() - t0;
  // DeploymentStatusViewer (kubectl/pkg/polymorphichelpers/rollout_status.go) turns Progressing=False with reason
  // ProgressDeadlineExceeded into this error; kubectl exits 1. The same words start the adapter's error.
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stderr.trim(), 'error: deployment "orders" exceeded its progress deadline');
  assert.match(r.stdout, /Waiting for deployment "orders" rollout to finish: 1 out of 3 new replicas have been updated\.\.\./);
  // The deadline is 2 s from the last progress (whole-second lastUpdateTime): at most ~2.1 s after set image,
  // plus kubectl's start-up and discovery (~1 s, more on a loaded machine) and 2.5 s of slack; never the 30 s timeout.
  assert.ok(took < 6000, `rollout status failed after ${Math.round(took)} ms`);
  const d = api.state.get('deployments', 'prod', 'orders')!;
  const progressing = d.status.conditions.find((c: { type: string }) => c.type === 'Progressing');
  assert.deepEqual([progressing.status, progressing.reason], ['False', 'ProgressDeadlineExceeded']);
  assert.match(progressing.message, /^ReplicaSet "orders-[a-z0-9]+" has timed out progressing\.$/);
  // kubectl shows the stuck pod as a cluster does.
  const pods = ok(await kubectl('get', 'pods', '-n', 'prod'), 'kubectl get pods');
  assert.match(pods, /orders-[a-z0-9]+-[a-z0-9]+\s+0\/1\s+ImagePullBackOff\s+0\s+/);
});

test('custom resources: a PUT without resourceVersion is 422, a strategic merge patch is 415, as a real API server answers', async (t) => {
  const { api, kubectl } = await setup(t);
  api.state.create({
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: 'pg', namespace: 'prod' },
    spec: { instances: 1 },
  });
  const dir = await makeTempDir('kubectl-cr');
  t.after(() => dir.remove());
  const file = join(dir.path, 'cluster.json');
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'postgresql.cnpg.io/v1',
      kind: 'Cluster',
      metadata: { name: 'pg', namespace: 'prod' },
      spec: { instances: 2 },
    }),
  );
  // Custom resources do not allow unconditional updates (apiextensions-apiserver customresource strategy), and the
  // generic registry words the 422 over the resource name. `kubectl replace --raw` sends the file as it is.
  const raw = await kubectl('replace', '--raw', '/apis/postgresql.cnpg.io/v1/namespaces/prod/clusters/pg', '-f', file);
  assert.equal(raw.code, 1, raw.stdout);
  // kubectl prints an Invalid Status as "The <details.kind> "<name>" is invalid: <causes>": the same words users of
  // real clusters report for custom resources ("The machinedeployments ... is invalid: metadata.resourceVersion: ...").
  assert.equal(
    raw.stderr.trim(),
    'The clusters "pg" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
  );
  assert.equal(api.state.get('clusters', 'prod', 'pg')!.spec.instances, 1, 'nothing changed');
  // Plain `kubectl replace` reads the object first and sends its resourceVersion (cli-runtime resource.Helper.Replace
  // with overwrite), so the same file goes through. (--validate=false: this server publishes no OpenAPI schema.)
  assert.equal(
    ok(await kubectl('replace', '--validate=false', '-f', file), 'kubectl replace').trim(),
    'cluster.postgresql.cnpg.io/pg replaced',
  );
  assert.equal(api.state.get('clusters', 'prod', 'pg')!.spec.instances, 2);
  // Strategic merge patch needs a Go type's patch strategies, which a custom resource has none of: 415 from the
  // server (apiextensions-apiserver customresource_handler.go supportedTypes); a merge patch is accepted.
  const smp = await kubectl('patch', 'clusters.postgresql.cnpg.io/pg', '-n', 'prod', '--type=strategic', '-p', '{"spec":{"instances":5}}');
  assert.equal(smp.code, 1);
  // kubectl recognises the 415 by its reason (apierrors.IsUnsupportedMediaType in kubectl's patch command) and says
  // which patch type the kind does not take.
  assert.equal(
    smp.stderr.trim(),
    'error: application/strategic-merge-patch+json is not supported by postgresql.cnpg.io/v1, Kind=Cluster: the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
  );
  ok(
    await kubectl('patch', 'clusters.postgresql.cnpg.io/pg', '-n', 'prod', '--type=merge', '-p', '{"spec":{"instances":3}}'),
    'kubectl patch --type=merge',
  );
  assert.equal(api.state.get('clusters', 'prod', 'pg')!.spec.instances, 3);
  const statuses = api.state.requests
    .filter((q) => q.resource === 'clusters' && ['PUT', 'PATCH'].includes(q.method))
    .map((q) => [q.method, q.status]);
  assert.deepEqual(statuses, [
    ['PUT', 422],
    ['PUT', 200],
    ['PATCH', 415],
    ['PATCH', 200],
  ]);
});
