// createExpressServer: requests and responses are created with the app's prototypes, so Express's
// per-request Object.setPrototypeOf changes nothing (the objects then die young; see the module).
import { afterEach, describe, expect, it } from '@jest/globals';
import { IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createExpressServer } from '../src/express-server.js';

let server: Server | undefined;

afterEach(async () => {
  const s = server;
  server = undefined;
  if (s) await new Promise((r) => s.close(r));
});

async function listen(s: Server): Promise<string> {
  server = s;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe('createExpressServer', () => {
  it('creates req and res with the app prototypes before Express sees them', async () => {
    const app = express();
    app.post('/echo', express.json(), (req, res) => {
      res.json({ got: req.body as unknown, header: req.get('x-test') ?? null });
    });
    const seen: Array<{ req: boolean; res: boolean; node: boolean }> = [];
    const url = await listen(
      createExpressServer(app, (req, res) => {
        seen.push({
          req: Object.getPrototypeOf(req) === app.request,
          res: Object.getPrototypeOf(res) === app.response,
          node: req instanceof IncomingMessage && res instanceof ServerResponse,
        });
        void app(req, res);
      }),
    );
    const res = await fetch(`${url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test': 'yes' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ got: { a: 1 }, header: 'yes' });
    expect(seen).toEqual([{ req: true, res: true, node: true }]);
  });

  it('serves the app itself when no listener is given, including its 404', async () => {
    const app = express();
    app.get('/hi', (_req, res) => {
      res.status(201).send('hi');
    });
    const url = await listen(createExpressServer(app));
    const ok = await fetch(`${url}/hi`);
    expect([ok.status, await ok.text()]).toEqual([201, 'hi']);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });
});
