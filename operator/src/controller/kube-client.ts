// A small REST client over client-node's KubeConfig: exact content types (server-side apply,
// merge patch on /status) and one reused connection pool, which the generated clients do not give.
import type { KubeConfig } from '@kubernetes/client-node';
import { HttpMethod, RequestContext } from '@kubernetes/client-node';
import { fetch, type Dispatcher } from 'undici';

export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.statusCode === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.statusCode === 409;

export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

type Query = Record<string, string | boolean | number | undefined>;

/** The port the controller talks through; tests of the controller pass a fake. */
export interface KubeApi {
  get<T>(path: string): Promise<T>;
  list<T>(path: string, query?: Query): Promise<ListResult<T>>;
  create<T>(path: string, body: unknown): Promise<T>;
  replace<T>(path: string, body: unknown): Promise<T>;
  /** Server-side apply with our field manager, taking ownership of the fields we send (force). */
  apply<T>(path: string, body: unknown, fieldManager: string): Promise<T>;
  mergePatch<T>(path: string, body: unknown, fieldManager?: string): Promise<T>;
  delete(path: string, query?: Query): Promise<void>;
}

export class RestKubeApi implements KubeApi {
  private dispatcher: Dispatcher | undefined;

  constructor(
    private readonly kc: KubeConfig,
    /** Per-request timeout; watches do not go through here. */
    private readonly timeoutMs = 30_000,
  ) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  list<T>(path: string, query?: Query): Promise<ListResult<T>> {
    return this.request<ListResult<T>>('GET', path, { query });
  }
  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }
  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }
  apply<T>(path: string, body: unknown, fieldManager: string): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: true },
    });
  }
  mergePatch<T>(path: string, body: unknown, fieldManager?: string): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/merge-patch+json',
      query: { fieldManager },
    });
  }
  async delete(path: string, query?: Query): Promise<void> {
    await this.request('DELETE', path, { query });
  }

  private async request<T>(
    method: string,
    path: string,
    opts: { body?: unknown; contentType?: string; query?: Query } = {},
  ): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    // Re-applied per request: service-account tokens rotate on disk.
    await this.kc.applySecurityAuthentication(ctx);
    this.dispatcher ??= ctx.getDispatcher();
    const headers: Record<string, string> = { ...ctx.getHeaders(), accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    const res = await fetch(url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      dispatcher: this.dispatcher,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const status = parsed as { message?: string; reason?: string } | undefined;
      throw new KubeApiError(
        res.status,
        status?.reason ?? res.statusText,
        `${method} ${path}: ${res.status} ${status?.message ?? text.slice(0, 500)}`,
      );
    }
    return parsed as T;
  }
}
