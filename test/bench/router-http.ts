// Small HTTP helpers shared by the router demo and benchmark: a timed SSE request and Prometheus
// text parsing.
import { request } from 'undici';

export interface TimedStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** From sending the request to the first SSE event carrying generated text. */
  ttftMs: number | undefined;
  totalMs: number;
  /** Generated text, from completion (`text`) or chat (`delta.content`) chunks. */
  text: string;
  /** Events that carried generated text. */
  tokenEvents: number;
  done: boolean;
  /** Non-SSE body (an error reply). */
  body: string;
}

/** POSTs a streaming request and times it; resolves once the stream ends. */
export async function timedStream(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<TimedStream> {
  const t0 = performance.now();
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const sse = String(res.headers['content-type'] ?? '').includes('text/event-stream');
  let ttftMs: number | undefined;
  let text = '';
  let tokenEvents = 0;
  let done = false;
  let pending = '';
  let raw = '';
  for await (const chunk of res.body) {
    const s = (chunk as Buffer).toString('utf8');
    if (!sse) {
      raw += s;
      continue;
    }
    pending += s;
    let idx: number;
    while ((idx = pending.indexOf('\n\n')) >= 0) {
      const event = pending.slice(0, idx);
      pending = pending.slice(idx + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const piece = generatedText(data);
        if (piece) {
          ttftMs ??= performance.now() - t0;
          text += piece;
          tokenEvents++;
        }
      }
    }
  }
  return {
    status: res.statusCode,
    headers: res.headers,
    ttftMs,
    totalMs: performance.now() - t0,
    text,
    tokenEvents,
    done,
    body: raw,
  };
}

function generatedText(data: string): string {
  try {
    const doc = JSON.parse(data) as {
      choices?: Array<{ text?: unknown; delta?: { content?: unknown } }>;
    };
    const c = doc.choices?.[0];
    if (typeof c?.text === 'string') return c.text;
    if (typeof c?.delta?.content === 'string') return c.delta.content;
  } catch {
    // an error event or a partial line: not generated text
  }
  return '';
}

export async function getText(url: string): Promise<string> {
  const res = await request(url);
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`GET ${url}: HTTP ${res.statusCode} ${text}`);
  return text;
}

/** Sum of a metric's samples whose labels include the given ones (shared with the router's tests). */
export { metricValue as metricSum } from '../../router/test/support/http.js';

/** Label sets of `name` samples whose value went up between two scrapes. */
export function increasedSeries(before: string, after: string, name: string): Array<Record<string, string>> {
  const parse = (text: string): Map<string, number> => {
    const m = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      const end = line.lastIndexOf('}');
      m.set(line.slice(name.length + 1, end), Number(line.slice(line.lastIndexOf(' ') + 1)));
    }
    return m;
  };
  const a = parse(before);
  const out: Array<Record<string, string>> = [];
  for (const [labels, value] of parse(after)) {
    if (value <= (a.get(labels) ?? 0)) continue;
    out.push(Object.fromEntries([...labels.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!])));
  }
  return out;
}
