// A client-node informer that never stays down. client-node 2.x re-lists on 410 and reconnects
// after its own inactivity timeout, but on any other error (API server restarting, connection
// refused, 403/500) it emits `error` and stops; this wrapper restarts it with backoff and reports
// every lifecycle step so the metrics show a flapping watch.
import {
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { KubeApi } from './kube-client.js';

export type InformerLifecycleEvent = 'list' | 'connect' | 'error' | 'restart';

export interface ResilientInformerOptions {
  /** Names the informer in logs and metrics, e.g. `pods`. */
  resource: string;
  /** Collection path, e.g. /api/v1/pods or /apis/apps/v1/namespaces/ns/deployments. */
  path: string;
  labelSelector?: string;
  /** First restart delay after an error; doubles per consecutive failure. */
  restartBaseMs?: number;
  /** Longest delay between restarts. */
  restartMaxMs?: number;
  onLifecycle?: (event: InformerLifecycleEvent, err?: unknown) => void;
}

/** The values an object is filed under in the informer's index (see indexes.ts). */
export type IndexFn<T> = (obj: T) => string[];

export interface ObjectHandlers<T> {
  onAdd?: (obj: T) => void;
  onUpdate?: (obj: T) => void;
  onDelete?: (obj: T) => void;
}

/** T is the operator's own type of the object; the cache stores what the API server sent. */
export class ResilientInformer<T extends { metadata?: object }> {
  private readonly informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private synced = false;
  /** index value -> object key (namespace/name) -> object; kept in step with the cache. */
  private readonly index = new Map<string, Map<string, T>>();
  private readonly indexed = new Map<string, string[]>();
  readonly resource: string;

  constructor(
    kc: KubeConfig,
    api: KubeApi,
    private readonly opts: ResilientInformerOptions,
    private readonly indexFn?: IndexFn<T>,
  ) {
    this.resource = opts.resource;
    const listFn = async () => {
      const query = opts.labelSelector ? { labelSelector: opts.labelSelector } : undefined;
      const list = await api.list<KubernetesObject>(opts.path, query);
      this.synced = true;
      this.failures = 0;
      this.opts.onLifecycle?.('list');
      return { apiVersion: 'v1', kind: 'List', items: list.items, metadata: list.metadata ?? {} };
    };
    this.informer = makeInformer<KubernetesObject>(kc, opts.path, listFn, opts.labelSelector);
    this.informer.on('connect', () => this.opts.onLifecycle?.('connect'));
    // Any delivered event proves the watch works again.
    const healthy = () => (this.failures = 0);
    this.informer.on('add', healthy);
    this.informer.on('update', healthy);
    this.informer.on('delete', healthy);
    this.informer.on('error', (err?: unknown) => this.onError(err));
    // Registered first, so every handler added with on() already sees the index updated.
    if (indexFn)
      this.on({
        onAdd: (o) => this.fileObject(o),
        onUpdate: (o) => this.fileObject(o),
        onDelete: (o) => this.unfile(o),
      });
  }

  /** Cached objects filed under this index value (the indexFn given to the constructor). */
  byIndex(value: string): T[] {
    const objs = this.index.get(value);
    return objs ? [...objs.values()] : [];
  }

  private fileObject(obj: T): void {
    const key = objectKey(obj);
    const values = this.indexFn!(obj);
    const old = this.indexed.get(key) ?? [];
    for (const v of old) if (!values.includes(v)) this.removeFrom(v, key);
    for (const v of values) {
      let objs = this.index.get(v);
      if (!objs) this.index.set(v, (objs = new Map()));
      objs.set(key, obj);
    }
    if (values.length) this.indexed.set(key, values);
    else this.indexed.delete(key);
  }

  private unfile(obj: T): void {
    const key = objectKey(obj);
    for (const v of this.indexed.get(key) ?? []) this.removeFrom(v, key);
    this.indexed.delete(key);
  }

  private removeFrom(value: string, key: string): void {
    const objs = this.index.get(value);
    objs?.delete(key);
    if (objs?.size === 0) this.index.delete(value);
  }

  on(handlers: ObjectHandlers<T>): void {
    const as = (fn: (obj: T) => void) => (obj: KubernetesObject) => fn(obj as unknown as T);
    if (handlers.onAdd) this.informer.on('add', as(handlers.onAdd));
    if (handlers.onUpdate) this.informer.on('update', as(handlers.onUpdate));
    if (handlers.onDelete) this.informer.on('delete', as(handlers.onDelete));
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start().catch((err: unknown) => this.onError(err));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.informer.stop();
  }

  /** True once the first list succeeded (the cache holds a full view). */
  hasSynced(): boolean {
    return this.synced;
  }

  list(namespace?: string): T[] {
    return this.informer.list(namespace) as unknown as T[];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace) as unknown as T | undefined;
  }

  private onError(err: unknown): void {
    if (this.stopped) return; // stop() aborts the watch, which reports as an error
    this.opts.onLifecycle?.('error', err);
    if (this.restartTimer) return;
    const base = this.opts.restartBaseMs ?? 500;
    const max = this.opts.restartMaxMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** Math.min(this.failures, 16));
    this.failures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.opts.onLifecycle?.('restart');
      void this.informer.start().catch((e: unknown) => this.onError(e));
    }, delay);
  }
}

function objectKey(obj: { metadata?: object }): string {
  const m = (obj.metadata ?? {}) as { namespace?: string; name?: string };
  return `${m.namespace ?? ''}/${m.name ?? ''}`;
}
