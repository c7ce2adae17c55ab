// LMCache disaggregated-prefill protocol, as LMCache's reference proxy speaks it
// (LMCache examples/disagg_prefill/disagg_proxy_server.py), completed for string, token and chat
// prompts. Pure body rewrites; both legs use /v1/completions with token-id prompts.
import type { GenerationKind } from '../classify/estimate-tokens.js';
import type { LmcacheRegistry } from '../config/index.js';
import { isJsonObject, type JsonObject } from './json.js';

/** The per-request transfer target LMCache's sender reads from kv_transfer_params.disagg_spec. */
export interface DisaggSpec {
  req_id: string;
  receiver_host: string;
  receiver_init_port: number[];
  receiver_alloc_port: number[];
}

export function disaggSpec(reqId: string, registry: LmcacheRegistry): DisaggSpec {
  return {
    req_id: reqId,
    receiver_host: registry.receiverHost,
    receiver_init_port: [...registry.initPorts],
    receiver_alloc_port: [...registry.allocPorts],
  };
}

/** Chat-only fields that a /v1/completions request cannot carry. */
const CHAT_ONLY_FIELDS = [
  'messages',
  'max_completion_tokens',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'functions',
  'function_call',
  'chat_template',
  'chat_template_kwargs',
  'add_generation_prompt',
  'continue_final_message',
  'documents',
  'logprobs',
  'top_logprobs',
  'echo',
  'add_special_tokens',
  'modalities',
  'audio',
  'reasoning_effort',
  'store',
  'metadata',
  'web_search_options',
  'prediction',
];

/**
 * Why this request cannot take the LMCache path (it is then served direct), or undefined.
 * The protocol continues exactly one sequence from one first token, and chat features that are
 * applied by the chat endpoint (tool parsing, chat logprobs) would be lost on /v1/completions.
 */
export function lmcacheUnsupportedReason(body: JsonObject, kind: GenerationKind): string | undefined {
  if (typeof body['n'] === 'number' && body['n'] > 1) return 'n > 1';
  if (typeof body['best_of'] === 'number' && body['best_of'] > 1) return 'best_of > 1';
  if (kind === 'completions') {
    if (body['echo'] === true) return 'echo';
    const p = body['prompt'];
    if (Array.isArray(p) && p.length > 0 && typeof p[0] !== 'number') {
      if (p.length > 1 || typeof p[0] !== 'string') return 'batched prompts';
    }
    if (typeof p !== 'string' && !Array.isArray(p)) return 'no prompt';
    if (Array.isArray(p) && p.length === 0) return 'empty prompt';
  } else {
    if (!Array.isArray(body['messages']) || body['messages'].length === 0) return 'no messages';
    if (Array.isArray(body['tools']) && body['tools'].length > 0) return 'tools';
    if (body['logprobs'] === true) return 'chat logprobs';
  }
  return undefined;
}

/** The client's requested output length: chat prefers max_completion_tokens. Undefined when absent. */
export function requestedMaxTokens(body: JsonObject, kind: GenerationKind): number | undefined {
  const v = kind === 'chat' ? (body['max_completion_tokens'] ?? body['max_tokens']) : body['max_tokens'];
  return typeof v === 'number' ? v : undefined;
}

/** Token ids already in the prompt (no /tokenize call needed), or undefined. */
export function promptTokenIds(body: JsonObject, kind: GenerationKind): number[] | undefined {
  if (kind !== 'completions') return undefined;
  const p = body['prompt'];
  if (Array.isArray(p) && p.length > 0 && p.every((t) => typeof t === 'number')) return p as number[];
  return undefined;
}

/** vLLM /tokenize body: `prompt` for completions, `messages` (+ chat template options) for chat. */
export function tokenizeBody(body: JsonObject, kind: GenerationKind): JsonObject {
  const out: JsonObject = {};
  if (body['model'] !== undefined) out['model'] = body['model'];
  if (kind === 'completions') {
    const p = body['prompt'];
    out['prompt'] = Array.isArray(p) ? p[0] : p;
    if (body['add_special_tokens'] !== undefined) out['add_special_tokens'] = body['add_special_tokens'];
    return out;
  }
  out['messages'] = body['messages'];
  // The generation prompt must be in the tokens, exactly as the chat endpoint would render it.
  out['add_generation_prompt'] = body['add_generation_prompt'] ?? true;
  for (const k of [
    'continue_final_message',
    'chat_template',
    'chat_template_kwargs',
    'add_special_tokens',
    'tools',
    'documents',
  ]) {
    if (body[k] !== undefined) out[k] = body[k];
  }
  return out;
}

export function tokensFromTokenizeResponse(doc: JsonObject): number[] | undefined {
  const t = doc['tokens'];
  return Array.isArray(t) && t.every((x) => typeof x === 'number') ? (t as number[]) : undefined;
}

/**
 * The /v1/completions form of the client's request, minus prompt and lengths (set per leg).
 * Chat-only fields are dropped; sampling and vLLM extras (temperature, stop, seed, ...) stay.
 */
export function completionBase(body: JsonObject, kind: GenerationKind): JsonObject {
  const base: JsonObject = { ...body };
  if (kind === 'chat') for (const k of CHAT_ONLY_FIELDS) delete base[k];
  for (const k of ['prompt', 'max_tokens', 'stream', 'stream_options', 'kv_transfer_params', 'min_tokens']) {
    delete base[k];
  }
  return base;
}

/** Prefill: the tokens, one output token, not streamed, with the disagg_spec naming the decoder. */
export function lmcachePrefillBody(base: JsonObject, tokens: number[], spec: DisaggSpec): JsonObject {
  return {
    ...base,
    prompt: tokens,
    max_tokens: 1,
    stream: false,
    kv_transfer_params: { ret_first_tok: true, disagg_spec: spec },
  };
}

/** What the prefill leg produced: the first token (id and text) and why it stopped. */
export interface FirstToken {
  id: number;
  text: string;
  finishReason: string | null;
  stopReason: unknown;
  responseId: string | undefined;
  created: number | undefined;
  model: string | undefined;
}

export function firstTokenOf(prefill: JsonObject): FirstToken | undefined {
  const params = prefill['kv_transfer_params'];
  if (!isJsonObject(params) || typeof params['first_tok'] !== 'number') return undefined;
  const choices = prefill['choices'];
  const choice = Array.isArray(choices) && isJsonObject(choices[0]) ? choices[0] : {};
  return {
    id: params['first_tok'],
    text: typeof choice['text'] === 'string' ? choice['text'] : '',
    finishReason: typeof choice['finish_reason'] === 'string' ? choice['finish_reason'] : null,
    stopReason: choice['stop_reason'] ?? null,
    responseId: typeof prefill['id'] === 'string' ? prefill['id'] : undefined,
    created: typeof prefill['created'] === 'number' ? prefill['created'] : undefined,
    model: typeof prefill['model'] === 'string' ? prefill['model'] : undefined,
  };
}

/**
 * The prefill already ended the generation: the client wanted one token, or the first token
 * was a stop (EOS or stop string), so no decode leg runs.
 */
export function finishedAtPrefill(first: FirstToken, maxTokens: number | undefined): boolean {
  return maxTokens === 1 || first.finishReason === 'stop';
}

/**
 * Decode: prompt = tokens + [first token]; max_tokens = requested - 1, or absent when the
 * client gave none (the decoder then uses the remaining context, as the client asked; never 0
 * or -1); min_tokens likewise one less.
 */
export function lmcacheDecodeBody(
  base: JsonObject,
  tokens: readonly number[],
  firstTok: number,
  client: { maxTokens: number | undefined; minTokens: unknown; stream: boolean; streamOptions: unknown },
): JsonObject {
  const body: JsonObject = { ...base, prompt: [...tokens, firstTok], stream: client.stream };
  if (client.maxTokens !== undefined) body['max_tokens'] = client.maxTokens - 1;
  if (typeof client.minTokens === 'number' && client.minTokens > 1) body['min_tokens'] = client.minTokens - 1;
  if (client.stream && client.streamOptions !== undefined) body['stream_options'] = client.streamOptions;
  return body;
}

/** Usage as the client sees it: its own prompt length, and the prefill's token counted as output. */
export function clientUsage(decodeUsage: unknown, promptTokens: number): JsonObject | null {
  if (!isJsonObject(decodeUsage)) return null;
  const completion =
    (typeof decodeUsage['completion_tokens'] === 'number' ? decodeUsage['completion_tokens'] : 0) + 1;
  return {
    ...decodeUsage,
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
  };
}

export function prefillOnlyUsage(promptTokens: number): JsonObject {
  return { prompt_tokens: promptTokens, completion_tokens: 1, total_tokens: promptTokens + 1 };
}
