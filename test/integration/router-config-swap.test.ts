// Atomic config swaps: configs pushed through the admin socket while requests run; every request
// finishes on the config it started with and none fails.
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { postJson, postSse, waitFor } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(180_000);

const LONG = 'Configs change while requests are in flight; none of them may notice. '.repeat(25);

let dir: string;
let router: RunningRouter;
let prefill: RunningEngine;
let d1: RunningEngine;
let d2: RunningEngine;

function putConfig(socketPath: string, doc: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath, method: 'PUT', path: '/admin/config', headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(doc));
  });
}

const configA = (generation: number) =>
  configDoc([{ connector: 'nixl', routingThreshold: 64, prefill: [prefill], decode: [d1] }], generation);
const configB = (generation: number) =>
  configDoc(
    [
      {
        connector: 'nixl',
        routingThreshold: 0,
        loadBalancing: 'least_loaded',
        prefill: [prefill],
        decode: [d2],
      },
    ],
    generation,
  );

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'router-swap-'));
  [prefill, d1, d2] = await Promise.all([
    startEngine({ role: 'prefill', connector: 'nixl' }),
    startEngine({ role: 'decode', connector: 'nixl', itlMs: 5 }),
    startEngine({ role: 'decode', connector: 'nixl', itlMs: 5 }),
  ]);
  router = await startRouter({
    kvNotifyPort: 0,
    adminSocket: join(dir, 'admin.sock'),
    engineStatsIntervalMs: 200,
    logLevel: 'silent',
  });
  expect((await putConfig(router.adminSocket!, configA(1))).status).toBe(200);
});

afterAll(async () => {
  await router?.stop();
  await Promise.all([prefill?.stop(), d1?.stop(), d2?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('atomic config swap', () => {
  it('finishes an in-flight stream on the config it started with', async () => {
    await Promise.all([d1.reset(), d2.reset()]);
    let first = false;
    const stream = postSse(
      `${router.url}/v1/completions`,
      { prompt: 'short one', max_tokens: 60, stream: true },
      { headers: { 'x-request-id': 'long-stream' }, onPayload: () => (first = true) },
    );
    await waitFor('the stream to start', () => first);
    expect((await putConfig(router.adminSocket!, configB(2))).status).toBe(200);
    const after = await postJson(`${router.url}/v1/completions`, { prompt: 'short one', max_tokens: 2 });
    expect(after.status).toBe(200);
    const done = await stream;
    expect(done.done).toBe(true);
    expect(done.chunks).toHaveLength(60);
    expect((await d1.requests()).map((r) => r.id)).toEqual(['long-stream']);
    expect(await d2.requests()).toEqual([expect.objectContaining({ leg: 'decode', kvSource: 'nixl' })]);
  });

  it('loses no request while configs swap under load', async () => {
    await Promise.all([d1.reset(), d2.reset(), prefill.reset()]);
    let stop = false;
    const failures: string[] = [];
    let completed = 0;
    const worker = async (n: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const long = (i + n) % 2 === 0;
        const body = { prompt: long ? LONG : 'short', max_tokens: 8 };
        if ((i + n) % 3 === 0) {
          const r = await postSse(`${router.url}/v1/completions`, { ...body, stream: true });
          if (r.status !== 200 || !r.done) failures.push(`stream ${r.status} ${r.raw.slice(-200)}`);
        } else {
          const r = await postJson(`${router.url}/v1/completions`, body);
          if (r.status !== 200) failures.push(`${r.status} ${r.text}`);
        }
        completed++;
      }
    };
    const workers = Array.from({ length: 6 }, (_, n) => worker(n));
    for (let g = 3; g < 23; g++) {
      const r = await putConfig(router.adminSocket!, g % 2 === 0 ? configB(g) : configA(g));
      expect(r.status).toBe(200);
      await new Promise((res) => setTimeout(res, 40));
    }
    stop = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(completed).toBeGreaterThan(20);
    expect((await d1.requests()).length).toBeGreaterThan(0);
    expect((await d2.requests()).length).toBeGreaterThan(0);
    expect(router.current().generation).toBe(22);
  });
});
