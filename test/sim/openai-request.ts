// Parses and validates OpenAI completion/chat bodies the way vLLM does (status codes and limits). Pure.
import type { ApiKind } from './openai-format.js';
import { applyChatTemplate, isTokenIdList, tokenizeText, type ChatMessage } from './tokenizer.js';

export interface ParsedRequest {
  kind: ApiKind;
  model: string;
  promptTokens: number[];
  /** The prompt arrived as token ids (the shape of an LMCache decode leg). */
  promptIsTokenIds: boolean;
  maxTokens: number;
  maxTokensGiven: boolean;
  /** Stop strings: the output ends before the first one it contains (finish_reason "stop"). */
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  kvTransferParams: unknown;
}

export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The field vLLM names in the error body's `param` (null when none). */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

interface Limits {
  servedModel: string;
  maxModelLen: number;
  defaultMaxTokens: number;
}

type Body = Record<string, unknown>;

function optionalInt(body: Body, key: string): number | null {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new RequestError(400, `${key} must be an integer`);
  return v;
}

function completionPrompt(prompt: unknown): { tokens: number[]; isIds: boolean } {
  let p = prompt;
  // A batch of one is the single prompt; the simulator serves one prompt per request.
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
  if (typeof p === 'string') {
    if (p.length === 0) throw new RequestError(400, 'prompt cannot be empty');
    return { tokens: tokenizeText(p), isIds: false };
  }
  if (isTokenIdList(p)) return { tokens: [...p], isIds: true };
  if (Array.isArray(p) && p.length > 1)
    throw new RequestError(400, 'the simulator serves one prompt per request');
  throw new RequestError(400, 'prompt must be a string, a list of token ids, or a list with one of those');
}

export function parseRequest(kind: ApiKind, body: unknown, limits: Limits): ParsedRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RequestError(400, 'request body must be a JSON object');
  }
  const b = body as Body;
  if (b.model !== undefined && b.model !== null && b.model !== limits.servedModel) {
    throw new RequestError(
      404,
      `The model \`${String(b.model)}\` does not exist. Valid aliases: ${limits.servedModel}.`,
      'model',
    );
  }

  let promptTokens: number[];
  let promptIsTokenIds = false;
  if (kind === 'completion') {
    if (b.prompt === undefined || b.prompt === null) {
      throw new RequestError(
        400,
        'Either prompt or prompt_embeds must be provided and non-empty. (parameter=prompt)',
        'prompt',
      );
    }
    const p = completionPrompt(b.prompt);
    promptTokens = p.tokens;
    promptIsTokenIds = p.isIds;
  } else {
    const msgs = b.messages;
    if (!Array.isArray(msgs) || msgs.length === 0)
      throw new RequestError(400, 'messages must be a non-empty list');
    for (const m of msgs) {
      if (typeof m !== 'object' || m === null || typeof (m as Body).role !== 'string') {
        throw new RequestError(400, 'each message needs a role');
      }
    }
    promptTokens = applyChatTemplate(msgs as ChatMessage[], b.add_generation_prompt !== false);
  }

  const n = optionalInt(b, 'n');
  if (n !== null && n !== 1) throw new RequestError(400, 'the simulator supports n=1 only');

  // Chat prefers max_completion_tokens (max_tokens is its deprecated alias).
  const maxGiven =
    kind === 'chat'
      ? (optionalInt(b, 'max_completion_tokens') ?? optionalInt(b, 'max_tokens'))
      : optionalInt(b, 'max_tokens');
  if (maxGiven !== null && maxGiven < 1) {
    throw new RequestError(
      400,
      `max_tokens must be at least 1, got ${maxGiven}. (parameter=max_tokens, value=${maxGiven})`,
      'max_tokens',
    );
  }
  const minTokens = optionalInt(b, 'min_tokens') ?? 0;
  if (minTokens < 0)
    throw new RequestError(400, `min_tokens must be greater than or equal to 0, got ${minTokens}.`);
  if (maxGiven !== null && minTokens > maxGiven) {
    throw new RequestError(
      400,
      `min_tokens must be less than or equal to max_tokens=${maxGiven}, got ${minTokens}.`,
    );
  }

  // vLLM 0.32's two context-length errors, in its order and words
  const len = limits.maxModelLen;
  const room = len - promptTokens.length;
  if (room < 1) {
    throw new RequestError(
      400,
      `This model's maximum context length is ${len} tokens. However, your prompt contains at least ` +
        `${promptTokens.length} input tokens, which exceeds this limit even without any output tokens. ` +
        `Please reduce the length of the input prompt. (parameter=input_tokens, value=${promptTokens.length})`,
      'input_tokens',
    );
  }
  if (maxGiven !== null && maxGiven > len) {
    throw new RequestError(
      400,
      `max_tokens=${maxGiven} cannot be greater than max_model_len=${len}. Please request fewer output ` +
        `tokens. (parameter=max_tokens, value=${maxGiven})`,
      'max_tokens',
    );
  }
  // a max_tokens that fits max_model_len but not beside the prompt is clamped to the room left (vLLM 0.32)

  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') {
    throw new RequestError(400, 'stream must be a boolean');
  }
  const stream = b.stream === true;
  const so = b.stream_options;
  // vLLM checks truthiness (Python): an empty stream_options object is tolerated without stream.
  const soGiven = typeof so === 'object' && so !== null ? Object.keys(so).length > 0 : Boolean(so);
  if (soGiven && !stream) {
    throw new RequestError(
      400,
      'Stream options can only be defined when `stream=True`. (parameter=stream_options)',
      'stream_options',
    );
  }
  const includeUsage = typeof so === 'object' && so !== null && (so as Body).include_usage === true;

  return {
    kind,
    model: limits.servedModel,
    promptTokens,
    promptIsTokenIds,
    maxTokens: Math.min(maxGiven ?? limits.defaultMaxTokens, room),
    maxTokensGiven: maxGiven !== null,
    stop: stopStrings(b.stop),
    stream,
    includeUsage,
    kvTransferParams: b.kv_transfer_params,
  };
}

function stopStrings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.length > 0 ? [v] : [];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.filter((x) => x.length > 0);
  throw new RequestError(400, 'stop must be a string or a list of strings', 'stop');
}
