// DPD over vLLM's NixlConnector: prefill (one token, blocks kept for a remote reader), then the
// client's request on a decoder with the prefiller's kv_transfer_params, streamed back.
import { nixlDecodeBody, nixlPrefillBody } from '../protocol/nixl.js';
import { relayLeg } from '../relay.js';
import { readJsonLeg } from '../upstream/call.js';
import { upstreamHeaders } from '../upstream/headers.js';
import { openLegFor, pickDecoder, pickPrefiller, type RequestContext } from './context.js';
import { noDecoderError } from './direct.js';
import { onNoPrefiller, onPrefillFailure } from './prefill-failure.js';
import { withRetry } from './retry.js';

export async function serveNixl(ctx: RequestContext): Promise<void> {
  const { deps, cluster } = ctx;
  const decoder = pickDecoder(ctx);
  if (!decoder) throw noDecoderError(ctx);
  const prefiller = pickPrefiller(ctx);
  if (!prefiller) return onNoPrefiller(ctx, decoder);

  const headers = upstreamHeaders(ctx.clientHeaders, ctx.requestId, {
    rewrittenBody: true,
    clientAddress: ctx.clientAddress,
  });
  const prefillBody = JSON.stringify(nixlPrefillBody(ctx.body));
  const started = performance.now();
  let prefill;
  try {
    prefill = await withRetry(ctx, 'prefill', prefiller, async (endpoint) => {
      const leg = await openLegFor(ctx, 'prefill', endpoint, ctx.path, prefillBody, headers);
      return readJsonLeg(deps, leg, ctx.signal);
    });
  } catch (err) {
    return onPrefillFailure(ctx, err, decoder);
  }
  deps.metrics.prefillDuration.observe(
    { cluster: cluster.name, connector: 'nixl' },
    (performance.now() - started) / 1000,
  );

  const decode = nixlDecodeBody(ctx.body, prefill.result, prefill.endpoint.url);
  if (decode.kvParams === 'missing') {
    deps.metrics.nixlMissingKvParams.inc({ cluster: cluster.name });
    ctx.log.debug('prefill returned no kv_transfer_params; the decoder prefills locally', {
      prefill: prefill.endpoint.id,
    });
  }
  if (decode.rewroteHost) {
    deps.metrics.nixlRemoteHostRewrites.inc({ endpoint: prefill.endpoint.id });
    if (!deps.hostRewritesLogged.has(prefill.endpoint.url)) {
      deps.hostRewritesLogged.add(prefill.endpoint.url);
      ctx.log.warn(
        'prefiller advertises a loopback NIXL side channel (VLLM_NIXL_SIDE_CHANNEL_HOST unset?); using its endpoint host instead',
        { prefill: prefill.endpoint.id, from: decode.rewroteHost.from, to: decode.rewroteHost.to },
      );
    }
  }
  ctx.servedPath = 'dpd';
  const decodeBody = JSON.stringify(decode.body);
  // A connect-failed decoder never read the blocks, so another decoder can still pull them.
  const { result: leg } = await withRetry(ctx, 'decode', decoder, (endpoint) =>
    openLegFor(ctx, 'decode', endpoint, ctx.path, decodeBody, headers),
  );
  await relayLeg(deps, leg, ctx.out, { requestId: ctx.requestId, signal: ctx.signal });
}
