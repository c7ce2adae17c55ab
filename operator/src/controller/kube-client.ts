// A small REST client on undici over a KubeConnection (../kube/connection.ts): exact content types
// (server-side apply, merge patch on /status), one reused connection pool, and watch streams.
import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import type { KubeConnection } from '../kube/connection.js';

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
  metadata?: { resourceVersion?: string; continue?: string };
}

/** One line of a watch stream. For ERROR, object is a metav1.Status. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: { metadata?: { resourceVersion?: string }; code?: number; reason?: string; message?: string };
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

/** What an informer needs: list (pages) and watch. */
export interface ListWatchApi {
  list<T>(path: string, query?: Query): Promise<ListResult<T>>;
  /**
   * Opens a watch (`watch=true` is added); resolves once the server answered 200 and yields its
   * events until the server ends the stream or signal aborts. Rejects with KubeApiError otherwise.
   */
  watch(path: string, query: Query, signal: AbortSignal): Promise<AsyncIterable<WatchEvent>>;
}

export class RestKubeApi implements KubeApi, ListWatchApi {
  constructor(
    private readonly conn: KubeConnection,
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

  async watch(path: string, query: Query, signal: AbortSignal): Promise<AsyncIterable<WatchEvent>> {
    // The informer's own idle timeout decides when a quiet watch is dead (bodyTimeout 0).
    const res = await this.send('GET', path, { query: { ...query, watch: true }, signal, bodyTimeout: 0 });
    if (res.statusCode >= 300) throw this.failure('GET', path, res.statusCode, await res.body.text());
    return watchEvents(res.body);
  }

  private async request<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    opts: { body?: unknown; contentType?: string; query?: Query } = {},
  ): Promise<T> {
    const res = await this.send(method, path, { ...opts, signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw this.failure(method, path, res.statusCode, text);
    return (text ? parseOrUndefined(text) : undefined) as T;
  }

  // undici's request() rather than fetch(): the same pool without the WHATWG Request/Response/
  // stream objects per call, which are most of a request's garbage.
  private async send(
    method: Dispatcher.HttpMethod,
    path: string,
    opts: { body?: unknown; contentType?: string; query?: Query; signal: AbortSignal; bodyTimeout?: number },
  ): Promise<Dispatcher.ResponseData> {
    const url = new URL(this.conn.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    // Per request: a ServiceAccount token file may have rotated.
    const auth = await this.conn.authorize();
    const headers: Record<string, string> = { ...auth.headers, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    return auth.dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      ...(opts.bodyTimeout !== undefined ? { bodyTimeout: opts.bodyTimeout } : {}),
    });
  }

  private failure(method: string, path: string, code: number, text: string): KubeApiError {
    if (code === 401) this.conn.unauthorized();
    const status = parseOrUndefined(text) as { message?: string; reason?: string } | undefined;
    return new KubeApiError(
      code,
      status?.reason ?? STATUS_CODES[code] ?? 'Error',
      `${method} ${path}: ${code} ${status?.message ?? text.slice(0, 500)}`,
    );
  }
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Splits the stream into lines, one JSON event each. */
async function* watchEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<WatchEvent> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) yield JSON.parse(line) as WatchEvent;
    }
  }
  const rest = (buffered + decoder.decode()).trim();
  if (rest) yield JSON.parse(rest) as WatchEvent;
}
