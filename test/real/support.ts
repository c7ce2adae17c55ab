// Helpers of the real-engine tier: fresh prompts, the engines' own metrics as witnesses, a reference
// call straight to one engine.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { metricValue, postJson, postSse, streamText } from '../../router/test/support/http.js';
import { SERVED_MODEL, type RealEngine } from './vllm-engine.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** English prose the repo ships; prompts are cut from it. */
const PROSE = ['architecture.md', 'router.md', 'operations.md']
  .map((f) => readFileSync(join(REPO, 'docs', f), 'utf8'))
  .join('\n')
  .replace(/\s+/g, ' ');

/** A prompt no engine has seen (a nonce first, so no prefix cache hit), of about `chars` characters. */
export function freshPrompt(chars: number): string {
  const nonce = randomUUID().slice(0, 12);
  const at = Math.floor(Math.random() * (PROSE.length - chars - 1));
  return `[${nonce}] ${PROSE.slice(Math.max(0, at), Math.max(0, at) + chars)}`;
}

/** ~1500 characters: ~300-400 real tokens and ~375 estimated, over the tier's threshold of 64. */
export const LONG_CHARS = 1500;
/** ~40 characters: ~10 estimated tokens, under the threshold. */
export const SHORT_CHARS = 40;

export interface EngineCounts {
  /** Finished requests (vllm:request_success_total over every finish reason). */
  finished: number;
  /** Prompt tokens whose KV came over NIXL. */
  external: number;
  /** Prompt tokens computed here. */
  local: number;
  running: number;
}

export async function counts(e: RealEngine): Promise<EngineCounts> {
  const text = await e.metrics();
  return {
    finished: metricValue(text, 'vllm:request_success_total'),
    external: metricValue(text, 'vllm:prompt_tokens_by_source_total', { source: 'external_kv_transfer' }),
    local: metricValue(text, 'vllm:prompt_tokens_by_source_total', { source: 'local_compute' }),
    running: metricValue(text, 'vllm:num_requests_running'),
  };
}

export function delta(after: EngineCounts, before: EngineCounts): EngineCounts {
  return {
    finished: after.finished - before.finished,
    external: after.external - before.external,
    local: after.local - before.local,
    running: after.running,
  };
}

export type Api = 'completions' | 'chat';

export function requestBody(
  api: Api,
  prompt: string | number[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const base = api === 'chat' ? { messages: [{ role: 'user', content: prompt }] } : { prompt };
  return { model: SERVED_MODEL, max_tokens: 12, temperature: 0, ...base, ...extra };
}

export const pathOf = (api: Api): string => (api === 'chat' ? '/v1/chat/completions' : '/v1/completions');

export interface Answer {
  status: number;
  text: string;
  finishReason: string | null;
  json: Record<string, unknown> | undefined;
  raw: string;
}

/** One request, streamed or not, read to the end: status, generated text, last finish_reason. */
export async function call(baseUrl: string, api: Api, body: Record<string, unknown>): Promise<Answer> {
  const url = baseUrl + pathOf(api);
  if (body['stream'] === true) {
    const r = await postSse(url, body);
    const reasons = r.chunks.flatMap((c) =>
      ((c['choices'] as Array<Record<string, unknown>>) ?? []).map((ch) => ch['finish_reason']),
    );
    const failed = r.chunks.some((c) => 'error' in c) || !r.done || r.broken;
    return {
      status: failed && r.status === 200 ? 599 : r.status,
      text: streamText(r.chunks),
      finishReason:
        (reasons.filter((x) => x !== null && x !== undefined).at(-1) as string | undefined) ?? null,
      json: undefined,
      raw: r.raw,
    };
  }
  const r = await postJson(url, body);
  const choice = (r.json?.['choices'] as Array<Record<string, unknown>> | undefined)?.[0];
  const text =
    choice === undefined
      ? ''
      : typeof choice['text'] === 'string'
        ? choice['text']
        : String((choice['message'] as Record<string, unknown>)['content'] ?? '');
  return {
    status: r.status,
    text,
    finishReason: (choice?.['finish_reason'] as string | undefined) ?? null,
    json: r.json,
    raw: r.text,
  };
}

/** The same request answered by one engine alone, not streamed (greedy output is deterministic). */
export async function reference(
  engine: RealEngine,
  api: Api,
  body: Record<string, unknown>,
): Promise<Answer> {
  const plain = { ...body };
  delete plain['stream'];
  delete plain['stream_options'];
  return call(engine.url, api, plain);
}
