/**
 * Watch streams: newline-delimited JSON events over one chunked response, as the API server sends them.
 * Resuming from a resourceVersion replays the retained events after it; one from before the window gets a
 * single `ERROR` event carrying a 410 Expired Status (with HTTP 200, as the real server does) and the end of
 * the stream, so clients must re-list. Streams end on `res` close: `req` closes as soon as its body is read.
 */
import type { ServerResponse } from 'node:http';
import { groupVersion, type ResourceType } from './discovery.ts';
import { fieldPredicate, labelPredicate } from './selectors.ts';
import { gone, type ApiError } from './status.ts';
import type { Store, StoreEvent } from './store.ts';
import type { KubeObject } from './types.ts';

export interface WatchRequest {
  t: ResourceType;
  namespace?: string;
  /** A watch on one object (`/watch/namespaces/ns/pods/name`) is a watch with a name field selector. */
  name?: string;
  query: URLSearchParams;
}

export interface WatchContext {
  store: Store;
  bookmarkIntervalMs: number;
  /** Open streams and the resource each watches, so a fault can drop them and tests can count them. */
  streams: Map<ServerResponse, string>;
  /** True once when a fault asks for the next resumed watch (of this resource) to be expired. */
  takeExpiry: (resource: string) => boolean;
}

type Sent = { type: string; object: unknown };

export function serveWatch(res: ServerResponse, w: WatchRequest, ctx: WatchContext): void {
  const { store } = ctx;
  const q = w.query;
  const labels = labelPredicate(q.get('labelSelector') ?? undefined);
  const fieldSel = [q.get('fieldSelector'), w.name ? `metadata.name=${w.name}` : null].filter(Boolean).join(',');
  const fields = fieldPredicate(w.t.resource, fieldSel || undefined);
  const matches = (o: KubeObject | undefined) =>
    o !== undefined && (w.namespace === undefined || o.metadata.namespace === w.namespace) && labels(o.metadata.labels) && fields(o);
  const rvParam = q.get('resourceVersion') ?? '';
  const bookmarks = q.get('allowWatchBookmarks') === 'true';
  const initial = rvParam === '' || rvParam === '0' || q.get('sendInitialEvents') === 'true';

  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  const send = (e: Sent) => {
    if (!res.writableEnded) res.write(JSON.stringify(e) + '\n');
  };
  const expire = (err: ApiError) => {
    send({ type: 'ERROR', object: err.body });
    res.end();
  };

  if (!initial) {
    const from = Number(rvParam);
    const past = Number.isFinite(from) ? store.eventsSince(from) : 'expired';
    if (ctx.takeExpiry(w.t.resource) || past === 'expired') {
      expire(gone(`too old resource version: ${rvParam} (${store.oldestResumable()})`));
      return;
    }
    for (const e of past) translate(e);
  } else {
    for (const o of store.list(w.t.resource, w.namespace, (o) => matches(o))) send({ type: 'ADDED', object: o });
    if (q.get('sendInitialEvents') === 'true' && bookmarks) {
      // The watch-list protocol: the end of the initial state is a bookmark with this annotation.
      send({ type: 'BOOKMARK', object: bookmarkObject(w.t, store.currentRv(), { 'k8s.io/initial-events-end': 'true' }) });
    }
  }

  /** A modification that moves an object into or out of the selection is an ADDED or DELETED for this watcher. */
  function translate(e: StoreEvent): void {
    if (e.resource !== w.t.resource) return;
    const now = e.type !== 'DELETED' && matches(e.object);
    const before = matches(e.prev);
    if (e.type === 'ADDED' && now) send({ type: 'ADDED', object: e.object });
    else if (e.type === 'MODIFIED' && now) send({ type: before ? 'MODIFIED' : 'ADDED', object: e.object });
    else if (e.type === 'MODIFIED' && before)
      send({ type: 'DELETED', object: { ...e.prev, metadata: { ...e.prev!.metadata, resourceVersion: String(e.rv) } } });
    else if (e.type === 'DELETED' && before) send({ type: 'DELETED', object: e.object });
  }

  const unsubscribe = store.subscribe(translate);
  const timers: NodeJS.Timeout[] = [];
  if (bookmarks)
    timers.push(setInterval(() => send({ type: 'BOOKMARK', object: bookmarkObject(w.t, store.currentRv()) }), ctx.bookmarkIntervalMs));
  const timeoutSeconds = Number(q.get('timeoutSeconds') ?? '');
  if (timeoutSeconds > 0) timers.push(setTimeout(() => res.end(), timeoutSeconds * 1000));
  ctx.streams.set(res, w.t.resource);
  res.on('close', () => {
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    ctx.streams.delete(res);
  });
}

function bookmarkObject(t: ResourceType, rv: number, annotations?: Record<string, string>): unknown {
  return { kind: t.kind, apiVersion: groupVersion(t), metadata: { resourceVersion: String(rv), ...(annotations ? { annotations } : {}) } };
}
