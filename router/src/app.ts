// The OpenAI-facing listener: generation routes plus /v1/models, /health, /ready and /metrics.
import express, { type NextFunction, type Request, type Response } from 'express';
import { RouterError } from './errors.js';
import { generationHandler, type HandlerDeps } from './handler.js';

export interface AppOptions {
  /** Largest accepted request body; larger ones get 413. */
  maxBodyBytes: number;
}

export function createApp(deps: HandlerDeps, opts: AppOptions): express.Express {
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
        snap.config.clusters.length === 0 ? 'no config applied yet' : 'no cluster has a decode endpoint';
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
  app.post('/v1/completions', rawBody, generationHandler(deps, 'completions'));
  app.post('/v1/chat/completions', rawBody, generationHandler(deps, 'chat'));

  app.use((req: Request, res: Response) => {
    const err = new RouterError('ROUTE_NOT_FOUND', `no route for ${req.method} ${req.path}`);
    res.status(err.status).json(err.toBody());
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const routerErr = bodyParserError(err, opts.maxBodyBytes);
    if (routerErr.code === 'INTERNAL') deps.logger.error('unhandled error', { error: String(err) });
    deps.metrics.requests.inc({ cluster: '', path: 'none', status: String(routerErr.status) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(routerErr.status).json(routerErr.toBody());
  });
  return app;
}

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
