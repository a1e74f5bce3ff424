/**
 * One API request the way every Kubernetes module of the adapter makes it: under a per-request time limit
 * and the caller's abort signal, with any failure turned into a KubeError that names the verb, resource
 * and namespace (and for a 403 the Role rule needed).
 */
import { Observable, type ConfigurationOptions, type KubeConfig, type RequestContext, type ResponseContext } from '@kubernetes/client-node';
import { explain, type KubeCall } from './errors.ts';

export type KubeCallSpec = Omit<KubeCall, 'server' | 'namespace'> & { namespace?: string };

export interface Caller {
  readonly server: string;
  readonly requestTimeoutMs: number;
  call<T>(c: KubeCallSpec, fn: (o: ConfigurationOptions) => Promise<T>, signal?: AbortSignal): Promise<T>;
}

/** Per-request options: an abort signal (the caller's, or the request timeout) on the underlying fetch. */
export function withSignal(signal: AbortSignal, base?: ConfigurationOptions): ConfigurationOptions {
  return {
    ...base,
    middleware: [
      ...((base?.middleware as unknown[] | undefined) ?? []),
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
      },
    ] as ConfigurationOptions['middleware'],
    middlewareMergeStrategy: 'append',
  };
}

export function createCaller(kc: KubeConfig, namespace: string, requestTimeoutMs = 15_000): Caller {
  const server = kc.getCurrentCluster()?.server ?? '(no cluster in kubeconfig)';
  return {
    server,
    requestTimeoutMs,
    async call(c, fn, signal) {
      const timeout = AbortSignal.timeout(requestTimeoutMs);
      try {
        return await fn(withSignal(signal ? AbortSignal.any([signal, timeout]) : timeout));
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        throw explain(e, { ...c, namespace: c.namespace ?? namespace, server }, requestTimeoutMs);
      }
    },
  };
}
