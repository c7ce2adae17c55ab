// Backpressure: a client that stops reading stalls the engine's stream instead of making the
// router buffer the whole response.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { metricValue, waitFor } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(180_000);

const MAX_TOKENS = 900_000; // ~100 MB of SSE if generated in full

let router: RunningRouter;
let decode: RunningEngine;
let prefill: RunningEngine;

beforeAll(async () => {
  [prefill, decode] = await Promise.all([
    startEngine({ role: 'prefill', connector: 'nixl' }),
    startEngine({ role: 'decode', connector: 'nixl', maxModelLen: 1_000_000 }),
  ]);
  router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
  router.applyConfig(
    configDoc([{ connector: 'nixl', routingThreshold: 1_000_000, prefill: [prefill], decode: [decode] }]),
  );
});

afterAll(async () => {
  await router?.stop();
  await Promise.all([prefill?.stop(), decode?.stop()]);
});

async function generated(): Promise<number> {
  return metricValue(await decode.metrics(), 'vllm:generation_tokens_total');
}

describe('backpressure', () => {
  it('stalls the upstream while the client does not read', async () => {
    const { port } = new URL(router.url);
    const body = JSON.stringify({ prompt: 'go on forever', max_tokens: MAX_TOKENS, stream: true });
    const socket: Socket = connect(Number(port), '127.0.0.1');
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `POST /v1/completions HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      // Read a little to be sure the stream started, then stop reading entirely.
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.pause();

      // Wait until generation stops moving: the socket buffers are full and every hop waits for drain.
      let last = -1;
      const stalledAt = await waitFor(
        'the engine to stall behind the paused client',
        async () => {
          await new Promise((r) => setTimeout(r, 750));
          const now = await generated();
          const stalled = now === last;
          last = now;
          return stalled ? now : undefined;
        },
        120_000,
      );
      expect(stalledAt).toBeGreaterThan(0);
      expect(stalledAt).toBeLessThan(MAX_TOKENS / 4);
      expect((await decode.requests())[0]).toMatchObject({ status: 0 });
    } finally {
      socket.destroy();
    }
    // The client left: the router aborts the stalled leg.
    await waitFor('the decode leg to be aborted', async () => (await decode.requests())[0]?.status === 499);
  });
});
