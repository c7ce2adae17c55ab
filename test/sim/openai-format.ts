// OpenAI/vLLM response shapes: completion and chat bodies, SSE chunks, usage, errors. Pure builders.

export type ApiKind = 'completion' | 'chat';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

export interface ResponseMeta {
  kind: ApiKind;
  id: string;
  created: number;
  model: string;
}

/** vLLM names responses after the request id: cmpl-<id> / chatcmpl-<id>. */
export function responseId(kind: ApiKind, requestId: string): string {
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${requestId}`;
}

/** vLLM 0.32's system_fingerprint is vllm-<version>-<hash>; the simulator names itself. */
export const SYSTEM_FINGERPRINT = 'vllm-sim-0.32.0';

export interface Finish {
  reason: string;
  /** The stop string that ended the output, else null (vLLM's stop_reason). */
  stopReason: string | null;
}

// Key sets and order as vLLM 0.32 answers them (checked field by field against the real engine by
// test/real/sim-parity.test.ts).
export function fullResponse(
  m: ResponseMeta,
  text: string,
  finish: Finish,
  u: Usage,
  kvTransferParams: Record<string, unknown> | null,
): Record<string, unknown> {
  const usageBody = { ...usageFields(u), prompt_tokens_details: null, completion_tokens_details: null };
  if (m.kind === 'chat') {
    return {
      id: m.id,
      object: 'chat.completion',
      created: m.created,
      model: m.model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: text,
            refusal: null,
            annotations: null,
            audio: null,
            function_call: null,
            reasoning: null,
          },
          logprobs: null,
          finish_reason: finish.reason,
          stop_reason: finish.stopReason,
          token_ids: null,
          routed_experts: null,
        },
      ],
      service_tier: null,
      system_fingerprint: SYSTEM_FINGERPRINT,
      usage: usageBody,
      prompt_logprobs: null,
      prompt_token_ids: null,
      prompt_text: null,
      kv_transfer_params: kvTransferParams,
      ec_transfer_params: null,
      metrics: null,
    };
  }
  return {
    id: m.id,
    object: 'text_completion',
    created: m.created,
    model: m.model,
    choices: [
      {
        index: 0,
        text,
        logprobs: null,
        finish_reason: finish.reason,
        stop_reason: finish.stopReason,
        token_ids: null,
        prompt_logprobs: null,
        prompt_token_ids: null,
        routed_experts: null,
      },
    ],
    service_tier: null,
    system_fingerprint: SYSTEM_FINGERPRINT,
    usage: usageBody,
    kv_transfer_params: kvTransferParams,
    ec_transfer_params: null,
    metrics: null,
  };
}

/** vLLM orders usage prompt, total, completion. */
function usageFields(u: Usage): Usage {
  return {
    prompt_tokens: u.prompt_tokens,
    total_tokens: u.total_tokens,
    completion_tokens: u.completion_tokens,
  };
}

function chunkEnvelope(m: ResponseMeta, choices: unknown[]): Record<string, unknown> {
  return {
    id: m.id,
    object: m.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: m.created,
    model: m.model,
    choices,
  };
}

/** The chat stream's opening chunk: the assistant role with empty content. */
export function roleChunk(m: ResponseMeta): Record<string, unknown> {
  return {
    ...chunkEnvelope(m, [
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    ]),
    prompt_token_ids: null,
    prompt_text: null,
  };
}

/**
 * One token's chunk. `finish` on the last one; `fingerprint` on the last chunk before [DONE] (vLLM
 * puts system_fingerprint there: the usage chunk when there is one, else the last token's).
 */
export function tokenChunk(
  m: ResponseMeta,
  text: string,
  finish: Finish | null,
  fingerprint = false,
): Record<string, unknown> {
  let choice: Record<string, unknown>;
  if (m.kind === 'chat') {
    choice = { index: 0, delta: { content: text }, logprobs: null, finish_reason: finish?.reason ?? null };
    if (finish) choice.stop_reason = finish.stopReason;
    choice.token_ids = null;
  } else {
    choice = {
      index: 0,
      text,
      logprobs: null,
      finish_reason: finish?.reason ?? null,
      stop_reason: finish?.stopReason ?? null,
      prompt_token_ids: null,
      token_ids: null,
    };
  }
  const body = chunkEnvelope(m, [choice]);
  if (fingerprint) body.system_fingerprint = SYSTEM_FINGERPRINT;
  return body;
}

/** With stream_options.include_usage, a last chunk with no choices carries the usage. */
export function usageChunk(m: ResponseMeta, u: Usage): Record<string, unknown> {
  return { ...chunkEnvelope(m, []), usage: usageFields(u), system_fingerprint: SYSTEM_FINGERPRINT };
}

export function sse(data: unknown): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';

const ERROR_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  404: 'NotFoundError',
  429: 'RateLimitError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

/** vLLM's error body; `param` names the offending field (null when none), as vLLM 0.32 does. */
export function errorBody(
  status: number,
  message: string,
  param: string | null = null,
): { error: Record<string, unknown> } {
  return {
    error: { message, type: ERROR_TYPES[status] ?? 'InternalServerError', param, code: status },
  };
}
