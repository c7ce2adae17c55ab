// vLLM NixlConnector P/D protocol, as vLLM's toy proxy speaks it
// (vllm tests/v1/kv_connector/nixl_integration/toy_proxy_server.py). Pure body rewrites.
import { isJsonObject, type JsonObject } from './json.js';

/** What the prefill leg carries: "decode elsewhere, keep the blocks for a remote reader". */
export const NIXL_PREFILL_KV_TRANSFER_PARAMS: Readonly<JsonObject> = Object.freeze({
  do_remote_decode: true,
  do_remote_prefill: false,
  remote_engine_id: null,
  remote_block_ids: null,
  remote_host: null,
  remote_port: null,
});

/**
 * Prefill body: the client's body computing one token, not streamed, with the NIXL params.
 * A client-supplied kv_transfer_params is never trusted, so it is replaced.
 */
export function nixlPrefillBody(client: JsonObject): JsonObject {
  const body: JsonObject = { ...client, kv_transfer_params: { ...NIXL_PREFILL_KV_TRANSFER_PARAMS } };
  body['stream'] = false;
  body['max_tokens'] = 1;
  if ('max_completion_tokens' in client) body['max_completion_tokens'] = 1;
  // Streaming options and minimum lengths contradict a one-token, non-streamed prefill.
  delete body['stream_options'];
  delete body['min_tokens'];
  delete body['min_completion_tokens'];
  return body;
}

export interface NixlDecode {
  body: JsonObject;
  /** `missing`: the prefiller returned no params (e.g. it stopped on EOS); the decoder prefills locally. */
  kvParams: 'forwarded' | 'missing';
  /** Set when a loopback remote_host was replaced by the prefill endpoint's host. */
  rewroteHost?: { from: string; to: string };
}

/**
 * Decode body: the client's original body (stream, max_tokens, min_tokens as sent; an absent
 * max_tokens stays absent) plus the prefiller's kv_transfer_params verbatim - except a loopback
 * remote_host (vLLM's default when VLLM_NIXL_SIDE_CHANNEL_HOST is unset), which no decoder on
 * another machine can reach, becomes the host of the prefill endpoint the router just used.
 */
export function nixlDecodeBody(
  client: JsonObject,
  prefillResponse: JsonObject,
  prefillEndpointUrl: string,
): NixlDecode {
  const body: JsonObject = { ...client };
  delete body['kv_transfer_params'];
  const params = prefillResponse['kv_transfer_params'];
  if (!isJsonObject(params)) return { body, kvParams: 'missing' };
  const forwarded: JsonObject = { ...params };
  const host = forwarded['remote_host'];
  let rewroteHost: NixlDecode['rewroteHost'];
  if (typeof host === 'string' && isLoopbackHost(host)) {
    const to = hostOf(prefillEndpointUrl);
    if (!isLoopbackHost(to) || to !== host) {
      forwarded['remote_host'] = to;
      rewroteHost = { from: host, to };
    }
  }
  body['kv_transfer_params'] = forwarded;
  return rewroteHost ? { body, kvParams: 'forwarded', rewroteHost } : { body, kvParams: 'forwarded' };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0.0.0.0' || /^127\./.test(h);
}

/** Host part of a base URL, without IPv6 brackets (remote_host is a bare host). */
export function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}
