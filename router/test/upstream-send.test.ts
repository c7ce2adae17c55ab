// send(): undici's request() behaviour on dispatch(): status, headers and body; undici's timeout
// codes; abort by signal before and after the headers; a destroyed body stops the upstream request.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { send, type SendOptions } from '../src/upstream/send.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;
const routes = new Map<string, Route>();
/** Paths whose request the server saw end early (the client went away). */
const cut = new Set<string>();
let server: Server;
let pool: Pool;

beforeAll(async () => {
  server = createServer((req, res) => {
    res.on('close', () => {
      if (!res.writableFinished) cut.add(req.url ?? '');
    });
    req.resume();
    req.on('end', () => routes.get(req.url ?? '')?.(req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

afterAll(async () => {
  await pool.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function opts(path: string, signal = new AbortController().signal): SendOptions {
  return {
    path,
    headers: { 'content-type': 'application/json' },
    body: '{}',
    signal,
    headersTimeout: 5000,
    bodyTimeout: 5000,
  };
}

async function readAll(body: AsyncIterable<unknown>): Promise<string> {
  let text = '';
  for await (const chunk of body) text += String(chunk);
  return text;
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('send', () => {
  it('resolves with the status, the parsed headers and the whole body', async () => {
    routes.set('/ok', (req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain', 'x-got': req.headers['content-type'] ?? '' });
      res.write('hello ');
      res.end('world');
    });
    const r = await send(pool, opts('/ok'));
    expect(r.statusCode).toBe(201);
    expect(r.headers['x-got']).toBe('application/json');
    expect(await readAll(r.body)).toBe('hello world');
  });

  it('rejects with undici UND_ERR_HEADERS_TIMEOUT when no headers arrive in time', async () => {
    routes.set('/slow', () => undefined);
    await expect(send(pool, { ...opts('/slow'), headersTimeout: 100 })).rejects.toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });
  });

  it('rejects with the abort reason when the signal fires before the headers', async () => {
    routes.set('/never', () => undefined);
    const ac = new AbortController();
    const p = send(pool, opts('/never', ac.signal));
    setTimeout(() => ac.abort(new Error('client left')), 50);
    await expect(p).rejects.toThrow('client left');
    await until(() => cut.has('/never'));
    expect(cut.has('/never')).toBe(true);
  });

  it('errors the body and cuts the upstream request when the signal fires mid-body', async () => {
    routes.set('/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
    });
    const ac = new AbortController();
    const r = await send(pool, opts('/stream', ac.signal));
    const reading = readAll(r.body);
    ac.abort(new Error('client left'));
    await expect(reading).rejects.toThrow('client left');
    await until(() => cut.has('/stream'));
    expect(cut.has('/stream')).toBe(true);
  });

  it('cuts the upstream request when the consumer destroys the body', async () => {
    routes.set('/big', (_req, res) => {
      res.writeHead(200);
      res.write('x'.repeat(1024));
    });
    const r = await send(pool, opts('/big'));
    let closed = false;
    r.body.once('close', () => (closed = true));
    r.body.destroy();
    await until(() => cut.has('/big') && closed);
    expect([cut.has('/big'), closed]).toEqual([true, true]);
  });
});
