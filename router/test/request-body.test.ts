// The generation routes' body reader against real HTTP requests: bytes as sent, inflated when
// compressed, and the limit enforced on the declared, streamed and inflated size.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { RouterError, sendError } from '../src/errors.js';
import { readRequestBody } from '../src/request-body.js';

const LIMIT = 1024;
let server: Server;
let port: number;

beforeAll(async () => {
  // Echoes the body it read, or the reader's error in OpenAI form.
  server = createServer((req, res) => {
    readRequestBody(req, LIMIT).then(
      (body) => res.end(body),
      (err: unknown) => sendError(res, err as RouterError),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

/** Sends `chunks` (chunked transfer encoding unless a content-length header is given). */
function send(
  chunks: Buffer[],
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

const errorCode = (body: Buffer): unknown => (JSON.parse(body.toString()) as { error: unknown }).error;

describe('readRequestBody', () => {
  it('returns the bytes exactly as sent, in one piece or in many', async () => {
    const body = Buffer.from('{"prompt":"héllo","max_tokens":3}');
    expect((await send([body])).body.equals(body)).toBe(true);
    const parts = [body.subarray(0, 5), body.subarray(5, 9), body.subarray(9)];
    const r = await send(parts);
    expect(r.status).toBe(200);
    expect(r.body.equals(body)).toBe(true);
  });

  it.each([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ])('inflates a %s body', async (encoding, compress) => {
    const body = Buffer.from(JSON.stringify({ prompt: 'x'.repeat(300) }));
    const r = await send([compress(body)], { 'content-encoding': encoding });
    expect(r.status).toBe(200);
    expect(r.body.equals(body)).toBe(true);
  });

  it('refuses an unknown content-encoding with 415', async () => {
    const r = await send([Buffer.from('{}')], { 'content-encoding': 'zstd-9000' });
    expect(r.status).toBe(415);
    expect(JSON.parse(r.body.toString())).toMatchObject({
      error: { code: 'UNSUPPORTED_MEDIA_TYPE', type: 'invalid_request_error' },
    });
  });

  it('refuses with 413 by declared length, by streamed size and by inflated size', async () => {
    const big = Buffer.alloc(LIMIT + 1, 'a');
    const declared = await send([big], { 'content-length': String(big.length) });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body.toString())).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } });
    // Chunked: no length up front, the reader counts.
    const streamed = await send([big.subarray(0, 600), big.subarray(600)]);
    expect(streamed.status).toBe(413);
    // Small on the wire, over the limit once inflated.
    const bomb = gzipSync(Buffer.alloc(50 * LIMIT, 'a'));
    expect(bomb.length).toBeLessThan(LIMIT);
    const inflated = await send([bomb], { 'content-encoding': 'gzip' });
    expect(inflated.status).toBe(413);
    expect(errorCode(inflated.body)).toMatchObject({ code: 'BODY_TOO_LARGE' });
  });

  it('answers 400 for a body that does not inflate', async () => {
    const r = await send([Buffer.from('definitely not gzip')], { 'content-encoding': 'gzip' });
    expect(r.status).toBe(400);
    expect(errorCode(r.body)).toMatchObject({ code: 'MALFORMED_JSON' });
  });

  it('accepts a body of exactly the limit', async () => {
    const r = await send([Buffer.alloc(LIMIT, 'b')]);
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(LIMIT);
  });
});
