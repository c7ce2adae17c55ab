// An informer that never stays down: list (in pages), then watch from the list's resourceVersion
// with bookmarks; re-watch at once when the server ends the stream, re-list on 410 Gone (and deliver
// the deletes the re-list reveals), restart with backoff on any other failure. Its own code rather
// than client-node's makeInformer, whose import costs about 90 MB of RSS (docs/architecture.md).
// Cached objects are transformed first: managedFields are dropped (as controller-runtime's
// TransformStripManagedFields does); nothing in the operator reads them and they are large on pods.
import { KubeApiError, type ListWatchApi, type WatchEvent } from './kube-client.js';

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
  /** Objects per list page (limit/continue). */
  pageSize?: number;
  /** Server-side watch timeout; each watch asks for a random value between this and twice it. */
  watchTimeoutSeconds?: number;
  /**
   * A watch with no byte for this long is taken for a dead connection and restarted. Default: the
   * watch's own timeout plus 30 s (the server should have ended the stream by then).
   */
  idleTimeoutMs?: number;
  onLifecycle?: (event: InformerLifecycleEvent, err?: unknown) => void;
  /** An event handler threw; the informer carries on. */
  onHandlerError?: (err: unknown) => void;
}

/** The values an object is filed under in the informer's index (see indexes.ts). */
export type IndexFn<T> = (obj: T) => string[];

export interface ObjectHandlers<T> {
  onAdd?: (obj: T) => void;
  onUpdate?: (obj: T) => void;
  onDelete?: (obj: T) => void;
}

interface Meta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  managedFields?: unknown;
}

const meta = (obj: { metadata?: object }): Meta => (obj.metadata ?? {}) as Meta;

/** The transform applied to every object before it is cached and handed to handlers. */
export function stripManagedFields<T extends { metadata?: object }>(obj: T): T {
  if (obj.metadata && 'managedFields' in obj.metadata) delete (obj.metadata as Meta).managedFields;
  return obj;
}

class ResourceExpired extends Error {}

/** T is the operator's own type of the object; the cache stores what the API server sent. */
export class ResilientInformer<T extends { metadata?: object }> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: Array<ObjectHandlers<T>> = [];
  private resourceVersion: string | undefined;
  private failures = 0;
  private stopped = true;
  private synced = false;
  private loop: Promise<void> | undefined;
  private watchAbort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private listing = false;
  /** index value -> object key (namespace/name) -> object; kept in step with the cache. */
  private readonly index = new Map<string, Map<string, T>>();
  private readonly indexed = new Map<string, string[]>();
  readonly resource: string;

  constructor(
    private readonly api: ListWatchApi,
    private readonly opts: ResilientInformerOptions,
    private readonly indexFn?: IndexFn<T>,
  ) {
    this.resource = opts.resource;
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

  on(handlers: ObjectHandlers<T>): void {
    this.handlers.push(handlers);
  }

  /** Starts listing and watching; resolves after the first list attempt (failed ones are retried). */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    let attempted!: () => void;
    const firstAttempt = new Promise<void>((r) => (attempted = r));
    this.loop = this.run(attempted);
    await firstAttempt;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watchAbort?.abort();
    this.wake?.();
    // A list in flight is not waited for (it has its own timeout; its answer is ignored once stopped).
    if (!this.listing) await this.loop;
  }

  /** True once the first list succeeded (the cache holds a full view). */
  hasSynced(): boolean {
    return this.synced;
  }

  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => meta(o).namespace === namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }

  private async run(attempted: () => void): Promise<void> {
    let relist = true;
    let quickCloses = 0;
    while (!this.stopped) {
      try {
        if (relist) {
          this.listing = true;
          await this.relist().finally(() => (this.listing = false));
          relist = false;
        }
        attempted();
        const opened = Date.now();
        const outcome = await this.watchOnce();
        if (outcome === 'expired') relist = true;
        // A server (or proxy) that ends every watch at once must not make this a busy loop.
        quickCloses = outcome === 'closed' && Date.now() - opened < 1000 ? quickCloses + 1 : 0;
        if (quickCloses > 1) await this.sleep(this.opts.restartBaseMs ?? 500);
      } catch (err) {
        attempted();
        if (this.stopped) break;
        this.opts.onLifecycle?.('error', err);
        await this.sleep(this.backoffDelay());
        if (this.stopped) break;
        this.opts.onLifecycle?.('restart');
        relist = true;
      }
    }
  }

  private backoffDelay(): number {
    const base = this.opts.restartBaseMs ?? 500;
    const max = this.opts.restartMaxMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** Math.min(this.failures, 16));
    this.failures++;
    return delay;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => (this.wake = undefined));
  }

  /** Lists every page, then reconciles the cache with it: adds, updates and missed deletes. */
  private async relist(): Promise<void> {
    const pageSize = this.opts.pageSize ?? 500;
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv: string | undefined;
    let paged = true;
    for (;;) {
      let page;
      try {
        page = await this.api.list<T>(this.opts.path, {
          labelSelector: this.opts.labelSelector,
          limit: paged ? pageSize : undefined,
          continue: cont,
        });
      } catch (err) {
        // The continue token expired mid-list: start over in one unpaged request, as client-go does.
        if (!(cont && err instanceof KubeApiError && err.statusCode === 410)) throw err;
        fresh.clear();
        cont = undefined;
        paged = false;
        continue;
      }
      for (const obj of page.items) {
        stripManagedFields(obj);
        fresh.set(keyOf(obj), obj);
      }
      rv = page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
      if (!cont) break;
    }
    if (this.stopped) return;
    const gone = [...this.cache].filter(([key]) => !fresh.has(key));
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.emit('onAdd', obj);
      else if (meta(old).resourceVersion !== meta(obj).resourceVersion) this.emit('onUpdate', obj);
    }
    for (const [key, obj] of gone) {
      this.cache.delete(key);
      this.emit('onDelete', obj);
    }
    this.resourceVersion = rv;
    this.synced = true;
    this.failures = 0;
    this.opts.onLifecycle?.('list');
  }

  /** One watch, until the server ends it ('closed'), or the resourceVersion is too old ('expired'). */
  private async watchOnce(): Promise<'closed' | 'expired'> {
    const abort = new AbortController();
    this.watchAbort = abort;
    const base = this.opts.watchTimeoutSeconds ?? 60;
    const timeoutSeconds = Math.round(base * (1 + Math.random())); // spread the informers' re-watches
    const idleMs = this.opts.idleTimeoutMs ?? timeoutSeconds * 1000 + 30_000;
    let idle = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        idle = true;
        abort.abort();
      }, idleMs);
    };
    try {
      armIdle();
      if (this.stopped) return 'closed';
      const events = await this.api.watch(
        this.opts.path,
        {
          labelSelector: this.opts.labelSelector,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
        },
        abort.signal,
      );
      this.opts.onLifecycle?.('connect');
      for await (const event of events) {
        armIdle();
        this.apply(event);
      }
      return 'closed';
    } catch (err) {
      if (err instanceof ResourceExpired) return 'expired';
      if (err instanceof KubeApiError && err.statusCode === 410) return 'expired';
      if (this.stopped) return 'closed';
      if (idle)
        throw new Error(`${this.resource} watch: no data for ${idleMs} ms; the connection is taken for dead`);
      throw err;
    } finally {
      clearTimeout(idleTimer);
      this.watchAbort = undefined;
      if (!abort.signal.aborted) abort.abort(); // release the connection if the loop left early
    }
  }

  private apply(event: WatchEvent): void {
    if (event.type === 'ERROR') {
      const status = event.object;
      if (status.code === 410) throw new ResourceExpired(status.message ?? 'resource version expired');
      throw new KubeApiError(
        status.code ?? 500,
        status.reason ?? 'WatchError',
        `${this.resource} watch: ${status.message ?? JSON.stringify(status)}`,
      );
    }
    const obj = event.object as unknown as T;
    const rv = meta(obj).resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (event.type === 'BOOKMARK') return;
    stripManagedFields(obj);
    const key = keyOf(obj);
    this.failures = 0; // a delivered event proves the watch works again
    if (event.type === 'DELETED') {
      this.cache.delete(key);
      this.emit('onDelete', obj);
      return;
    }
    const existed = this.cache.has(key);
    this.cache.set(key, obj);
    this.emit(existed ? 'onUpdate' : 'onAdd', obj);
  }

  private emit(kind: keyof ObjectHandlers<T>, obj: T): void {
    for (const h of this.handlers) {
      try {
        h[kind]?.(obj);
      } catch (err) {
        this.opts.onHandlerError?.(err);
      }
    }
  }

  private fileObject(obj: T): void {
    const key = keyOf(obj);
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
    const key = keyOf(obj);
    for (const v of this.indexed.get(key) ?? []) this.removeFrom(v, key);
    this.indexed.delete(key);
  }

  private removeFrom(value: string, key: string): void {
    const objs = this.index.get(value);
    objs?.delete(key);
    if (objs?.size === 0) this.index.delete(value);
  }
}

function keyOf(obj: { metadata?: object }): string {
  const m = meta(obj);
  return `${m.namespace ?? ''}/${m.name ?? ''}`;
}
