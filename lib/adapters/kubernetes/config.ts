/**
 * Where the Kubernetes adapter gets its cluster and credentials: a user's kubeconfig file and context, or
 * (for tests and in-cluster helpers) a server URL and token built in memory.
 */
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { UserError } from '../../errors.ts';

/**
 * client-node 1.x refuses an `http:` server unless skipTLSVerify is set, although there is no TLS to verify.
 * Plain HTTP is what `kubectl proxy` and test servers on loopback speak, so it is allowed for them only.
 */
function plainHttp(server: string | undefined): boolean {
  return server?.startsWith('http://') ?? false;
}

/** A kubeconfig for one API server URL, as a test or a port-forward needs; no file is read or written. */
export function kubeConfigFor(options: { url: string; token?: string; contextName?: string; namespace?: string }): KubeConfig {
  const name = options.contextName ?? 'drill';
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name, server: options.url, skipTLSVerify: plainHttp(options.url) }],
    users: [{ name, ...(options.token ? { token: options.token } : {}) }],
    contexts: [{ name, cluster: name, user: name, ...(options.namespace ? { namespace: options.namespace } : {}) }],
    currentContext: name,
  });
  return kc;
}

/**
 * The named context of a kubeconfig file (or its current-context when none is named). A missing file, a file
 * that does not parse, or an unknown context is invalid input, reported with what to fix.
 */
export function kubeConfigFromFile(path: string, context?: string): KubeConfig {
  if (!existsSync(path)) {
    throw new UserError(`kubeconfig ${path} does not exist`, {
      untouched: 'nothing: no call was made to any cluster',
      next: 'set target.kubeconfig in the drill file (or KUBECONFIG) to an existing file, e.g. from `az aks get-credentials`',
    });
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(path);
  } catch (e) {
    throw new UserError(`kubeconfig ${path} could not be read: ${(e as Error).message}`, {
      untouched: 'nothing: no call was made to any cluster',
      next: 'check the file with `kubectl config view --kubeconfig <file>`',
    });
  }
  const names = kc.getContexts().map((c) => c.name);
  const wanted = context ?? (kc.getCurrentContext() || undefined);
  const listing = names.length > 0 ? names.join(', ') : '(none)';
  if (!wanted) {
    throw new UserError(`kubeconfig ${path} has no current-context and the drill names no context; contexts there: ${listing}`, {
      untouched: 'nothing: no call was made to any cluster',
      next: 'set target.context in the drill file to one of the contexts listed',
    });
  }
  if (!names.includes(wanted)) {
    throw new UserError(`context "${wanted}" is not in kubeconfig ${path}; contexts there: ${listing}`, {
      untouched: 'nothing: no call was made to any cluster',
      next: 'set target.context in the drill file to one of the contexts listed (`kubectl config get-contexts`)',
    });
  }
  kc.setCurrentContext(wanted);
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new UserError(`context "${wanted}" in kubeconfig ${path} names a cluster that is not defined there`, {
      untouched: 'nothing: no call was made to any cluster',
      next: "fix the context's cluster entry (`kubectl config view --kubeconfig <file>`)",
    });
  }
  if (plainHttp(cluster.server) && !cluster.skipTLSVerify) {
    kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, skipTLSVerify: true } : c));
  }
  return kc;
}
