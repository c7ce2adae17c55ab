// DPD over LMCache's PD backend: tokenize, prefill with a disagg_spec naming the chosen decoder,
// emit the first token at once, wait for the prefiller's KV-ready notification(s), then decode
// tokens + [first token] on /v1/completions and convert chunks for chat clients.
import { randomUUID } from 'node:crypto';
import type { DecodeEndpoint, Endpoint, LmcacheRegistry } from '../config/index.js';
import { RouterError } from '../errors.js';
import { makeReqId, type KvWaiter } from '../kv-notify.js';
import {
  chatCompletion,
  chatContentChunk,
  chatRoleChunk,
  chatUsageChunk,
  completionChunkForClient,
  completionChunkToChat,
  completionHeadChunk,
  textCompletion,
  type StreamIdentity,
} from '../protocol/chat-chunks.js';
import { isJsonObject, type JsonObject } from '../protocol/json.js';
import {
  clientUsage,
  completionBase,
  disaggSpec,
  finishedAtPrefill,
  firstTokenOf,
  lmcacheDecodeBody,
  lmcachePrefillBody,
  lmcacheUnsupportedReason,
  prefillOnlyUsage,
  promptTokenIds,
  requestedMaxTokens,
  tokenizeBody,
  tokensFromTokenizeResponse,
  type FirstToken,
} from '../protocol/lmcache.js';
import { SSE_DONE, SseEventSplitter, eventPayloads, sseEvent } from '../protocol/sse.js';
import { ClientGoneError, SSE_HEADERS } from '../relay.js';
import { UpstreamError, legBodyFailure, readJsonLeg, type OpenLeg } from '../upstream/call.js';
import { upstreamHeaders } from '../upstream/headers.js';
import { openLegFor, pickDecoder, pickPrefiller, type RequestContext } from './context.js';
import { noDecoderError } from './direct.js';
import { fallBackToDirect, onNoPrefiller, onPrefillFailure } from './prefill-failure.js';
import { withRetry } from './retry.js';

interface Prefilled {
  /** Upstream headers the prefill legs used; the decode leg sends the same. */
  headers: Record<string, string>;
  /** The client's sampling fields for /v1/completions, shared by the prefill and decode bodies. */
  base: JsonObject;
  tokens: number[];
  first: FirstToken;
  waiter: KvWaiter;
  endpoint: Endpoint;
}

export async function serveLmcache(ctx: RequestContext): Promise<void> {
  const unsupported = lmcacheUnsupportedReason(ctx.body, ctx.kind);
  if (unsupported) return fallBackToDirect(ctx, 'lmcache_unsupported', undefined, unsupported);
  const decoder = pickDecoder(ctx);
  if (!decoder) throw noDecoderError(ctx);
  if (!decoder.lmcache) {
    throw new RouterError('INTERNAL', `decoder ${decoder.id} has no LMCache registry entry`);
  }
  const prefiller = pickPrefiller(ctx);
  if (!prefiller) return onNoPrefiller(ctx, decoder);

  const started = performance.now();
  let prefilled: Prefilled;
  try {
    prefilled = await prefill(ctx, prefiller, decoder.lmcache);
  } catch (err) {
    return onPrefillFailure(ctx, err, decoder);
  }
  ctx.deps.metrics.prefillDuration.observe(
    { cluster: ctx.cluster.name, connector: 'lmcache' },
    (performance.now() - started) / 1000,
  );
  ctx.servedPath = 'dpd';
  try {
    if (ctx.stream) await streamToClient(ctx, decoder, prefilled);
    else await answerWhole(ctx, decoder, prefilled);
  } finally {
    prefilled.waiter.cancel();
  }
}

async function prefill(ctx: RequestContext, first: Endpoint, registry: LmcacheRegistry): Promise<Prefilled> {
  const { deps } = ctx;
  const headers = upstreamHeaders(ctx.clientHeaders, ctx.requestId, {
    rewrittenBody: true,
    clientAddress: ctx.clientAddress,
  });
  let endpoint = first;
  let tokens = promptTokenIds(ctx.body, ctx.kind);
  if (!tokens) {
    const tokenizeRequest = JSON.stringify(tokenizeBody(ctx.body, ctx.kind));
    const tokenized = await withRetry(ctx, 'prefill', first, async (ep) => {
      const leg = await openLegFor(ctx, 'prefill', ep, '/tokenize', tokenizeRequest, headers);
      const doc = await readJsonLeg(deps, leg, ctx.signal);
      const ids = tokensFromTokenizeResponse(doc);
      if (!ids) throw new UpstreamError('bad_response', 'prefill', ep, '/tokenize returned no token list');
      return ids;
    });
    tokens = tokenized.result;
    endpoint = tokenized.endpoint;
  }
  const promptTokens = tokens;
  const base = completionBase(ctx.body, ctx.kind);
  const done = await withRetry(ctx, 'prefill', endpoint, async (ep) => {
    // A fresh req_id per attempt: a late notification from a failed attempt must not count.
    const reqId = makeReqId(deps.replicaId, randomUUID());
    const waiter = deps.kvHub.expect(reqId, registry.initPorts.length);
    try {
      const body = JSON.stringify(lmcachePrefillBody(base, promptTokens, disaggSpec(reqId, registry)));
      const leg = await openLegFor(ctx, 'prefill', ep, '/v1/completions', body, headers);
      const doc = await readJsonLeg(deps, leg, ctx.signal);
      const firstTok = firstTokenOf(doc);
      if (!firstTok) {
        throw new UpstreamError(
          'bad_response',
          'prefill',
          ep,
          'prefill response has no kv_transfer_params.first_tok (is the prefiller running LMCache with enable_pd?)',
        );
      }
      ctx.log.debug('lmcache prefill done', { prefill: ep.id, reqId, promptTokens: promptTokens.length });
      return { first: firstTok, waiter };
    } catch (err) {
      waiter.cancel();
      throw err;
    }
  });
  return {
    headers,
    base,
    tokens: promptTokens,
    first: done.result.first,
    waiter: done.result.waiter,
    endpoint: done.endpoint,
  };
}

function identity(ctx: RequestContext, first: FirstToken): StreamIdentity {
  return {
    id: ctx.kind === 'chat' ? `chatcmpl-${ctx.requestId}` : (first.responseId ?? `cmpl-${ctx.requestId}`),
    created: first.created ?? Math.floor(Date.now() / 1000),
    model: first.model ?? (typeof ctx.body['model'] === 'string' ? ctx.body['model'] : ''),
  };
}

/** Waits for the KV; on timeout `fail` errors out, `fallback` decodes anyway (the decoder recomputes). */
async function waitForKv(ctx: RequestContext, waiter: KvWaiter): Promise<void> {
  const started = performance.now();
  try {
    await waiter.wait(ctx.cluster.policies.kvReadyTimeoutMs, ctx.signal);
    ctx.deps.metrics.kvReadyWait.observe((performance.now() - started) / 1000);
  } catch (err) {
    if (!(err instanceof RouterError) || err.code !== 'KV_READY_TIMEOUT') throw err;
    ctx.deps.metrics.kvReadyTimeouts.inc({ cluster: ctx.cluster.name });
    if (ctx.cluster.policies.prefillFailurePolicy === 'fail') throw err;
    ctx.log.warn('KV-ready notification missing; decoding anyway (the decoder recomputes missing KV)', {
      error: err.message,
    });
  }
}

async function openDecode(
  ctx: RequestContext,
  decoder: DecodeEndpoint,
  p: Prefilled,
  stream: boolean,
): Promise<OpenLeg> {
  const maxTokens = requestedMaxTokens(ctx.body, ctx.kind);
  const body = JSON.stringify(
    lmcacheDecodeBody(p.base, p.tokens, p.first.id, {
      maxTokens,
      minTokens: ctx.body['min_tokens'],
      stream,
      streamOptions: ctx.body['stream_options'],
    }),
  );
  const { result } = await withRetry(ctx, 'decode', decoder, (endpoint) =>
    openLegFor(ctx, 'decode', endpoint, '/v1/completions', body, p.headers),
  );
  return result;
}

async function streamToClient(ctx: RequestContext, decoder: DecodeEndpoint, p: Prefilled): Promise<void> {
  const { out } = ctx;
  const ident = identity(ctx, p.first);
  const chat = ctx.kind === 'chat';
  const maxTokens = requestedMaxTokens(ctx.body, ctx.kind);
  const finished = finishedAtPrefill(p.first, maxTokens);
  const finish = finished ? (p.first.finishReason ?? 'length') : null;
  const stopReason = finished ? p.first.stopReason : null;
  const wantUsage =
    isJsonObject(ctx.body['stream_options']) && ctx.body['stream_options']['include_usage'] === true;

  out.begin(200, { ...SSE_HEADERS, 'x-request-id': ctx.requestId }, true);
  let head = chat ? sseEvent(chatRoleChunk(ident)) : '';
  head += sseEvent(
    chat
      ? chatContentChunk(ident, p.first.text, finish, stopReason)
      : completionHeadChunk(ident, p.first.text, finish, stopReason),
  );
  await out.write(head);
  if (finished) {
    let tail = '';
    if (wantUsage) {
      const usage = prefillOnlyUsage(p.tokens.length);
      tail += sseEvent(
        chat ? chatUsageChunk(ident, usage) : { ...completionHeadChunk(ident, '', null), choices: [], usage },
      );
    }
    out.end(tail + SSE_DONE);
    return;
  }

  await waitForKv(ctx, p.waiter);
  const leg = await openDecode(ctx, decoder, p, true);
  const splitter = new SseEventSplitter();
  let sawDone = false;
  try {
    for await (const chunk of leg.body) {
      const events = splitter.push(chunk as Buffer);
      if (events.length === 0) continue;
      let text = '';
      for (const payload of eventPayloads(events)) {
        if (payload.trim() === '[DONE]') {
          sawDone = true;
          continue;
        }
        text += sseEvent(convertEvent(payload, ident, chat, p.tokens.length));
      }
      if (text) await out.write(text);
    }
  } catch (err) {
    leg.body.destroy();
    if (err instanceof ClientGoneError) throw err;
    throw legBodyFailure(ctx.deps, leg, err, ctx.signal).toRouterError();
  }
  if (!sawDone) {
    throw new RouterError(
      'DECODE_STREAM_INTERRUPTED',
      `decode endpoint ${leg.endpoint.id} (${leg.endpoint.url}) ended the stream without [DONE]`,
    );
  }
  out.end(SSE_DONE);
}

/** One decoder SSE payload as the client should see it; engine error objects pass unchanged. */
function convertEvent(payload: string, ident: StreamIdentity, chat: boolean, promptTokens: number): unknown {
  let chunk: unknown;
  try {
    chunk = JSON.parse(payload);
  } catch {
    return payload;
  }
  if (!isJsonObject(chunk) || 'error' in chunk) return chunk;
  const usage = chunk['usage'] === undefined ? undefined : clientUsage(chunk['usage'], promptTokens);
  return chat ? completionChunkToChat(chunk, ident, usage) : completionChunkForClient(chunk, ident, usage);
}

async function answerWhole(ctx: RequestContext, decoder: DecodeEndpoint, p: Prefilled): Promise<void> {
  const ident = identity(ctx, p.first);
  const chat = ctx.kind === 'chat';
  const headers = { 'x-request-id': ctx.requestId };
  const build = (
    text: string,
    finish: string | null,
    usage: JsonObject | null,
    stopReason: unknown,
  ): JsonObject =>
    chat
      ? chatCompletion(ident, text, finish, usage, stopReason)
      : textCompletion(ident, text, finish, usage, stopReason);

  if (finishedAtPrefill(p.first, requestedMaxTokens(ctx.body, ctx.kind))) {
    const body = build(
      p.first.text,
      p.first.finishReason ?? 'length',
      prefillOnlyUsage(p.tokens.length),
      p.first.stopReason,
    );
    ctx.out.sendJson(200, body, headers);
    return;
  }
  await waitForKv(ctx, p.waiter);
  const leg = await openDecode(ctx, decoder, p, false);
  const doc = await readJsonLeg(ctx.deps, leg, ctx.signal).catch((err: unknown) => {
    throw err instanceof UpstreamError ? err.toRouterError() : err;
  });
  const choices = Array.isArray(doc['choices']) ? doc['choices'] : [];
  const choice = isJsonObject(choices[0]) ? choices[0] : {};
  const text = p.first.text + (typeof choice['text'] === 'string' ? choice['text'] : '');
  const finish = typeof choice['finish_reason'] === 'string' ? choice['finish_reason'] : null;
  ctx.out.sendJson(
    200,
    build(text, finish, clientUsage(doc['usage'], p.tokens.length), choice['stop_reason'] ?? null),
    headers,
  );
}
