// Failure injection knobs of the simulator: error rate and status, hang, drop and stall mid-stream.
import { afterAll, beforeAll, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { decideFault } from '../sim/faults.js';
import { startEngine, stopAll, type RunningEngine } from '../sim/harness.js';
import { metricValue, postJson } from '../sim/http-client.js';

jest.setTimeout(120_000);

let e: RunningEngine;

beforeAll(async () => {
  e = await startEngine({ itlMs: 5 });
});
beforeEach(async () => {
  await e.reset();
});
afterAll(async () => {
  await stopAll();
});

const streamBody = { prompt: 'fault me', max_tokens: 10, stream: true };

/** Reads an SSE response chunk by chunk; returns the data events seen and how the stream ended. */
async function readStream(
  signal?: AbortSignal,
): Promise<{ events: string[]; ended: 'done' | 'error' | 'aborted'; status: number }> {
  const r = await fetch(`${e.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(streamBody),
    signal,
  });
  const events: string[] = [];
  let buf = '';
  try {
    const decoder = new TextDecoder();
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        events.push(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    }
  } catch (err) {
    return { events, ended: (err as Error).name === 'AbortError' ? 'aborted' : 'error', status: r.status };
  }
  return { events, ended: events[events.length - 1] === 'data: [DONE]' ? 'done' : 'error', status: r.status };
}

describe('fault decisions', () => {
  test('failRate spreads failures deterministically', () => {
    const f = { failRate: 0.25, failStatus: 503, hang: false, dropAfterChunks: null, stallAfterChunks: null };
    const kinds = Array.from({ length: 8 }, (_, n) => decideFault(f, n).kind);
    expect(kinds.filter((k) => k === 'fail')).toHaveLength(2);
    expect(decideFault({ ...f, failRate: 0 }, 3).kind).toBe('none');
    expect(decideFault({ ...f, hang: true }, 0).kind).toBe('hang');
  });
});

describe('fault injection over HTTP', () => {
  test('failRate 1 answers every request with failStatus in OpenAI shape', async () => {
    await e.setFaults({ failRate: 1, failStatus: 503 });
    const r = await postJson<{ error: { code: number } }>(`${e.url}/v1/completions`, {
      prompt: 'x',
      max_tokens: 1,
    });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe(503);
    expect(metricValue(await e.metrics(), 'sim_faults_injected_total', 'kind="fail"')).toBe(1);
  });

  test('failRate 0.5 fails exactly every other request', async () => {
    await e.setFaults({ failRate: 0.5 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await postJson(`${e.url}/v1/completions`, { prompt: 'x', max_tokens: 1 })).status);
    expect(statuses.filter((s) => s === 500)).toHaveLength(2);
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
  });

  test('hang never answers; the request is logged as aborted once the client gives up', async () => {
    await e.setFaults({ hang: true });
    const ac = new AbortController();
    const pending = fetch(`${e.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'hang-1' },
      body: JSON.stringify({ prompt: 'x', max_tokens: 1 }),
      signal: ac.signal,
    });
    const outcome = await Promise.race([
      pending.then(() => 'answered'),
      new Promise((r) => setTimeout(() => r('still waiting'), 500)),
    ]);
    expect(outcome).toBe('still waiting');
    ac.abort();
    await expect(pending).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 200));
    expect((await e.requests()).find((r) => r.id === 'hang-1')?.status).toBe(499);
  });

  test('dropAfterChunks cuts the connection after N chunks without [DONE]', async () => {
    await e.setFaults({ dropAfterChunks: 3 });
    const r = await readStream();
    expect(r.status).toBe(200);
    expect(r.ended).toBe('error');
    expect(r.events).toHaveLength(3);
    expect(r.events).not.toContain('data: [DONE]');
  });

  test('dropAfterChunks on a non-streaming request closes without a body', async () => {
    await e.setFaults({ dropAfterChunks: 0 });
    await expect(
      fetch(`${e.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x' }) }),
    ).rejects.toThrow();
  });

  test('stallAfterChunks keeps the connection open but stops sending', async () => {
    await e.setFaults({ stallAfterChunks: 2 });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 1500);
    const r = await readStream(ac.signal);
    clearTimeout(timer);
    expect(r.ended).toBe('aborted');
    expect(r.events).toHaveLength(2);
  });

  test('bad fault knobs are rejected; reset restores the CLI defaults', async () => {
    const bad = await postJson(`${e.url}/sim/faults`, { failRate: 2 });
    expect(bad.status).toBe(400);
    await e.setFaults({ failRate: 1 });
    await e.reset();
    expect((await postJson(`${e.url}/v1/completions`, { prompt: 'x', max_tokens: 1 })).status).toBe(200);
  });

  test('CLI fault flags apply from the start', async () => {
    const failing = await startEngine({ failRate: 1, failStatus: 429 });
    try {
      expect((await postJson(`${failing.url}/v1/completions`, { prompt: 'x' })).status).toBe(429);
    } finally {
      await failing.stop();
    }
  });
});
