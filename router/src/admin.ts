// The admin API the operator pushes configs through. Never on the network: a Unix socket by
// default (file permissions guard it), or loopback TCP with a bearer token read from a file.
import { timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ConfigStore } from './config/store.js';
import { RouterError, sendError } from './errors.js';
import type { Logger } from './logger.js';
import type { RouterMetrics } from './metrics.js';

export interface AdminOptions {
  /** Required bearer token (loopback TCP listener); undefined on the Unix socket. */
  token?: string;
  maxBodyBytes: number;
}

export function createAdminApp(
  store: ConfigStore,
  logger: Logger,
  metrics: RouterMetrics,
  opts: AdminOptions,
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (opts.token !== undefined) app.use(bearerAuth(opts.token));

  app.get('/admin/config', (_req, res) => {
    const snap = store.current();
    res.json({
      generation: snap.generation,
      hash: snap.hash,
      appliedAt: snap.appliedAt.toISOString(),
      source: snap.source,
      config: snap.config,
    });
  });

  app.put('/admin/config', express.json({ limit: opts.maxBodyBytes, type: () => true }), (req, res) => {
    const result = store.apply(req.body, 'admin');
    if (!result.ok) {
      metrics.configApplyErrors.inc({ source: 'admin' });
      logger.warn('admin config rejected; keeping the current config', { errors: result.errors });
      const err = new RouterError('INVALID_CONFIG', 'config document rejected', { details: result.errors });
      sendError(res, err);
      return;
    }
    res.json({ generation: result.config.generation, hash: result.hash });
  });

  app.use((req: Request, res: Response) => {
    const err = new RouterError('ROUTE_NOT_FOUND', `no admin route for ${req.method} ${req.path}`);
    sendError(res, err);
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const type = (err as { type?: unknown })?.type;
    const routerErr =
      type === 'entity.parse.failed'
        ? new RouterError('INVALID_CONFIG', `config body is not JSON: ${(err as Error).message}`, {
            details: ['(document): not valid JSON'],
          })
        : type === 'entity.too.large'
          ? new RouterError('BODY_TOO_LARGE', `config body exceeds ${opts.maxBodyBytes} bytes`)
          : new RouterError('INTERNAL', 'internal admin error', { cause: err });
    if (routerErr.code === 'INTERNAL') logger.error('admin error', { error: String(err) });
    // a document that never reached validation was still a rejected config
    if (routerErr.code !== 'INTERNAL') {
      metrics.configApplyErrors.inc({ source: 'admin' });
      logger.warn('admin config rejected; keeping the current config', { error: routerErr.message });
    }
    sendError(res, routerErr);
  });
  return app;
}

function bearerAuth(token: string) {
  const expected = Buffer.from(`Bearer ${token}`);
  return (req: Request, res: Response, next: NextFunction): void => {
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
    const err = new RouterError(
      'ADMIN_UNAUTHORIZED',
      'admin API needs `Authorization: Bearer <token from --admin-token-file>`',
    );
    sendError(res, err, { 'www-authenticate': 'Bearer' });
  };
}
