// Wire details a proxy in front of vLLM owes its clients and engines (issue 13, items 8 and 10):
// error bodies carry `param`, a wrong method on a known route is 405 with Allow, the engine sees
// who the client was (X-Forwarded-For), a client's X-Request-Id is kept only when it is sane,
// /ready tells an empty config from none, base URLs are base URLs, and a non-JSON admin document
// is counted as a rejected config.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request } from 'undici';
import { baseUrlProblem } from '../src/config/schema.js';
import { RouterError } from '../src/errors.js';
import { clientRequestId, MAX_REQUEST_ID_LENGTH } from '../src/handler.js';
import { startRouter, type RunningRouter } from '../src/server.js';
import { upstreamHeaders } from '../src/upstream/headers.js';
import { metricValue } from './support/http.js';

let router: RunningRouter;
let engine: Server;
let engineUrl = '';
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  // a decoder that records the headers of each request and answers one completion
  engine = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          id: 'x',
          object: 'text_completion',
          choices: [{ index: 0, text: 'ok', finish_reason: 'length' }],
        }),
      );
    });
  });
  await new Promise<void>((r) => engine.listen(0, '127.0.0.1', r));
  const addr = engine.address();
  engineUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
});

afterAll(async () => {
  await router?.stop({ graceMs: 100 });
  await new Promise((r) => engine?.close(r));
});

const cluster = (url: string) => ({
  generation: 2,
  clusters: [
    {
      name: 'default/m',
      models: ['m'],
      connector: 'nixl',
      routingThreshold: 1_000_000,
      prefill: { endpoints: [] },
      decode: { endpoints: [{ id: 'd0', url }] },
    },
  ],
});

describe('error bodies', () => {
  it('carry param: null when no field is at fault, and the field when one is', () => {
    expect(new RouterError('NO_DECODER', 'x').toBody().error).toEqual({
      message: 'x',
      type: 'service_unavailable_error',
      param: null,
      code: 'NO_DECODER',
    });
    expect(new RouterError('MODEL_NOT_FOUND', 'x', { param: 'model' }).toBody().error.param).toBe('model');
  });

  it('come with param from the router too', async () => {
    const r = await request(`${router.url}/v1/nope`);
    expect(r.statusCode).toBe(404);
    expect(((await r.body.json()) as { error: Record<string, unknown> }).error).toHaveProperty('param', null);
  });
});

describe('405 with Allow for a wrong method on a known route', () => {
  it.each([
    ['GET', '/v1/completions', 'POST'],
    ['PUT', '/v1/chat/completions', 'POST'],
    ['DELETE', '/v1/models', 'GET, HEAD'],
    ['POST', '/health', 'GET, HEAD'],
    ['POST', '/metrics', 'GET, HEAD'],
  ] as const)('%s %s -> 405, Allow: %s', async (method, path, allow) => {
    const r = await request(`${router.url}${path}`, { method });
    expect(r.statusCode).toBe(405);
    expect(r.headers['allow']).toBe(allow);
    const body = (await r.body.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({
      code: 'METHOD_NOT_ALLOWED',
      type: 'invalid_request_error',
      param: null,
    });
  });

  it('an unknown route is still 404', async () => {
    const r = await request(`${router.url}/v2/completions`, { method: 'POST', body: '{}' });
    expect(r.statusCode).toBe(404);
    await r.body.dump();
  });
});

describe('/ready', () => {
  it('says "no config applied yet" before any config, and that an applied one has no clusters after {"clusters":[]}', async () => {
    const fresh = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
    try {
      const before = await request(`${fresh.url}/ready`);
      expect(before.statusCode).toBe(503);
      expect(((await before.body.json()) as { reason: string }).reason).toBe('no config applied yet');
      expect(fresh.applyConfig({ generation: 3, clusters: [] }).ok).toBe(true);
      const after = await request(`${fresh.url}/ready`);
      expect(after.statusCode).toBe(503);
      expect(((await after.body.json()) as { reason: string }).reason).toBe(
        'the applied config has no clusters',
      );
    } finally {
      await fresh.stop({ graceMs: 100 });
    }
  });
});

describe('headers to the engine', () => {
  it('X-Forwarded-For: the client peer is appended to what the client sent', () => {
    expect(
      upstreamHeaders({}, 'id', { rewrittenBody: false, clientAddress: '10.1.2.3' })['x-forwarded-for'],
    ).toBe('10.1.2.3');
    expect(
      upstreamHeaders({ 'x-forwarded-for': '1.1.1.1' }, 'id', {
        rewrittenBody: false,
        clientAddress: '10.1.2.3',
      })['x-forwarded-for'],
    ).toBe('1.1.1.1, 10.1.2.3');
  });

  it('end to end: the engine sees X-Forwarded-For with the client address and a bounded X-Request-Id', async () => {
    expect(router.applyConfig(cluster(engineUrl)).ok).toBe(true);
    seen.length = 0;
    const long = 'r'.repeat(MAX_REQUEST_ID_LENGTH + 1);
    for (const id of ['client-id-1', long]) {
      const r = await request(`${router.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id, 'x-forwarded-for': '192.0.2.7' },
        body: JSON.stringify({ model: 'm', prompt: 'hi', max_tokens: 1 }),
      });
      expect(r.statusCode).toBe(200);
      await r.body.dump();
    }
    expect(seen.map((h) => h['x-forwarded-for'])).toEqual(['192.0.2.7, 127.0.0.1', '192.0.2.7, 127.0.0.1']);
    expect(seen[0]!['x-request-id']).toBe('client-id-1');
    expect(seen[1]!['x-request-id']).not.toBe(long);
    expect(String(seen[1]!['x-request-id'])).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ['abc-123', 'abc-123'],
    ['x'.repeat(MAX_REQUEST_ID_LENGTH), 'x'.repeat(MAX_REQUEST_ID_LENGTH)],
    ['x'.repeat(MAX_REQUEST_ID_LENGTH + 1), undefined],
    ['has space', undefined],
    ['tab\there', undefined],
    ['', undefined],
  ])('clientRequestId(%j) keeps %j', (id, kept) => {
    expect(clientRequestId(id)).toBe(kept);
  });
});

describe('engine base URLs', () => {
  it.each([
    ['http://10.0.0.5:8000', undefined],
    ['https://engine.example:8443/', undefined],
    ['http://10.0.0.5:8000/v1', /without a path.*http:\/\/10\.0\.0\.5:8000/],
    ['http://10.0.0.5:8000/?x=1', /query/],
    ['http://10.0.0.5:8000#frag', /fragment/],
    ['http://user:pw@10.0.0.5:8000', /credentials/],
    ['ftp://10.0.0.5', /http/],
    ['10.0.0.5:8000', /absolute URL|http/],
  ])('%s', (url, problem) => {
    const p = baseUrlProblem(url);
    if (problem === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(problem);
  });

  it('a config with a /v1 base URL is refused with the fix in the message', () => {
    const r = router.applyConfig(cluster(`${engineUrl}/v1`));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.join('\n')).toMatch(/decode\.endpoints\[0\]\.url: .*without a path/);
  });
});

describe('admin documents that are not JSON', () => {
  it('are refused and counted in router_config_apply_errors_total', async () => {
    const admin = await startRouter({ kvNotifyPort: 0, logLevel: 'silent', adminPort: 0, adminToken: 't' });
    try {
      const before = metricValue(
        await (await request(`${admin.url}/metrics`)).body.text(),
        'router_config_apply_errors_total',
        { source: 'admin' },
      );
      const r = await request(`${admin.adminUrl}/admin/config`, {
        method: 'PUT',
        headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
        body: '{not json',
      });
      expect(r.statusCode).toBe(400);
      await r.body.dump();
      const after = metricValue(
        await (await request(`${admin.url}/metrics`)).body.text(),
        'router_config_apply_errors_total',
        { source: 'admin' },
      );
      expect(after - before).toBe(1);
    } finally {
      await admin.stop({ graceMs: 100 });
    }
  });
});
