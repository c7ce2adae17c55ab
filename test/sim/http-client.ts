// Small HTTP helpers for tests that talk to simulator processes.

export interface JsonReply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export async function postJson<T = Record<string, unknown>>(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonReply<T>> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { raw: text };
  }
  return { status: r.status, body: parsed as T, headers: r.headers };
}

/** Reads a whole SSE response: the raw text and the parsed `data:` payloads ("[DONE]" kept as a string). */
export async function postSse(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; contentType: string | null; raw: string; events: unknown[] }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const raw = await r.text();
  const events = raw
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => {
      const data = block.slice('data: '.length);
      return data === '[DONE]' ? data : (JSON.parse(data) as unknown);
    });
  return { status: r.status, contentType: r.headers.get('content-type'), raw, events };
}

/** Value of one sample in Prometheus text (first line whose name and labels match), or 0. */
export function metricValue(text: string, name: string, labelsSubstring = ''): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const [series, value] = line.split(/ (?=[^ ]+$)/);
    if (!series || value === undefined) continue;
    const bare = series.split('{')[0];
    if (bare === name && series.includes(labelsSubstring)) return Number(value);
  }
  return 0;
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
