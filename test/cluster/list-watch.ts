// List, then watch from the list's resourceVersion; re-watch at once when the server closes the
// stream and re-list on 410 Gone. (client-node's informer backs off up to 30 s on quiet
// resources; a kubelet must see a binding or a deletion promptly.)
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { kubeRequest } from './rest.js';
import { sleep } from './wait.js';

interface KubeObject {
  metadata?: { uid?: string; resourceVersion?: string };
}

export interface ListWatchHandlers<T> {
  /** Added or modified, or present in a (re)list. */
  onUpsert(obj: T): void;
  /** Deleted, or missing from a re-list. */
  onDelete(obj: T): void;
  onError?(err: unknown): void;
}

export class ListWatch<T extends KubeObject> {
  private readonly known = new Map<string, T>();
  private resourceVersion: string | undefined;
  private stopped = false;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly kc: KubeConfig,
    /** e.g. /api/v1/pods */
    private readonly path: string,
    private readonly handlers: ListWatchHandlers<T>,
    /** Server-side watch timeout; below client-node's 30 s inactivity abort. */
    private readonly watchTimeoutS = 25,
  ) {}

  /** Resolves once the first list was delivered; keeps watching until stop(). */
  async start(): Promise<void> {
    await this.relist();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.loop;
  }

  private async relist(): Promise<void> {
    const list = await kubeRequest<{ items: T[]; metadata: { resourceVersion: string } }>(this.kc, {
      method: 'GET',
      path: this.path,
    });
    const seen = new Set<string>();
    for (const obj of list.items) {
      const uid = obj.metadata?.uid ?? '';
      seen.add(uid);
      this.known.set(uid, obj);
      this.handlers.onUpsert(obj);
    }
    for (const [uid, obj] of this.known) {
      if (!seen.has(uid)) {
        this.known.delete(uid);
        this.handlers.onDelete(obj);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        await this.watchOnce();
      } catch (err) {
        if (this.stopped) break;
        this.handlers.onError?.(err);
        await sleep(500); // the API server is restarting or overloaded
      }
    }
  }

  private watchOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onEvent = (type: string, obj: T & { code?: number }): void => {
        if (type === 'ERROR') {
          if (obj.code === 410) this.resourceVersion = undefined; // expired: re-list
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        const uid = obj.metadata?.uid ?? '';
        if (type === 'DELETED') {
          this.known.delete(uid);
          this.handlers.onDelete(obj);
        } else {
          this.known.set(uid, obj);
          this.handlers.onUpsert(obj);
        }
      };
      const onDone = (err: unknown): void => {
        const status = (err as { statusCode?: number } | null)?.statusCode;
        if (status === 410) this.resourceVersion = undefined;
        if (err && !this.stopped && status !== 410) reject(err);
        else resolve();
      };
      new Watch(this.kc)
        .watch(
          this.path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.watchTimeoutS,
          },
          onEvent,
          onDone,
        )
        .then((ctrl) => {
          this.abort = ctrl;
          if (this.stopped) ctrl.abort();
        }, reject);
    });
  }
}
