/**
 * List-then-watch, the way client-go's reflector keeps a cache: list to get the state and a resourceVersion,
 * watch from there, resume after a dropped stream from the last resourceVersion seen, and re-list when the
 * server says that position has expired (410). Waiting on a workload this way costs one open stream instead
 * of a request every few hundred milliseconds.
 */
import { ApiException, Watch, type KubeConfig } from '@kubernetes/client-node';
import { httpStatus, isTransient } from './errors.ts';

export interface InformerOptions<T> {
  kubeConfig: KubeConfig;
  /** The collection to watch, e.g. `/api/v1/namespaces/prod/pods`. */
  path: string;
  /** Selectors, the same for the list and the watch. */
  query: { labelSelector?: string; fieldSelector?: string };
  list(signal: AbortSignal): Promise<{ items: T[]; resourceVersion: string }>;
  /** Watch events carry raw JSON, lists carry client-node models: both are turned into T by the caller. */
  fromWatch(raw: unknown): T;
  key(item: T): string;
  resourceVersionOf(item: T): string | undefined;
  /** Stops the informer and its open stream. */
  signal: AbortSignal;
  onChange(): void;
  /** A failure that retrying cannot fix (401, 403, 404 on the collection, ...): the informer has stopped. */
  onFatal(error: unknown): void;
  /** A failure it will retry (unreachable server, 5xx); kept for explaining a later timeout. */
  onTransient?(error: unknown): void;
}

export interface Informer<T> {
  readonly items: Map<string, T>;
  /** True once the first list has arrived. */
  readonly synced: boolean;
  /** Lists done so far: 1 plus one per expired watch position. */
  readonly lists: number;
}

type Outcome = { kind: 'expired' } | { kind: 'closed' } | { kind: 'error'; error: unknown };

const MAX_BACKOFF_MS = 2000;
/** A watch that ends sooner than this is treated as a failure to back off from, not a normal rotation. */
const SHORT_WATCH_MS = 1000;

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export function startInformer<T>(o: InformerOptions<T>): Informer<T> {
  const state = { items: new Map<string, T>(), synced: false, lists: 0 };
  let resourceVersion: string | undefined;
  let backoffMs = 0;
  const backoff = () => {
    backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs === 0 ? 100 : backoffMs * 2);
    return pause(backoffMs, o.signal);
  };

  const watchOnce = (from: string): Promise<Outcome> =>
    new Promise((resolve) => {
      let expired = false;
      let failed: unknown;
      let controller: AbortController | undefined;
      const onAbort = () => controller?.abort();
      o.signal.addEventListener('abort', onAbort, { once: true });
      const finish = (out: Outcome) => {
        o.signal.removeEventListener('abort', onAbort);
        resolve(out);
      };
      const onEvent = (type: string, obj: unknown) => {
        const rv = (obj as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
        switch (type) {
          case 'ADDED':
          case 'MODIFIED': {
            const item = o.fromWatch(obj);
            state.items.set(o.key(item), item);
            resourceVersion = o.resourceVersionOf(item) ?? resourceVersion;
            o.onChange();
            break;
          }
          case 'DELETED': {
            const item = o.fromWatch(obj);
            state.items.delete(o.key(item));
            resourceVersion = o.resourceVersionOf(item) ?? resourceVersion;
            o.onChange();
            break;
          }
          case 'BOOKMARK':
            resourceVersion = rv ?? resourceVersion;
            break;
          case 'ERROR': {
            const status = obj as { code?: number; message?: string };
            if (status?.code === 410) expired = true;
            else failed = new ApiException(status?.code ?? 500, 'watch error', JSON.stringify(obj), {});
            controller?.abort();
            break;
          }
        }
      };
      const done = (err: unknown) => {
        if (expired) return finish({ kind: 'expired' });
        if (failed) return finish({ kind: 'error', error: failed });
        if (httpStatus(err) === 410) return finish({ kind: 'expired' });
        // client-node reports a non-200 watch response as an Error with statusCode and no body.
        const code = httpStatus(err);
        if (code !== undefined) return finish({ kind: 'error', error: new ApiException(code, (err as Error).message, undefined, {}) });
        if (err && !o.signal.aborted && (err as { name?: string }).name !== 'AbortError') return finish({ kind: 'error', error: err });
        finish({ kind: 'closed' });
      };
      // The server closes the stream after timeoutSeconds; a fresh one is opened from the last position, as client-go does.
      const query = { ...o.query, resourceVersion: from, allowWatchBookmarks: true, timeoutSeconds: 300 };
      new Watch(o.kubeConfig).watch(o.path, query, onEvent, done).then(
        (c) => {
          controller = c;
          if (o.signal.aborted) c.abort();
        },
        (e: unknown) => finish({ kind: 'error', error: e }),
      );
    });

  const loop = async () => {
    while (!o.signal.aborted) {
      if (resourceVersion === undefined) {
        try {
          const l = await o.list(o.signal);
          state.items.clear();
          for (const item of l.items) state.items.set(o.key(item), item);
          resourceVersion = l.resourceVersion;
          state.synced = true;
          state.lists += 1;
          backoffMs = 0;
          o.onChange();
        } catch (e) {
          if (o.signal.aborted) return;
          if (!isTransient(e)) return o.onFatal(e);
          o.onTransient?.(e);
          await backoff();
          continue;
        }
      }
      const started = Date.now();
      const out = await watchOnce(resourceVersion);
      if (o.signal.aborted) return;
      if (out.kind === 'expired') {
        resourceVersion = undefined;
        continue;
      }
      if (out.kind === 'error') {
        if (!isTransient(out.error)) return o.onFatal(out.error);
        o.onTransient?.(out.error);
        await backoff();
        continue;
      }
      if (Date.now() - started < SHORT_WATCH_MS) await backoff();
      else backoffMs = 0;
    }
  };
  loop().catch((e: unknown) => o.onFatal(e));
  return state;
}
