/**
 * HTTP routing and the REST verbs: URL -> (resource, namespace, name, subresource, verb), authentication and
 * RBAC, then list/get/create/update/patch/delete/watch against the store, with the API server's status codes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { discovery, findResource, groupVersion, resourceByName, type ResourceType } from './discovery.ts';
import { applyDefaults, validate } from './defaults.ts';
import { deletePod } from './kubelet.ts';
import { applyPatch, TestFailed } from './patch.ts';
import { randomSuffix } from './pod-controllers.ts';
import { authenticate, authorize } from './rbac.ts';
import { fieldPredicate, labelPredicate, selectorString } from './selectors.ts';
import { ApiError, badRequest, conflict, forbidden, gone, invalid, methodNotAllowed, notFound, pathNotFound, success } from './status.ts';
import type { Store } from './store.ts';
import { toTable, wantsTable } from './tables.ts';
import type { Json, KubeObject, RbacUser, RequestRecord } from './types.ts';
import { serveWatch, type WatchContext } from './watch.ts';

export interface Route {
  t: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  /** `/api/v1/watch/...`: the legacy watch paths, still served and still used by some clients. */
  watchPath: boolean;
}

export interface HttpContext extends WatchContext {
  tokens?: Record<string, RbacUser>;
  serverAddress: () => string;
  requests: RequestRecord[];
  delayMs: () => number;
  /** faults.ts: a test's hook run before this request is served. */
  before?: (method: string, path: string) => Promise<void> | undefined;
}

export function parseRoute(path: string): Route | undefined {
  const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/(.+)$/.exec(path);
  if (!m) return undefined;
  const [group, version] = m[1] ? ['', m[1]] : [m[2]!, m[3]!];
  let segs = m[4]!.split('/').filter(Boolean).map(decodeURIComponent);
  const watchPath = segs[0] === 'watch';
  if (watchPath) segs = segs.slice(1);
  let namespace: string | undefined;
  // `namespaces/x/pods/...` is a namespaced resource; `namespaces/x` and `namespaces/x/status` is the namespace itself.
  if (segs[0] === 'namespaces' && segs.length >= 3 && findResource(group, version, segs[2]!)) {
    namespace = segs[1];
    segs = segs.slice(2);
  }
  const t = findResource(group, version, segs[0] ?? '');
  if (!t || segs.length > 3) return undefined;
  if (t.namespaced !== (namespace !== undefined) && segs.length > 1) return undefined;
  const subresource = segs[2];
  if (subresource !== undefined && !t.subresources.includes(subresource)) return undefined;
  return { t, namespace, name: segs[1], subresource, watchPath };
}

function verbOf(method: string, r: Route, q: URLSearchParams): string {
  const watch = r.watchPath || q.get('watch') === 'true' || q.get('watch') === '1';
  switch (method) {
    case 'GET':
      return watch ? 'watch' : r.name ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return r.name ? 'delete' : 'deletecollection';
    default:
      throw methodNotAllowed(method);
  }
}

async function readBody(req: IncomingMessage): Promise<Json | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache, private',
  });
  res.end(text);
}

/** Items in a list response carry no kind/apiVersion, as the API server sends them. */
function bare(o: KubeObject): KubeObject {
  const { kind: _k, apiVersion: _a, ...rest } = o;
  return rest as KubeObject;
}

export async function handle(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://kube-api');
  const record: RequestRecord = {
    method: req.method ?? 'GET',
    path: url.pathname,
    query: url.search,
    verb: '',
    resource: '',
    ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
    status: 200,
  };
  res.on('finish', () => ctx.requests.push({ ...record, status: res.statusCode }));
  try {
    const delay = ctx.delayMs();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const user = authenticate(ctx.tokens, req.headers.authorization);
    if (user) record.user = user.user;
    const doc = req.method === 'GET' ? discovery(url.pathname.replace(/\/$/, '') || '/', ctx.serverAddress()) : undefined;
    if (doc !== undefined) return json(res, 200, doc);
    const route = parseRoute(url.pathname);
    if (!route) throw pathNotFound();
    const verb = verbOf(req.method ?? 'GET', route, url.searchParams);
    Object.assign(record, { verb, resource: route.t.resource, namespace: route.namespace, name: route.name });
    authorize(user, {
      verb,
      group: route.t.group,
      resource: route.t.resource,
      subresource: route.subresource,
      namespace: route.namespace,
      name: route.name,
    });
    if (verb === 'watch')
      return serveWatch(res, { t: route.t, namespace: route.namespace, name: route.name, query: url.searchParams }, ctx);
    const body = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method ?? '') ? await readBody(req) : undefined;
    await ctx.before?.(record.method, url.pathname);
    const out = respond(ctx.store, verb, route, url.searchParams, body, req.headers);
    return json(res, out.code, out.body);
  } catch (e) {
    if (e instanceof ApiError) return json(res, e.code, e.body);
    const err = e as Error;
    return json(res, 500, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `kube-api test server: ${err.stack ?? err.message}`,
      reason: 'InternalError',
      code: 500,
    });
  }
}

interface Out {
  code: number;
  body: unknown;
}

function respond(
  store: Store,
  verb: string,
  r: Route,
  q: URLSearchParams,
  body: Json | undefined,
  headers: IncomingMessage['headers'],
): Out {
  const dryRun = q.get('dryRun') === 'All';
  switch (verb) {
    case 'list':
      return { code: 200, body: list(store, r, q, headers.accept) };
    case 'get': {
      const o = store.mustGet(r.t.resource, r.namespace, r.name!);
      if (r.subresource === 'scale') return { code: 200, body: scaleOf(o) };
      if (wantsTable(headers.accept) && !r.subresource)
        return { code: 200, body: toTable(r.t.resource, [o], o.metadata.resourceVersion!, q.get('includeObject')) };
      return { code: 200, body: o };
    }
    case 'create':
      return { code: 201, body: create(store, r, body, dryRun) };
    case 'update':
      return { code: 200, body: update(store, r, body, dryRun) };
    case 'patch':
      return { code: 200, body: patch(store, r, body, headers['content-type'] ?? '', dryRun) };
    case 'delete':
      return remove(store, r, deleteOptions(q, body), dryRun);
    case 'deletecollection': {
      const items = selected(store, r, q);
      if (!dryRun) for (const o of items) remove(store, { ...r, name: o.metadata.name! }, deleteOptions(q, body), false);
      return {
        code: 200,
        body: {
          kind: `${r.t.kind}List`,
          apiVersion: groupVersion(r.t),
          metadata: { resourceVersion: String(store.currentRv()) },
          items: items.map(bare),
        },
      };
    }
  }
  throw methodNotAllowed(verb);
}

function selected(store: Store, r: Route, q: URLSearchParams): KubeObject[] {
  const labels = labelPredicate(q.get('labelSelector') ?? undefined);
  const fields = fieldPredicate(r.t.resource, q.get('fieldSelector') ?? undefined);
  return store.list(r.t.resource, r.namespace, (o) => labels(o.metadata.labels) && fields(o));
}

/** Paging: the continue token names where the next page starts and the list's resourceVersion. */
function list(store: Store, r: Route, q: URLSearchParams, accept: string | undefined): unknown {
  let items = selected(store, r, q);
  const rv = String(store.currentRv());
  const token = q.get('continue');
  if (token) {
    let start: { rv: number; after: string };
    try {
      start = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { rv: number; after: string };
    } catch {
      throw badRequest('continue key is not valid: illegal base64 data');
    }
    if (start.rv < store.oldestResumable()) {
      throw gone(
        'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
      );
    }
    items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > start.after);
  }
  const limit = Number(q.get('limit') ?? 0);
  const metadata: Record<string, unknown> = { resourceVersion: rv };
  if (limit > 0 && items.length > limit) {
    const last = items[limit - 1]!;
    metadata.continue = Buffer.from(
      JSON.stringify({ rv: Number(rv), after: `${last.metadata.namespace ?? ''}/${last.metadata.name}` }),
    ).toString('base64url');
    metadata.remainingItemCount = items.length - limit;
    items = items.slice(0, limit);
  }
  if (wantsTable(accept)) return { ...(toTable(r.t.resource, items, rv, q.get('includeObject')) as object), metadata };
  return { kind: `${r.t.kind}List`, apiVersion: groupVersion(r.t), metadata, items: items.map(bare) };
}

function asObject(body: Json | undefined, r: Route): KubeObject {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body of the request was not a JSON object');
  const o = body as unknown as KubeObject;
  o.metadata ??= {};
  if (o.kind !== undefined && o.kind !== r.t.kind && r.subresource !== 'scale') {
    throw badRequest(`the API version in the data (${o.apiVersion}) does not match the expected API version (${groupVersion(r.t)})`);
  }
  if (r.namespace !== undefined && o.metadata.namespace !== undefined && o.metadata.namespace !== r.namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  if (r.namespace !== undefined) o.metadata.namespace = r.namespace;
  return o;
}

function create(store: Store, r: Route, body: Json | undefined, dryRun: boolean): KubeObject {
  if (r.name || r.subresource) throw methodNotAllowed('POST');
  if (r.t.namespaced && r.namespace === undefined) throw methodNotAllowed('POST');
  const o = asObject(body, r);
  if (r.namespace !== undefined) {
    const ns = store.get('namespaces', undefined, r.namespace);
    if (!ns) throw notFound({ resource: 'namespaces', group: '', name: r.namespace });
    if (ns.metadata.deletionTimestamp) {
      throw forbidden(
        `${r.t.resource} "${o.metadata.name ?? ''}" is forbidden: unable to create new content in namespace ${r.namespace} because it is being terminated`,
        { resource: r.t.resource, group: r.t.group },
      );
    }
  }
  if (!o.metadata.name && o.metadata.generateName) o.metadata.name = `${o.metadata.generateName}${randomSuffix()}`;
  delete o.status;
  applyDefaults(r.t.resource, o);
  validate(r.t, o);
  if (dryRun) return { ...o, apiVersion: groupVersion(r.t), kind: r.t.kind };
  return store.create(r.t.resource, o);
}

/** What a write through the main resource, `/status` or `/scale` may change of the stored object. */
function merged(r: Route, current: KubeObject, incoming: KubeObject): KubeObject {
  if (r.subresource === 'status') return { ...current, status: incoming.status };
  if (r.subresource === 'scale') {
    const replicas = incoming.spec?.replicas;
    if (typeof replicas !== 'number' || replicas < 0) {
      throw invalid({ kind: 'Scale', group: 'autoscaling', resource: r.t.resource, name: r.name! }, [
        {
          reason: 'FieldValueInvalid',
          field: 'spec.replicas',
          message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
        },
      ]);
    }
    return { ...current, spec: { ...current.spec, replicas } };
  }
  // Resources with a status subresource ignore status in writes to the main resource.
  return { ...incoming, status: current.status };
}

function update(store: Store, r: Route, body: Json | undefined, dryRun: boolean): unknown {
  if (!r.name) throw methodNotAllowed('PUT');
  const incoming = asObject(body, r);
  if (incoming.metadata.name !== undefined && incoming.metadata.name !== r.name) {
    throw badRequest(`the name of the object (${incoming.metadata.name}) does not match the name on the URL (${r.name})`);
  }
  incoming.metadata.name = r.name;
  const current = store.mustGet(r.t.resource, r.namespace, r.name);
  // Custom resources do not AllowUnconditionalUpdate (apiextensions-apiserver pkg/registry/customresource/strategy.go),
  // so the generic registry's Update (apiserver pkg/registry/generic/registry/store.go) refuses a PUT without
  // metadata.resourceVersion with NewInvalid over the *resource* name: `clusters.postgresql.cnpg.io "x" is invalid: ...`.
  if (r.t.custom && !incoming.metadata.resourceVersion) {
    throw invalid({ kind: r.t.resource, group: r.t.group, resource: r.t.resource, name: r.name }, [
      { reason: 'FieldValueInvalid', field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update' },
    ]);
  }
  return write(store, r, current, merged(r, current, incoming), incoming.metadata.resourceVersion, dryRun);
}

function patch(store: Store, r: Route, body: Json | undefined, contentType: string, dryRun: boolean): unknown {
  if (!r.name) throw methodNotAllowed('PATCH');
  if (body === undefined) throw badRequest('the body of the request was empty');
  const current = store.mustGet(r.t.resource, r.namespace, r.name);
  const doc = r.subresource === 'scale' ? scaleOf(current) : current;
  let patched: KubeObject;
  try {
    patched = applyPatch(
      contentType,
      doc as unknown as Json,
      body,
      r.t.custom === true && r.subresource !== 'scale',
    ) as unknown as KubeObject;
  } catch (e) {
    if (e instanceof TestFailed)
      throw invalid({ kind: r.t.kind, group: r.t.group, resource: r.t.resource, name: r.name }, [
        { reason: 'FieldValueInvalid', message: e.message },
      ]);
    throw e;
  }
  if (!patched || typeof patched !== 'object' || !patched.metadata) throw badRequest('the patch removed the object metadata');
  if (patched.metadata.name !== r.name) throw badRequest('the patch changed metadata.name, which cannot change');
  const precondition = patched.metadata.resourceVersion !== current.metadata.resourceVersion ? patched.metadata.resourceVersion : undefined;
  return write(store, r, current, merged(r, current, patched), precondition, dryRun);
}

function write(store: Store, r: Route, current: KubeObject, next: KubeObject, expectRv: string | undefined, dryRun: boolean): unknown {
  if (expectRv !== undefined && expectRv !== '' && expectRv !== current.metadata.resourceVersion) {
    throw conflict({ resource: r.t.resource, group: r.t.group, name: r.name! });
  }
  validate(r.t, next);
  if (dryRun) return r.subresource === 'scale' ? scaleOf(next) : next;
  const saved = store.update(r.t.resource, next, undefined);
  // deleteForEmptyFinalizers (generic registry store.go Update): an object being deleted goes when its last
  // finalizer is removed; a pod only once its grace period is over (0), i.e. after the kubelet's final delete.
  const m = saved.metadata;
  // (Namespaces are emptied by the namespace controller, which removes them itself.)
  if (
    r.t.resource !== 'namespaces' &&
    m.deletionTimestamp &&
    (m.finalizers ?? []).length === 0 &&
    (r.t.resource !== 'pods' || (m.deletionGracePeriodSeconds ?? 0) === 0)
  ) {
    store.remove(r.t.resource, m.namespace, m.name!);
  }
  return r.subresource === 'scale' ? scaleOf(saved) : saved;
}

function scaleOf(o: KubeObject): unknown {
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      uid: o.metadata.uid,
      resourceVersion: o.metadata.resourceVersion,
      creationTimestamp: o.metadata.creationTimestamp,
    },
    spec: { replicas: o.spec?.replicas ?? 0 },
    status: { replicas: o.status?.replicas ?? 0, selector: selectorString(o.spec?.selector) },
  };
}

interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** DeleteOptions come in the body (client-node, kubectl) or as query parameters (curl); the body wins. */
function deleteOptions(q: URLSearchParams, body: Json | undefined): DeleteOptions {
  const b = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as DeleteOptions & { orphanDependents?: boolean };
  const grace = b.gracePeriodSeconds ?? (q.has('gracePeriodSeconds') ? Number(q.get('gracePeriodSeconds')) : undefined);
  if (grace !== undefined && (!Number.isInteger(grace) || grace < 0))
    throw badRequest(`gracePeriodSeconds must be a non-negative integer, got ${grace}`);
  const policy = b.propagationPolicy ?? q.get('propagationPolicy') ?? (b.orphanDependents === true ? 'Orphan' : undefined);
  if (policy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(policy)) {
    throw badRequest(`propagationPolicy: Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`);
  }
  return {
    ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
    ...(policy ? { propagationPolicy: policy } : {}),
    ...(b.preconditions ? { preconditions: b.preconditions } : {}),
  };
}

function remove(store: Store, r: Route, opts: DeleteOptions, dryRun: boolean): Out {
  const o = store.mustGet(r.t.resource, r.namespace, r.name!);
  const target = { resource: r.t.resource, group: r.t.group, name: r.name! };
  if (opts.preconditions?.uid && opts.preconditions.uid !== o.metadata.uid) {
    throw new ApiError({
      ...conflict(target).body,
      message: `Precondition failed: UID in precondition: ${opts.preconditions.uid}, UID in object meta: ${o.metadata.uid}`,
    });
  }
  if (opts.preconditions?.resourceVersion && opts.preconditions.resourceVersion !== o.metadata.resourceVersion) {
    throw new ApiError({
      ...conflict(target).body,
      message: `Precondition failed: ResourceVersion in precondition: ${opts.preconditions.resourceVersion}, ResourceVersion in object meta: ${o.metadata.resourceVersion}`,
    });
  }
  if (dryRun)
    return {
      code: 200,
      body: r.t.resource === 'pods' ? o : success({ name: r.name, group: r.t.group, kind: r.t.resource, uid: o.metadata.uid }),
    };
  if (r.t.resource === 'pods') return { code: 200, body: deletePod(store, o, opts.gracePeriodSeconds) };
  if (r.t.resource !== 'namespaces' && (o.metadata.finalizers ?? []).length > 0) {
    // Finalizers hold the object: it is marked for deletion and stays until they are removed (200 with the object).
    if (o.metadata.deletionTimestamp) return { code: 200, body: o };
    const marked = {
      ...o,
      metadata: { ...o.metadata, deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), deletionGracePeriodSeconds: 0 },
    };
    return { code: 200, body: store.updateAsServer(r.t.resource, marked) };
  }
  if (r.t.resource === 'namespaces') {
    if (o.metadata.deletionTimestamp) return { code: 200, body: o };
    const terminating = {
      ...o,
      metadata: { ...o.metadata, deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      status: { phase: 'Terminating' },
    };
    return { code: 200, body: store.updateAsServer('namespaces', terminating) };
  }
  const dependents = (res: string) =>
    store.list(res, o.metadata.namespace, (d) => (d.metadata.ownerReferences ?? []).some((ref) => ref.uid === o.metadata.uid));
  if (opts.propagationPolicy === 'Orphan') {
    for (const res of ['replicasets', 'pods']) {
      for (const d of dependents(res))
        store.updateAsServer(res, {
          ...d,
          metadata: { ...d.metadata, ownerReferences: (d.metadata.ownerReferences ?? []).filter((ref) => ref.uid !== o.metadata.uid) },
        });
    }
  }
  if (opts.propagationPolicy === 'Foreground') {
    // Simplified foreground deletion: dependents are deleted before the owner, within this request.
    for (const rs of dependents('replicasets'))
      remove(store, { ...r, t: resourceByName('replicasets'), name: rs.metadata.name! }, { propagationPolicy: 'Foreground' }, false);
    for (const p of dependents('pods')) deletePod(store, p, undefined);
  }
  const removed = store.remove(r.t.resource, o.metadata.namespace, r.name!);
  return { code: 200, body: success({ name: r.name, group: r.t.group, kind: r.t.resource, uid: removed.metadata.uid }) };
}
