// Sends one request on an undici dispatcher and resolves with its status, headers and a body
// stream: what undici's `request()` does, on its lower-level `dispatch()` API.
//
// Why not `request()`: behind a node:http server, its per-request objects outlive the young-
// generation GC. A minimal proxy on `request()` promoted about 2 MB per scavenge at 1000 req/s
// (scavenges of 4-9 ms); the same proxy on `dispatch()` with this module's handler promoted 11 KB
// (0.4-0.9 ms). Promoted garbage is what makes the router's scavenges and mark-compacts, and
// those are its latency tail (docs/benchmarks.md). The behaviour the router relies on is the
// same: undici's error objects and codes, timeouts, abort by signal, and a body with
// backpressure whose 'close' ends the leg.
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

export interface SendOptions {
  path: string;
  headers: Record<string, string>;
  body: string | Buffer;
  signal: AbortSignal;
  /** Time to the response headers (undici's UND_ERR_HEADERS_TIMEOUT). */
  headersTimeout: number;
  /** Longest gap between body chunks (UND_ERR_BODY_TIMEOUT). */
  bodyTimeout: number;
}

export interface SentResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** Destroying it aborts the request; it closes once read to the end or failed. */
  body: Readable;
}

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestStart']>>[0];

/** The body stream: reading asks undici for more, a full buffer pauses the socket. */
class ResponseBody extends Readable {
  constructor(private readonly controller: Controller) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    this.controller.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed before the end (consumer gone, body too large): stop the upstream request too.
    if (!this.readableEnded) this.controller.abort(err ?? new Error('response body destroyed'));
    callback(err);
  }
}

const noop = (): void => undefined;

/**
 * Ends the body with `err`. Like undici, with an 'error' listener first: a consumer that already
 * stopped reading (the client left) must not turn the failure into an uncaught exception.
 */
function fail(body: ResponseBody, err: Error): void {
  body.on('error', noop).destroy(err);
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

/** POSTs `opts.body` to `opts.path` on `dispatcher`; rejects with undici's error if no response arrives. */
export function send(dispatcher: Dispatcher, opts: SendOptions): Promise<SentResponse> {
  const { signal } = opts;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    let controller: Controller | undefined;
    let body: ResponseBody | undefined;
    let done = false;
    const onAbort = (): void => {
      const reason = abortReason(signal);
      if (body) fail(body, reason);
      else controller?.abort(reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      done = true;
      signal.removeEventListener('abort', onAbort);
    };
    dispatcher.dispatch(
      {
        method: 'POST',
        path: opts.path,
        headers: opts.headers,
        body: opts.body,
        headersTimeout: opts.headersTimeout,
        bodyTimeout: opts.bodyTimeout,
      },
      {
        onRequestStart: (c) => {
          controller = c;
          if (signal.aborted) c.abort(abortReason(signal));
        },
        onResponseStart: (c, statusCode, headers) => {
          if (statusCode < 200) return; // 1xx: informational, the real answer follows
          body = new ResponseBody(c);
          resolve({ statusCode, headers: headers as SentResponse['headers'], body });
        },
        onResponseData: (c, chunk) => {
          if (body && !body.destroyed && !body.push(chunk)) c.pause();
        },
        onResponseEnd: () => {
          settle();
          body?.push(null);
        },
        onResponseError: (_c, err) => {
          if (done) return;
          settle();
          if (body) fail(body, err);
          else reject(err);
        },
      },
    );
  });
}
