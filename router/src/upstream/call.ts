// One upstream leg: a POST to an engine on its pooled connection, with per-leg timeouts
// (connect, first byte, idle between body chunks), in-flight accounting and error classification.
import type { Readable } from 'node:stream';
import type { LegTimeouts } from '../config/index.js';
import type { InFlightTracker } from '../balance/in-flight.js';
import { RouterError, type ErrorCode } from '../errors.js';
import type { RouterMetrics } from '../metrics.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import type { UpstreamPools } from './pools.js';
import { send } from './send.js';

export type LegRole = 'prefill' | 'decode';
export type UpstreamErrorKind =
  | 'connect'
  | 'first_byte_timeout'
  | 'idle_timeout'
  | 'status_4xx'
  | 'status_5xx'
  | 'reset'
  | 'bad_response'
  | 'aborted';

export interface LegEndpoint {
  id: string;
  url: string;
}

/** Largest upstream body the router reads into memory (prefill replies, tokenize, errors). */
export const MAX_BUFFERED_UPSTREAM_BYTES = 16 * 1024 * 1024;
/** Error bodies are only quoted, so a little is enough. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

const CODES: Record<LegRole, Record<Exclude<UpstreamErrorKind, 'status_4xx' | 'aborted'>, ErrorCode>> = {
  prefill: {
    connect: 'PREFILL_UNAVAILABLE',
    first_byte_timeout: 'PREFILL_TIMEOUT',
    idle_timeout: 'PREFILL_TIMEOUT',
    status_5xx: 'PREFILL_UPSTREAM_ERROR',
    reset: 'PREFILL_UPSTREAM_ERROR',
    bad_response: 'PREFILL_BAD_RESPONSE',
  },
  decode: {
    connect: 'DECODE_UNAVAILABLE',
    first_byte_timeout: 'DECODE_TIMEOUT',
    idle_timeout: 'DECODE_TIMEOUT',
    status_5xx: 'DECODE_UPSTREAM_ERROR',
    reset: 'DECODE_STREAM_INTERRUPTED',
    bad_response: 'DECODE_BAD_RESPONSE',
  },
};

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    readonly role: LegRole,
    readonly endpoint: LegEndpoint,
    message: string,
    readonly response?: { status: number; contentType: string | undefined; body: Buffer },
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'UpstreamError';
  }

  /** Safe to send elsewhere: the engine never started on it (refused/unreachable, or said 503). */
  get retryable(): boolean {
    return this.kind === 'connect' || (this.kind === 'status_5xx' && this.response?.status === 503);
  }

  toRouterError(): RouterError {
    const where = `${this.role} endpoint ${this.endpoint.id} (${this.endpoint.url})`;
    if (this.kind === 'status_4xx' || this.kind === 'aborted') {
      return new RouterError('INTERNAL', `${where}: ${this.message}`, { cause: this });
    }
    return new RouterError(CODES[this.role][this.kind], `${where}: ${this.message}`, { cause: this });
  }
}

export interface LegDeps {
  pools: UpstreamPools;
  inFlight: InFlightTracker;
  metrics: RouterMetrics;
}

export interface LegRequest {
  role: LegRole;
  endpoint: LegEndpoint;
  timeouts: LegTimeouts;
  /** Path below the endpoint's base URL, e.g. `/v1/completions`. */
  path: string;
  body: string | Buffer;
  headers: Record<string, string>;
  signal: AbortSignal;
}

export interface OpenLeg {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Must be consumed or destroyed; closing it ends the leg's in-flight accounting. */
  body: Readable;
  endpoint: LegEndpoint;
  role: LegRole;
}

// Endpoint URLs change only with the config: parse each once, not on every leg (bounded for churn).
const parsedBases = new Map<string, { origin: string; basePath: string }>();
function parseBase(url: string): { origin: string; basePath: string } {
  let parsed = parsedBases.get(url);
  if (!parsed) {
    const u = new URL(url);
    parsed = { origin: u.origin, basePath: u.pathname.replace(/\/+$/, '') };
    if (parsedBases.size >= 4096) parsedBases.clear();
    parsedBases.set(url, parsed);
  }
  return parsed;
}

/** Sends the request and resolves once a 2xx status arrives; non-2xx and failures throw UpstreamError. */
export async function openLeg(deps: LegDeps, req: LegRequest): Promise<OpenLeg> {
  const base = parseBase(req.endpoint.url);
  const path = base.basePath + req.path;
  const lease = deps.pools.lease(base.origin, req.timeouts.connectMs);
  const releaseInFlight = deps.inFlight.begin(req.endpoint.url);
  const gauge = deps.metrics.inFlight.labels(req.endpoint.id, req.role);
  gauge.inc();
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    releaseInFlight();
    lease.release();
    gauge.dec();
  };
  let res;
  try {
    res = await send(lease.pool, {
      path,
      headers: req.headers,
      body: req.body,
      signal: req.signal,
      headersTimeout: req.timeouts.firstByteMs,
      bodyTimeout: req.timeouts.idleMs,
    });
  } catch (err) {
    finish();
    throw failure(deps, req, err, false);
  }
  res.body.once('close', finish);
  if (res.statusCode >= 400) {
    const body = await readCapped(res.body, MAX_ERROR_BODY_BYTES).catch(() => Buffer.alloc(0));
    const kind = res.statusCode >= 500 ? 'status_5xx' : 'status_4xx';
    deps.metrics.upstreamErrors.inc({ endpoint: req.endpoint.id, role: req.role, kind });
    const contentType = headerValue(res.headers['content-type']);
    throw new UpstreamError(
      kind,
      req.role,
      req.endpoint,
      `status ${res.statusCode}: ${upstreamMessage(body)}`,
      { status: res.statusCode, contentType, body },
    );
  }
  return {
    status: res.statusCode,
    headers: res.headers,
    body: res.body,
    endpoint: req.endpoint,
    role: req.role,
  };
}

/** Reads a whole (small) leg body and parses it as a JSON object. */
export async function readJsonLeg(deps: LegDeps, leg: OpenLeg, signal: AbortSignal): Promise<JsonObject> {
  let buf: Buffer;
  try {
    buf = await readCapped(leg.body, MAX_BUFFERED_UPSTREAM_BYTES);
  } catch (err) {
    throw legBodyFailure(deps, leg, err, signal);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'));
  } catch {
    doc = undefined;
  }
  if (!isJsonObject(doc)) {
    deps.metrics.upstreamErrors.inc({ endpoint: leg.endpoint.id, role: leg.role, kind: 'bad_response' });
    throw new UpstreamError('bad_response', leg.role, leg.endpoint, 'response is not a JSON object');
  }
  return doc;
}

/** Classifies an error raised while reading a leg's body (after its status arrived). */
export function legBodyFailure(
  deps: LegDeps,
  leg: OpenLeg,
  err: unknown,
  signal: AbortSignal,
): UpstreamError {
  return failure(deps, { role: leg.role, endpoint: leg.endpoint, signal }, err, true);
}

function failure(
  deps: LegDeps,
  req: Pick<LegRequest, 'role' | 'endpoint' | 'signal'>,
  err: unknown,
  afterHeaders: boolean,
): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const kind = classify(err, afterHeaders, req.signal);
  if (kind !== 'aborted')
    deps.metrics.upstreamErrors.inc({ endpoint: req.endpoint.id, role: req.role, kind });
  const text = describe(err);
  const message =
    kind === 'first_byte_timeout'
      ? `no response within the first-byte timeout (${text})`
      : kind === 'idle_timeout'
        ? `response stalled longer than the idle timeout (${text})`
        : kind === 'connect'
          ? `cannot connect (${text})`
          : kind === 'reset'
            ? `connection closed mid-response (${text})`
            : text;
  return new UpstreamError(kind, req.role, req.endpoint, message, undefined, err);
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function classify(err: unknown, afterHeaders: boolean, signal?: AbortSignal): UpstreamErrorKind {
  if (signal?.aborted) return 'aborted';
  const code = errorCode(err);
  if (code === 'UND_ERR_ABORTED' || (err as Error)?.name === 'AbortError') return 'aborted';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'first_byte_timeout';
  if (code === 'UND_ERR_BODY_TIMEOUT') return 'idle_timeout';
  if (code !== undefined && CONNECT_CODES.has(code)) return 'connect';
  return afterHeaders ? 'reset' : code === 'ECONNRESET' ? 'connect' : 'reset';
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown }; errors?: Array<{ code?: unknown }> };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  const inner = e?.errors?.find((x) => typeof x?.code === 'string');
  return inner ? (inner.code as string) : undefined;
}

function describe(err: unknown): string {
  const code = errorCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

/** The engine's own error message when its body is an OpenAI error, else the start of the body. */
export function upstreamMessage(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const doc = JSON.parse(text) as {
      error?: { message?: unknown } | string;
      message?: unknown;
      detail?: unknown;
    };
    if (typeof doc.error === 'string') return doc.error;
    if (doc.error && typeof doc.error.message === 'string') return doc.error.message;
    if (typeof doc.message === 'string') return doc.message;
    if (typeof doc.detail === 'string') return doc.detail;
  } catch {
    // not JSON: quote it
  }
  return text.slice(0, 500) || '(empty body)';
}

export async function readCapped(body: Readable, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > cap) {
      body.destroy();
      throw new Error(`response larger than ${cap} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
