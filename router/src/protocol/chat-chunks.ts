// Completion -> chat conversion for the LMCache path, whose legs both run on /v1/completions
// while the client asked /v1/chat/completions. Pure.
import { isJsonObject, type JsonObject } from './json.js';

/** One id, creation time and model for every chunk of one response. */
export interface StreamIdentity {
  id: string;
  created: number;
  model: string;
}

/** The first chat chunk: the assistant role with empty content (OpenAI and vLLM send it first). */
export function chatRoleChunk(ident: StreamIdentity): JsonObject {
  return chatChunk(ident, [
    { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
  ]);
}

export function chatContentChunk(
  ident: StreamIdentity,
  text: string,
  finishReason: string | null,
  stopReason?: unknown,
): JsonObject {
  const choice: JsonObject = {
    index: 0,
    delta: text.length > 0 || finishReason === null ? { content: text } : {},
    logprobs: null,
    finish_reason: finishReason,
  };
  if (stopReason !== undefined && stopReason !== null) choice['stop_reason'] = stopReason;
  return chatChunk(ident, [choice]);
}

export function chatUsageChunk(ident: StreamIdentity, usage: JsonObject): JsonObject {
  return { ...chatChunk(ident, []), usage };
}

/**
 * A text_completion chunk as a chat.completion.chunk: text -> delta.content, finish and stop
 * reasons kept, usage (already adjusted by the caller) kept; ids unified to the stream's.
 */
export function completionChunkToChat(
  chunk: JsonObject,
  ident: StreamIdentity,
  usage?: JsonObject | null,
): JsonObject {
  const choices = Array.isArray(chunk['choices']) ? chunk['choices'] : [];
  const converted = choices.filter(isJsonObject).map((c) => {
    const text = typeof c['text'] === 'string' ? c['text'] : '';
    const finish = typeof c['finish_reason'] === 'string' ? c['finish_reason'] : null;
    const out: JsonObject = {
      index: typeof c['index'] === 'number' ? c['index'] : 0,
      delta: text.length > 0 || finish === null ? { content: text } : {},
      logprobs: null,
      finish_reason: finish,
    };
    if (c['stop_reason'] !== undefined && c['stop_reason'] !== null) out['stop_reason'] = c['stop_reason'];
    return out;
  });
  const out = chatChunk(ident, converted);
  if (usage) out['usage'] = usage;
  return out;
}

/** A text_completion chunk with the stream's id and the client-view usage. */
export function completionChunkForClient(
  chunk: JsonObject,
  ident: StreamIdentity,
  usage?: JsonObject | null,
): JsonObject {
  const out: JsonObject = { ...chunk, id: ident.id, created: ident.created, model: ident.model };
  if (usage !== undefined) out['usage'] = usage;
  return out;
}

export function completionHeadChunk(
  ident: StreamIdentity,
  text: string,
  finishReason: string | null,
  stopReason: unknown = null,
): JsonObject {
  return {
    id: ident.id,
    object: 'text_completion',
    created: ident.created,
    model: ident.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: stopReason }],
    usage: null,
  };
}

/** A whole (non-streamed) chat completion built from completion text. */
export function chatCompletion(
  ident: StreamIdentity,
  text: string,
  finishReason: string | null,
  usage: JsonObject | null,
  stopReason: unknown = null,
): JsonObject {
  return {
    id: ident.id,
    object: 'chat.completion',
    created: ident.created,
    model: ident.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text },
        logprobs: null,
        finish_reason: finishReason,
        stop_reason: stopReason,
      },
    ],
    usage,
  };
}

/** A whole text completion built from the first token and the decoder's continuation. */
export function textCompletion(
  ident: StreamIdentity,
  text: string,
  finishReason: string | null,
  usage: JsonObject | null,
  stopReason: unknown = null,
): JsonObject {
  return {
    id: ident.id,
    object: 'text_completion',
    created: ident.created,
    model: ident.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: stopReason }],
    usage,
  };
}

function chatChunk(ident: StreamIdentity, choices: JsonObject[]): JsonObject {
  return {
    id: ident.id,
    object: 'chat.completion.chunk',
    created: ident.created,
    model: ident.model,
    choices,
  };
}
