/**
 * The object store, standing in for etcd plus the API server's watch cache: one global, monotonically
 * increasing resourceVersion, a bounded window of past events (a watch from before the window is 410
 * Expired), and listeners that controllers and watch streams subscribe to.
 */
import { randomUUID } from 'node:crypto';
import { groupVersion, resourceByName } from './discovery.ts';
import { alreadyExists, conflict, notFound } from './status.ts';
import type { KubeObject } from './types.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: EventType;
  resource: string;
  rv: number;
  object: KubeObject;
  /** The object before a MODIFIED or DELETED; a selector watch needs it to see an object leave its selection. */
  prev?: KubeObject;
}

export type Listener = (e: StoreEvent) => void;

/** Resources whose metadata.generation counts spec changes (what observedGeneration is compared with). */
const GENERATIONAL = new Set(['deployments', 'replicasets', 'statefulsets', 'horizontalpodautoscalers']);

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function clone<T>(o: T): T {
  return structuredClone(o);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class Store {
  private rv = 1000;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly log: StoreEvent[] = [];
  /** Events with rv greater than this are in the log; resuming from an older rv is 410. */
  private compactedThrough = 1000;
  private readonly listeners = new Set<Listener>();
  private readonly pending: StoreEvent[] = [];
  private delivering = false;

  constructor(private readonly window: number) {}

  currentRv(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch can resume from. */
  oldestResumable(): number {
    return this.compactedThrough;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events after `rv`, or 'expired' when some of them have already left the window. */
  eventsSince(rv: number): StoreEvent[] | 'expired' {
    if (rv < this.compactedThrough) return 'expired';
    return this.log.filter((e) => e.rv > rv);
  }

  /** Forget all history, as etcd compaction does: every watch from an earlier resourceVersion gets 410. */
  compact(): void {
    this.log.length = 0;
    this.compactedThrough = this.rv;
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let b = this.objects.get(resource);
    if (!b) {
      b = new Map();
      this.objects.set(resource, b);
    }
    return b;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.objects.get(resource)?.get(keyOf(namespace, name));
    return o && clone(o);
  }

  mustGet(resource: string, namespace: string | undefined, name: string): KubeObject {
    const o = this.get(resource, namespace, name);
    if (!o) throw notFound({ resource, group: resourceByName(resource).group, name });
    return o;
  }

  /** Objects of a resource, optionally in one namespace, sorted by namespace and name as the API returns them. */
  list(resource: string, namespace?: string, filter: (o: KubeObject) => boolean = () => true): KubeObject[] {
    const all = [...(this.objects.get(resource)?.values() ?? [])];
    return all
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .filter(filter)
      .sort((a, b) => keyOf(a.metadata.namespace, a.metadata.name!).localeCompare(keyOf(b.metadata.namespace, b.metadata.name!)))
      .map(clone);
  }

  create(resource: string, input: KubeObject): KubeObject {
    const t = resourceByName(resource);
    const o = clone(input);
    const name = o.metadata.name!;
    if (this.bucket(resource).has(keyOf(o.metadata.namespace, name))) throw alreadyExists({ resource, group: t.group, name });
    o.apiVersion = groupVersion(t);
    o.kind = t.kind;
    const m = o.metadata;
    m.uid = randomUUID();
    m.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (GENERATIONAL.has(resource)) m.generation = 1;
    return this.commit('ADDED', resource, o);
  }

  /**
   * Replace an object. `expectRv` is the client's metadata.resourceVersion: a stale one is the 409 that
   * optimistic concurrency relies on. Identity fields the client cannot change are kept from the stored copy.
   */
  update(resource: string, input: KubeObject, expectRv?: string): KubeObject {
    return this.write(resource, input, expectRv, false);
  }

  /** A write by the server itself (kubelet, controllers, graceful deletion), which may set deletion fields. */
  updateAsServer(resource: string, input: KubeObject): KubeObject {
    return this.write(resource, input, undefined, true);
  }

  private write(resource: string, input: KubeObject, expectRv: string | undefined, asServer: boolean): KubeObject {
    const t = resourceByName(resource);
    const name = input.metadata.name!;
    const current = this.objects.get(resource)?.get(keyOf(input.metadata.namespace, name));
    if (!current) throw notFound({ resource, group: t.group, name });
    if (expectRv !== undefined && expectRv !== '' && expectRv !== current.metadata.resourceVersion)
      throw conflict({ resource, group: t.group, name });
    const o = clone(input);
    o.apiVersion = current.apiVersion;
    o.kind = current.kind;
    o.metadata.uid = current.metadata.uid;
    o.metadata.creationTimestamp = current.metadata.creationTimestamp;
    // Only the server sets or clears deletion: a client PUT cannot un-delete a terminating pod.
    if (!asServer) {
      delete o.metadata.deletionTimestamp;
      delete o.metadata.deletionGracePeriodSeconds;
      if (current.metadata.deletionTimestamp) {
        o.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
        o.metadata.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
      }
    }
    if (GENERATIONAL.has(resource)) {
      o.metadata.generation = (current.metadata.generation ?? 1) + (sameJson(o.spec, current.spec) ? 0 : 1);
    }
    if (
      sameJson(
        { ...o, metadata: { ...o.metadata, resourceVersion: undefined } },
        { ...current, metadata: { ...current.metadata, resourceVersion: undefined } },
      )
    ) {
      // A no-op write does not bump the resourceVersion or wake watchers, like the real API server.
      return clone(current);
    }
    return this.commit('MODIFIED', resource, o, current);
  }

  remove(resource: string, namespace: string | undefined, name: string): KubeObject {
    const t = resourceByName(resource);
    const current = this.objects.get(resource)?.get(keyOf(namespace, name));
    if (!current) throw notFound({ resource, group: t.group, name });
    return this.commit('DELETED', resource, clone(current), current);
  }

  private commit(type: EventType, resource: string, o: KubeObject, prev?: KubeObject): KubeObject {
    this.rv += 1;
    o.metadata.resourceVersion = String(this.rv);
    const key = keyOf(o.metadata.namespace, o.metadata.name!);
    if (type === 'DELETED') this.bucket(resource).delete(key);
    else this.bucket(resource).set(key, o);
    const event: StoreEvent = { type, resource, rv: this.rv, object: clone(o), ...(prev ? { prev: clone(prev) } : {}) };
    this.log.push(event);
    while (this.log.length > this.window) {
      const dropped = this.log.shift()!;
      this.compactedThrough = dropped.rv;
    }
    this.pending.push(event);
    this.deliver();
    return clone(o);
  }

  /**
   * Listeners may write (a controller reacting to an event); their events queue behind the current one,
   * so every listener sees events in resourceVersion order.
   */
  private deliver(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let e = this.pending.shift(); e; e = this.pending.shift()) {
        for (const l of [...this.listeners]) l(e);
      }
    } finally {
      this.delivering = false;
    }
  }
}
