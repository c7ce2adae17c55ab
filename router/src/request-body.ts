// Reads a client's request body for the generation routes: the bytes as sent (the direct path
// forwards them unchanged), inflated when the client compressed them, never more than the limit.
// Same answers as express.raw gave these routes, without Express's per-request machinery.
import type { IncomingMessage } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Readable } from 'node:stream';
import { RouterError } from './errors.js';

function tooLarge(limit: number): RouterError {
  return new RouterError('BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
}

function decoded(req: IncomingMessage): Readable {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  switch (encoding) {
    case 'identity':
      return req;
    case 'gzip':
    case 'x-gzip':
      return req.pipe(createGunzip());
    case 'deflate':
      return req.pipe(createInflate());
    case 'br':
      return req.pipe(createBrotliDecompress());
    default:
      throw new RouterError('UNSUPPORTED_MEDIA_TYPE', `unsupported content encoding "${encoding}"`);
  }
}

/**
 * The whole body as one Buffer. Rejects with BODY_TOO_LARGE (413) as soon as it (or its declared
 * length, or its inflated size) passes `limit`, UNSUPPORTED_MEDIA_TYPE (415) for an unknown
 * content-encoding, and MALFORMED_JSON (400) when the client stops mid-body or the bytes do not
 * inflate.
 */
export function readRequestBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  const identity = req.headers['content-encoding'] === undefined;
  if (identity && declared !== undefined && Number(declared) > limit) {
    req.resume(); // let the connection finish the upload it started
    return Promise.reject(tooLarge(limit));
  }
  let source: Readable;
  try {
    source = decoded(req);
  } catch (err) {
    req.resume();
    return Promise.reject(err as Error);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | undefined, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      source.off('data', onData);
      if (err) {
        if (source !== req) source.destroy();
        req.resume();
        reject(err);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) settle(tooLarge(limit));
      else chunks.push(chunk);
    };
    source.on('data', onData);
    source.once('end', () =>
      settle(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)),
    );
    source.once('error', (err: Error) =>
      settle(new RouterError('MALFORMED_JSON', `request body could not be read: ${err.message}`)),
    );
    req.once('aborted', () => settle(new RouterError('MALFORMED_JSON', 'request aborted mid-body')));
    if (source !== req) {
      req.once('error', (err: Error) =>
        settle(new RouterError('MALFORMED_JSON', `request body could not be read: ${err.message}`)),
      );
    }
  });
}
