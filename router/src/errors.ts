// The one error catalogue: every error the router returns has a stable code, an HTTP status and
// an OpenAI error type. Callers branch on `code`, never on message text.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

export const ERROR_CATALOGUE = {
  // Client mistakes.
  BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error' },
  MALFORMED_JSON: { status: 400, type: 'invalid_request_error' },
  BODY_NOT_OBJECT: { status: 400, type: 'invalid_request_error' },
  MODEL_REQUIRED: { status: 400, type: 'invalid_request_error' },
  MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error' },
  ROUTE_NOT_FOUND: { status: 404, type: 'invalid_request_error' },
  METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, type: 'invalid_request_error' },
  // Nothing to route to.
  NOT_CONFIGURED: { status: 503, type: 'service_unavailable_error' },
  NO_DECODER: { status: 503, type: 'service_unavailable_error' },
  NO_PREFILLER: { status: 503, type: 'service_unavailable_error' },
  // Upstream legs: connect errors -> 503, timeouts -> 504, 5xx and garbage -> 502.
  PREFILL_UNAVAILABLE: { status: 503, type: 'service_unavailable_error' },
  PREFILL_TIMEOUT: { status: 504, type: 'timeout_error' },
  PREFILL_UPSTREAM_ERROR: { status: 502, type: 'upstream_error' },
  PREFILL_BAD_RESPONSE: { status: 502, type: 'upstream_error' },
  DECODE_UNAVAILABLE: { status: 503, type: 'service_unavailable_error' },
  DECODE_TIMEOUT: { status: 504, type: 'timeout_error' },
  DECODE_UPSTREAM_ERROR: { status: 502, type: 'upstream_error' },
  DECODE_BAD_RESPONSE: { status: 502, type: 'upstream_error' },
  DECODE_STREAM_INTERRUPTED: { status: 502, type: 'upstream_error' },
  KV_READY_TIMEOUT: { status: 504, type: 'timeout_error' },
  // Admin API.
  ADMIN_UNAUTHORIZED: { status: 401, type: 'authentication_error' },
  INVALID_CONFIG: { status: 400, type: 'invalid_request_error' },
  // Bugs.
  INTERNAL: { status: 500, type: 'server_error' },
} as const satisfies Record<string, { status: number; type: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/**
 * The OpenAI error body: {"error": {"message", "type", "param", "code"}} (plus optional details);
 * `param` names the offending request field, null when there is none, as OpenAI and vLLM do.
 */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: ErrorCode; details?: string[] };
}

export class RouterError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: string[];
  readonly param: string | null;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { cause?: unknown; details?: string[]; param?: string } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'RouterError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.param = opts.param ?? null;
    if (opts.details) this.details = opts.details;
  }

  toBody(): OpenAiErrorBody {
    return {
      error: {
        message: this.message,
        type: ERROR_CATALOGUE[this.code].type,
        param: this.param,
        code: this.code,
        ...(this.details ? { details: this.details } : {}),
      },
    };
  }
}

/** Any thrown value as a RouterError (unknown throws become INTERNAL). */
export function asRouterError(err: unknown): RouterError {
  if (err instanceof RouterError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RouterError('INTERNAL', `internal router error: ${message}`, { cause: err });
}

/** Answers with the error's status and OpenAI body (for a response whose head has not gone out). */
export function sendError(res: ServerResponse, err: RouterError, headers: OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(err.toBody());
  res.writeHead(err.status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
