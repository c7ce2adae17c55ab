// Direct path: the client's request goes to a decoder as sent (minus hop-by-hop headers and any
// client kv_transfer_params) and the reply streams back as it comes.
import type { DecodeEndpoint } from '../config/index.js';
import { RouterError } from '../errors.js';
import { relayLeg } from '../relay.js';
import { upstreamHeaders } from '../upstream/headers.js';
import { openLegFor, pickDecoder, type RequestContext } from './context.js';
import { withRetry } from './retry.js';

export function noDecoderError(ctx: RequestContext): RouterError {
  return new RouterError(
    'NO_DECODER',
    `no routable endpoint in the decode pool of cluster ${ctx.cluster.name}: the pool is empty`,
  );
}

export async function serveDirect(ctx: RequestContext, preferred?: DecodeEndpoint): Promise<void> {
  const first = preferred ?? pickDecoder(ctx);
  if (!first) throw noDecoderError(ctx);
  // A client must not steer a decoder's KV reads (remote_host/port) itself.
  const stripped = 'kv_transfer_params' in ctx.body;
  let body: Buffer | string = ctx.rawBody;
  if (stripped) {
    const copy = { ...ctx.body };
    delete copy['kv_transfer_params'];
    body = JSON.stringify(copy);
  }
  const headers = upstreamHeaders(ctx.clientHeaders, ctx.requestId, {
    rewrittenBody: stripped,
    clientAddress: ctx.clientAddress,
  });
  const { result: leg } = await withRetry(ctx, 'decode', first, (endpoint) =>
    openLegFor(ctx, 'decode', endpoint, ctx.path, body, headers),
  );
  await relayLeg(ctx.deps, leg, ctx.out, { requestId: ctx.requestId, signal: ctx.signal });
}
