// Writes to the client: headers are committed with the first byte (so a failure before it still
// gets a real status), every write waits for the socket to drain (a slow client stalls the
// upstream instead of growing a buffer), and a failure after the first byte ends an SSE stream
// with an error event or cuts a JSON body short - never a clean finish.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { RouterError } from './errors.js';
import { SSE_DONE, SseEventSplitter, sseEvent } from './protocol/sse.js';
import { downstreamHeaders } from './upstream/headers.js';
import { legBodyFailure, type LegDeps, type OpenLeg } from './upstream/call.js';

/** The client went away; nothing more can be written. */
export class ClientGoneError extends Error {
  constructor() {
    super('client disconnected');
    this.name = 'ClientGoneError';
  }
}

export const SSE_HEADERS: OutgoingHttpHeaders = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
};

export class ClientWriter {
  private pendingHead: { status: number; headers: OutgoingHttpHeaders } | undefined;
  private committed = false;
  /** The response is an SSE stream (decides how a late failure is reported). */
  sse = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly onFirstByte: () => void,
  ) {}

  get started(): boolean {
    return this.committed || this.res.headersSent;
  }

  /** Records the status and headers; they go out with the first write. */
  begin(status: number, headers: OutgoingHttpHeaders, sse: boolean): void {
    this.pendingHead = { status, headers };
    this.sse = sse;
  }

  async write(chunk: Buffer | string): Promise<void> {
    if (this.res.destroyed) throw new ClientGoneError();
    this.commit();
    const ok = this.res.write(chunk);
    if (!ok) await waitDrain(this.res);
  }

  /**
   * Writes every chunk of `body`, as `map` turns it (empty results are skipped), pausing `body`
   * while the client's socket is full. Events, not async iteration: a promise per chunk is
   * garbage on the hot path. Rejects with ClientGoneError when the client goes, or with the body's
   * own error.
   */
  pump(body: Readable, map: (chunk: Buffer) => Buffer): Promise<void> {
    const res = this.res;
    if (res.destroyed) return Promise.reject(new ClientGoneError());
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', done);
        res.off('drain', onDrain);
        res.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onData = (chunk: Buffer): void => {
        let data: Buffer;
        try {
          data = map(chunk);
        } catch (err) {
          return done(err as Error); // never let a throw escape into the stream's emit
        }
        if (data.length === 0) return;
        this.commit();
        if (!res.write(data)) body.pause();
      };
      const onDrain = (): void => void body.resume();
      const onEnd = (): void => done();
      const onClose = (): void => done(new ClientGoneError());
      body.on('data', onData);
      body.once('end', onEnd);
      body.once('error', done);
      res.on('drain', onDrain);
      res.once('close', onClose);
    });
  }

  end(chunk?: Buffer | string): void {
    if (this.res.destroyed) return;
    this.commit();
    if (chunk !== undefined) this.res.end(chunk);
    else this.res.end();
  }

  sendJson(status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
    if (this.res.destroyed || this.started) return;
    this.sendWhole(status, { ...headers, 'content-type': 'application/json' }, JSON.stringify(body));
  }

  /** Passes an upstream reply (e.g. a 4xx) through with its status and body. */
  sendRaw(status: number, contentType: string | undefined, body: Buffer): void {
    this.sendWhole(status, { 'content-type': contentType ?? 'application/json' }, body);
  }

  /** Reports a failure in the only way still open at this point of the response. */
  fail(err: RouterError): void {
    if (this.res.destroyed) return;
    if (!this.started) {
      this.sendJson(err.status, err.toBody());
    } else if (this.sse) {
      // vLLM ends a stream it could not finish the same way: an error event, then [DONE]
      this.res.end(sseEvent(err.toBody()) + SSE_DONE);
    } else {
      this.res.destroy(err);
    }
  }

  /** A whole (non-streamed) response, unless the client is gone or the head already went out. */
  private sendWhole(status: number, headers: OutgoingHttpHeaders, body: string | Buffer): void {
    if (this.res.destroyed || this.started) return;
    this.res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    this.committed = true;
    this.onFirstByte();
    this.res.end(body);
  }

  private commit(): void {
    if (this.committed) return;
    this.committed = true;
    if (!this.res.headersSent) {
      const head = this.pendingHead ?? { status: 200, headers: {} };
      this.res.writeHead(head.status, head.headers);
    }
    this.onFirstByte();
  }
}

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      res.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      res.off('drain', onDrain);
      reject(new ClientGoneError());
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/**
 * Streams an upstream leg to the client unchanged. SSE is forwarded whole events at a time, and a
 * stream that ends without `data: [DONE]` counts as interrupted.
 */
export async function relayLeg(
  deps: LegDeps,
  leg: OpenLeg,
  out: ClientWriter,
  opts: { requestId: string; signal: AbortSignal },
): Promise<void> {
  const contentType = String(leg.headers['content-type'] ?? '');
  const sse = contentType.includes('text/event-stream');
  const headers = downstreamHeaders(leg.headers, { keepContentLength: !sse });
  if (sse) Object.assign(headers, SSE_HEADERS);
  headers['x-request-id'] = opts.requestId;
  out.begin(leg.status, headers, sse);
  const splitter = sse ? new SseEventSplitter() : undefined;
  // The splitter hands out whole events, so a finished stream's last piece holds all of [DONE].
  let last: Buffer | undefined;
  try {
    await out.pump(leg.body, (chunk) => {
      const data = splitter ? splitter.push(chunk) : chunk;
      if (data.length > 0) last = data;
      return data;
    });
  } catch (err) {
    leg.body.destroy();
    if (err instanceof ClientGoneError) throw err;
    throw legBodyFailure(deps, leg, err, opts.signal).toRouterError();
  }
  if (sse && (splitter?.hasPartial || !endsWithDone(last))) {
    throw new RouterError(
      'DECODE_STREAM_INTERRUPTED',
      `${leg.role} endpoint ${leg.endpoint.id} (${leg.endpoint.url}) ended the stream without [DONE]`,
    );
  }
  out.end();
}

function endsWithDone(events: Buffer | undefined): boolean {
  if (!events || events.length < SSE_DONE.length) return false;
  return events.subarray(events.length - SSE_DONE.length).toString('latin1') === SSE_DONE;
}
