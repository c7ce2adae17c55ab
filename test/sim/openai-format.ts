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

export function fullResponse(
  m: ResponseMeta,
  text: string,
  finishReason: string,
  u: Usage,
  kvTransferParams: Record<string, unknown> | null,
): Record<string, unknown> {
  const choice =
    m.kind === 'chat'
      ? {
          index: 0,
          message: { role: 'assistant', content: text, tool_calls: [] },
          logprobs: null,
          finish_reason: finishReason,
          stop_reason: null,
        }
      : {
          index: 0,
          text,
          logprobs: null,
          finish_reason: finishReason,
          stop_reason: null,
          prompt_logprobs: null,
        };
  return {
    id: m.id,
    object: m.kind === 'chat' ? 'chat.completion' : 'text_completion',
    created: m.created,
    model: m.model,
    choices: [choice],
    usage: u,
    kv_transfer_params: kvTransferParams,
  };
}

function chunkEnvelope(
  m: ResponseMeta,
  choices: unknown[],
  u: Usage | null | undefined,
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: m.id,
    object: m.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: m.created,
    model: m.model,
    choices,
  };
  if (u !== undefined) body.usage = u;
  return body;
}

/** The chat stream's opening chunk: the assistant role with empty content. */
export function roleChunk(m: ResponseMeta): Record<string, unknown> {
  return chunkEnvelope(
    m,
    [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    undefined,
  );
}

export function tokenChunk(
  m: ResponseMeta,
  text: string,
  finishReason: string | null,
): Record<string, unknown> {
  const choice =
    m.kind === 'chat'
      ? { index: 0, delta: { content: text }, logprobs: null, finish_reason: finishReason, stop_reason: null }
      : { index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: null };
  return chunkEnvelope(m, [choice], undefined);
}

/** With stream_options.include_usage, a last chunk with no choices carries the usage. */
export function usageChunk(m: ResponseMeta, u: Usage): Record<string, unknown> {
  return chunkEnvelope(m, [], u);
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

export function errorBody(status: number, message: string): { error: Record<string, unknown> } {
  return {
    error: { message, type: ERROR_TYPES[status] ?? 'InternalServerError', param: null, code: status },
  };
}
