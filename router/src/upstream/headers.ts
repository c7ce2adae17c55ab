// Header hygiene between client and engines: hop-by-hop headers never cross the router.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);

/** Headers the router always sets itself on an upstream request. */
const REWRITTEN = new Set(['host', 'content-length', 'content-type', 'x-request-id', 'expect']);

const NONE: ReadonlySet<string> = new Set();

/** Header names a `Connection` header lists (hop-by-hop for this hop only). */
function connectionListed(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const v = headers['connection'];
  // The usual values name no header: skip the parsing (this runs on every request).
  if (v === undefined || v === 'keep-alive' || v === 'close') return NONE;
  const list = Array.isArray(v) ? v.join(',') : v;
  return new Set(
    list
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

/**
 * Client headers to send on an upstream leg. `rewrittenBody` legs also drop content-encoding
 * and accept-encoding: their body is new JSON and the router must be able to read the reply.
 * `clientAddress` (the peer the router saw) is appended to X-Forwarded-For, as a proxy does.
 */
export function upstreamHeaders(
  client: IncomingHttpHeaders,
  requestId: string,
  opts: { rewrittenBody: boolean; clientAddress?: string },
): Record<string, string> {
  const listed = connectionListed(client);
  const out: Record<string, string> = {};
  for (const name in client) {
    const value = client[name];
    if (value === undefined || HOP_BY_HOP.has(name) || REWRITTEN.has(name) || listed.has(name)) continue;
    // The router decompressed the body when it parsed it (express.raw inflates).
    if (name === 'content-encoding') continue;
    if (opts.rewrittenBody && name === 'accept-encoding') continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (opts.clientAddress) {
    const prior = out['x-forwarded-for'];
    out['x-forwarded-for'] = prior ? `${prior}, ${opts.clientAddress}` : opts.clientAddress;
  }
  out['content-type'] = 'application/json';
  out['x-request-id'] = requestId;
  return out;
}

/** Upstream response headers to pass to the client (hop-by-hop and framing removed). */
export function downstreamHeaders(
  upstream: Record<string, string | string[] | undefined>,
  opts: { keepContentLength: boolean },
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (name === 'content-length' && !opts.keepContentLength) continue;
    if (name === 'x-request-id' || name === 'date') continue;
    out[name] = value;
  }
  return out;
}
