import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startRouter, type RunningRouter } from '../src/server.js';

const validDoc = {
  generation: 7,
  clusters: [
    {
      name: 'default/llama',
      models: ['llama'],
      connector: 'nixl',
      routingThreshold: 16,
      prefill: { endpoints: [{ id: 'p0', url: 'http://127.0.0.1:1' }] },
      decode: { endpoints: [{ id: 'd0', url: 'http://127.0.0.1:2' }] },
    },
  ],
};

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

function call(
  target: { socketPath: string } | { port: number },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        ...target,
        host: '127.0.0.1',
        method,
        path,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

describe('admin API', () => {
  let dir: string;
  let router: RunningRouter;
  let socket: { socketPath: string };
  let tcp: { port: number };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'router-admin-'));
    await writeFile(join(dir, 'token'), 's3cret-token\n');
    router = await startRouter({
      adminSocket: join(dir, 'sub', 'admin.sock'),
      adminPort: 0,
      adminTokenFile: join(dir, 'token'),
      kvNotifyPort: 0,
      logLevel: 'silent',
    });
    socket = { socketPath: router.adminSocket! };
    tcp = { port: Number(new URL(router.adminUrl!).port) };
  });

  afterAll(async () => {
    await router?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the Unix socket without a token, owner-only', async () => {
    expect((await stat(router.adminSocket!)).mode & 0o777).toBe(0o600);
    const put = await call(socket, 'PUT', '/admin/config', validDoc);
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ generation: 7, hash: router.current().hash });
    const got = await call(socket, 'GET', '/admin/config');
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      generation: 7,
      hash: router.current().hash,
      config: { clusters: [{ name: 'default/llama' }] },
    });
    expect(typeof got.body['appliedAt']).toBe('string');
  });

  it('requires the bearer token on the loopback TCP listener', async () => {
    expect(router.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const none = await call(tcp, 'GET', '/admin/config');
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error: { code: 'ADMIN_UNAUTHORIZED', type: 'authentication_error' } });
    const wrong = await call(tcp, 'PUT', '/admin/config', validDoc, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    const ok = await call(tcp, 'GET', '/admin/config', undefined, { authorization: 'Bearer s3cret-token' });
    expect(ok.status).toBe(200);
  });

  it('rejects an invalid document with 400 and the reasons, changing nothing', async () => {
    const before = router.current();
    const bad = {
      ...validDoc,
      clusters: [{ ...validDoc.clusters[0], routingThreshold: -1, connector: 'mooncake' }],
    };
    const r = await call(tcp, 'PUT', '/admin/config', bad, { authorization: 'Bearer s3cret-token' });
    expect(r.status).toBe(400);
    const err = r.body['error'] as { code: string; details: string[] };
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.details.join('\n')).toContain('clusters[0].routingThreshold');
    expect(err.details.join('\n')).toContain('clusters[0].connector');
    const notJson = await call(socket, 'PUT', '/admin/config', '{"clusters": [');
    expect(notJson.status).toBe(400);
    expect(router.current()).toBe(before);
  });

  it('refuses to start a TCP admin listener without a token', async () => {
    await expect(startRouter({ adminPort: 0, kvNotifyPort: 0, logLevel: 'silent' })).rejects.toThrow(
      /bearer token/,
    );
  });
});
