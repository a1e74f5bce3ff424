/**
 * Where a Kubernetes target gets its credentials, without a cluster: in-cluster outside a pod, KUBECONFIG
 * lists, `~` in paths, and the drill-file rules on namespaces and blast radius.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultKubeconfigPath, expandHome, kubeAdapters } from '../../lib/adapters/kubernetes/target.ts';
import { UserError } from '../../lib/errors.ts';
import { TargetSchema } from '../../lib/config/schema.ts';
import { normaliseTarget } from '../../lib/config/normalise.ts';

test('inCluster outside a pod is invalid input naming what to do, before any call', () => {
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_HOST;
  try {
    assert.throws(
      () => kubeAdapters({ inCluster: true, namespace: 'orders', namespaces: ['orders'], blastRadius: 1 }),
      (e: unknown) =>
        e instanceof UserError &&
        e.exitCode === 2 &&
        /does not run in a Kubernetes pod/.test(e.message) &&
        /run the drill as a Job in the cluster/.test(e.next ?? ''),
    );
  } finally {
    if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved;
  }
});

test('kubeconfig paths: $KUBECONFIG first entry, else ~/.kube/config; ~ expands to HOME', () => {
  assert.equal(defaultKubeconfigPath({ KUBECONFIG: '/a/one:/b/two', HOME: '/home/x' }), '/a/one');
  assert.equal(defaultKubeconfigPath({ HOME: '/home/x' }), '/home/x/.kube/config');
  assert.equal(expandHome('~/.kube/aks', { HOME: '/home/x' }), '/home/x/.kube/aks');
  assert.equal(expandHome('/etc/kube', { HOME: '/home/x' }), '/etc/kube');
});

test('drill-file rules: namespace defaults to the first allowed one, blast radius to 1; kube-system and strays refused', () => {
  const ok = TargetSchema.parse({ kind: 'kubernetes', context: 'aks', namespaces: ['orders', 'payments'], url: 'http://orders:8080' });
  assert.deepEqual(normaliseTarget(ok), {
    kind: 'kubernetes',
    context: 'aks',
    inCluster: false,
    namespace: 'orders',
    namespaces: ['orders', 'payments'],
    blastRadius: 1,
    url: 'http://orders:8080',
  });
  const messages = (t: unknown) => (TargetSchema.safeParse(t).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.deepEqual(messages({ kind: 'kubernetes', namespaces: ['kube-system'], url: 'http://x' }), [
    'namespaces.0: kube-system is never a drill target: it runs the cluster itself; list only the namespaces of the workloads under test',
  ]);
  assert.deepEqual(messages({ kind: 'kubernetes', namespace: 'payments', namespaces: ['orders'], url: 'http://x' }), [
    'namespace: namespace "payments" is not in namespaces (orders): add it there if the drill is meant to act in it',
  ]);
  assert.deepEqual(messages({ kind: 'kubernetes', inCluster: true, context: 'aks', namespaces: ['orders'], url: 'http://x' }), [
    "inCluster: inCluster uses the pod's service account: remove kubeconfig and context, or set inCluster: false",
  ]);
  assert.equal(messages({ kind: 'kubernetes', namespaces: ['orders'], blastRadius: 0, url: 'http://x' }).length, 1);
  assert.equal(messages({ kind: 'kubernetes', namespaces: [], url: 'http://x' }).length, 1);
});
