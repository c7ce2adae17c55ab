// HTTP helpers for router integration tests: JSON calls, SSE reading with arrival times, polling.
import { request } from 'undici';

export interface JsonReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<JsonReply> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (tests look at text)
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

export async function getJson(url: string): Promise<JsonReply> {
  const res = await request(url);
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

export interface SseReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** `data:` payloads in order, `[DONE]` included. */
  payloads: string[];
  /** Parsed JSON payloads (everything but [DONE]). */
  chunks: Array<Record<string, unknown>>;
  done: boolean;
  /** The response ended abnormally (socket error) rather than cleanly. */
  broken: boolean;
  raw: string;
}

/** Posts a streaming request and collects its events; `onPayload` sees each one as it arrives. */
export async function postSse(
  url: string,
  body: unknown,
  opts: { headers?: Record<string, string>; signal?: AbortSignal; onPayload?: (p: string) => void } = {},
): Promise<SseReply> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...opts.headers },
    body: JSON.stringify(body),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const payloads: string[] = [];
  let raw = '';
  let pending = '';
  let broken = false;
  try {
    for await (const chunk of res.body) {
      const s = (chunk as Buffer).toString('utf8');
      raw += s;
      pending += s;
      let idx: number;
      while ((idx = pending.indexOf('\n\n')) >= 0) {
        const event = pending.slice(0, idx);
        pending = pending.slice(idx + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(l.charAt(5) === ' ' ? 6 : 5))
          .join('\n');
        if (data) {
          payloads.push(data);
          opts.onPayload?.(data);
        }
      }
    }
  } catch {
    broken = true;
  }
  const chunks = payloads.filter((p) => p !== '[DONE]').map((p) => JSON.parse(p) as Record<string, unknown>);
  return {
    status: res.statusCode,
    headers: res.headers,
    payloads,
    chunks,
    done: payloads.at(-1) === '[DONE]',
    broken,
    raw,
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sum of a counter/gauge in Prometheus text, over series whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (!Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Text of a completion or chat completion (whole or from stream chunks). */
export function completionText(reply: Record<string, unknown>): string {
  const c = (reply['choices'] as Array<Record<string, unknown>>)[0]!;
  if (typeof c['text'] === 'string') return c['text'];
  return String((c['message'] as Record<string, unknown>)['content']);
}

export function streamText(chunks: Array<Record<string, unknown>>): string {
  let out = '';
  for (const ch of chunks) {
    for (const c of (ch['choices'] as Array<Record<string, unknown>>) ?? []) {
      if (typeof c['text'] === 'string') out += c['text'];
      const delta = c['delta'] as Record<string, unknown> | undefined;
      if (delta && typeof delta['content'] === 'string') out += delta['content'];
    }
  }
  return out;
}
