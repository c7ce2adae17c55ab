// Header hygiene between client and engines: what crosses the router and what never does.
import { describe, expect, it } from '@jest/globals';
import { downstreamHeaders, upstreamHeaders } from '../src/upstream/headers.js';

describe('upstreamHeaders', () => {
  const client = {
    host: 'router.example',
    connection: 'keep-alive, x-trace-hop',
    'keep-alive': 'timeout=5',
    'x-trace-hop': 'only-for-this-hop',
    'transfer-encoding': 'chunked',
    te: 'trailers',
    upgrade: 'h2c',
    'proxy-authorization': 'Basic abc',
    'content-length': '42',
    'content-type': 'text/plain',
    'content-encoding': 'gzip',
    'accept-encoding': 'gzip',
    'x-request-id': 'client-id',
    authorization: 'Bearer user-token',
    'x-tenant': 'a',
    cookie: ['a=1', 'b=2'] as unknown as string,
  };

  it('drops hop-by-hop headers, the ones Connection lists, and those the router sets itself', () => {
    const h = upstreamHeaders(client, 'rid-1', { rewrittenBody: false });
    expect(h).toEqual({
      'accept-encoding': 'gzip',
      authorization: 'Bearer user-token',
      'x-tenant': 'a',
      cookie: 'a=1, b=2',
      'content-type': 'application/json',
      'x-request-id': 'rid-1',
    });
  });

  it('drops accept-encoding too when the router rewrote the body (it must read the reply)', () => {
    const h = upstreamHeaders(client, 'rid-2', { rewrittenBody: true });
    expect(h['accept-encoding']).toBeUndefined();
    expect(h['authorization']).toBe('Bearer user-token');
  });

  it('keeps every end-to-end header when Connection names none', () => {
    for (const connection of [undefined, 'keep-alive', 'close', 'Keep-Alive']) {
      const h = upstreamHeaders({ connection, 'x-a': '1', 'x-b': '2' }, 'r', { rewrittenBody: false });
      expect(h).toMatchObject({ 'x-a': '1', 'x-b': '2' });
      expect(h['connection']).toBeUndefined();
    }
  });
});

describe('downstreamHeaders', () => {
  const engine = {
    'content-type': 'application/json',
    'content-length': '120',
    connection: 'keep-alive',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    date: 'Wed, 25 Nov 2026 12:00:00 GMT',
    'x-request-id': 'engine-id',
    server: 'uvicorn',
    'x-engine': 'd0',
    undef: undefined,
  };

  it('passes end-to-end headers and drops hop-by-hop ones, date and the engine request id', () => {
    expect(downstreamHeaders(engine, { keepContentLength: true })).toEqual({
      'content-type': 'application/json',
      'content-length': '120',
      server: 'uvicorn',
      'x-engine': 'd0',
    });
  });

  it('drops content-length for a stream the router re-frames', () => {
    expect(downstreamHeaders(engine, { keepContentLength: false })['content-length']).toBeUndefined();
  });
});
