// The OpenAI-facing listener: generation routes plus /v1/models, /health, /ready and /metrics.
// The Express app serves them all; the listener in front of it hands the two generation routes,
// by exact path, straight to their handler with a lean body reader: Express's routing and
// body-parser cost about 10 KB of garbage per request, a fifth of the router's, and garbage is GC
// pauses in the latency tail (docs/benchmarks.md).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { RouterError, asRouterError, sendError } from './errors.js';
import { createExpressServer } from './express-server.js';
import { generationHandler, type GenerationHandler, type HandlerDeps } from './handler.js';
import { readRequestBody } from './request-body.js';

export interface AppOptions {
  /** Largest accepted request body; larger ones get 413. */
  maxBodyBytes: number;
}

/** The HTTP server of the OpenAI port (not yet listening). */
export function createOpenAiServer(deps: HandlerDeps, opts: AppOptions): Server {
  const completions = generationHandler(deps, 'completions');
  const chat = generationHandler(deps, 'chat');
  const app = createApp(deps, opts, { completions, chat });
  const serve = (handler: GenerationHandler, req: IncomingMessage, res: ServerResponse): void => {
    readRequestBody(req, opts.maxBodyBytes)
      .then(
        (body) => handler(req, res, body),
        (err: unknown) => {
          const routerErr = asRouterError(err);
          deps.metrics.requests.inc({ cluster: '', path: 'none', status: String(routerErr.status) });
          if (!res.headersSent) sendError(res, routerErr);
        },
      )
      .catch((err: unknown) => {
        // The handler answers every failure itself; reaching here is a router bug.
        deps.logger.error('unhandled error', { error: String(err) });
        if (!res.headersSent) sendError(res, asRouterError(err));
        else res.destroy();
      });
  };
  return createExpressServer(app, (req, res) => {
    if (req.method === 'POST') {
      if (req.url === '/v1/completions') return serve(completions, req, res);
      if (req.url === '/v1/chat/completions') return serve(chat, req, res);
    }
    // Everything else, including the generation routes spelled with a query or a trailing slash.
    void app(req, res);
  });
}

function createApp(
  deps: HandlerDeps,
  opts: AppOptions,
  handlers: Record<'completions' | 'chat', GenerationHandler>,
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/ready', (_req, res) => {
    const snap = deps.store.current();
    const routable = snap.config.clusters.filter((c) => c.decode.endpoints.length > 0).map((c) => c.name);
    const body = { generation: snap.generation, hash: snap.hash, routableClusters: routable };
    if (routable.length > 0) res.json({ status: 'ready', ...body });
    else {
      const reason =
        snap.config.clusters.length > 0
          ? 'no cluster has a decode endpoint'
          : snap.source !== 'initial'
            ? 'the applied config has no clusters'
            : 'no config applied yet';
      res.status(503).json({ status: 'not ready', reason, ...body });
    }
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', deps.metrics.registry.contentType);
    res.end(await deps.metrics.registry.metrics());
  });

  app.get('/v1/models', (_req, res) => {
    const snap = deps.store.current();
    const created = Math.floor(snap.appliedAt.getTime() / 1000);
    const data = snap.config.clusters.flatMap((c) =>
      c.models.map((id) => ({
        id,
        object: 'model',
        created,
        owned_by: 'disagg-router',
        root: id,
        cluster: c.name,
      })),
    );
    res.json({ object: 'list', data });
  });

  // Raw bytes: the direct path forwards the body exactly as the client sent it.
  const rawBody = express.raw({ type: () => true, limit: opts.maxBodyBytes });
  app.post('/v1/completions', rawBody, (req, res) => handlers.completions(req, res, req.body));
  app.post('/v1/chat/completions', rawBody, (req, res) => handlers.chat(req, res, req.body));

  // A known route asked with another method: 405 and the methods it takes (RFC 9110 15.5.6).
  for (const [route, allow] of KNOWN_ROUTES) {
    app.all(route, (req: Request, res: Response) => {
      const err = new RouterError(
        'METHOD_NOT_ALLOWED',
        `${req.method} is not allowed on ${route}; use ${allow}`,
      );
      sendError(res, err, { allow });
    });
  }

  app.use((req: Request, res: Response) => {
    const err = new RouterError('ROUTE_NOT_FOUND', `no route for ${req.method} ${req.path}`);
    sendError(res, err);
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const routerErr = bodyParserError(err, opts.maxBodyBytes);
    if (routerErr.code === 'INTERNAL') deps.logger.error('unhandled error', { error: String(err) });
    deps.metrics.requests.inc({ cluster: '', path: 'none', status: String(routerErr.status) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, routerErr);
  });
  return app;
}

/** The routes above with the methods each serves (Express answers HEAD for GET routes). */
const KNOWN_ROUTES: ReadonlyArray<readonly [string, string]> = [
  ['/v1/completions', 'POST'],
  ['/v1/chat/completions', 'POST'],
  ['/v1/models', 'GET, HEAD'],
  ['/health', 'GET, HEAD'],
  ['/ready', 'GET, HEAD'],
  ['/metrics', 'GET, HEAD'],
];

function bodyParserError(err: unknown, limit: number): RouterError {
  const type = (err as { type?: unknown })?.type;
  if (type === 'entity.too.large') {
    return new RouterError('BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new RouterError('UNSUPPORTED_MEDIA_TYPE', (err as Error).message);
  }
  if (type === 'request.aborted' || type === 'request.size.invalid' || type === 'stream.encoding.set') {
    return new RouterError('MALFORMED_JSON', (err as Error).message);
  }
  return err instanceof RouterError
    ? err
    : new RouterError('INTERNAL', 'internal router error', { cause: err });
}
