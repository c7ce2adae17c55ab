// One generation request, start to finish: parse -> pick cluster -> classify -> serve on the
// chosen path (direct | NIXL | LMCache) -> account. Everything the request uses comes from the
// config snapshot taken on arrival, so a config swap never changes a request mid-way.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { estimatePromptTokens, type GenerationKind } from './classify/estimate-tokens.js';
import { pickCluster } from './classify/pick-cluster.js';
import { decideRoute } from './classify/threshold.js';
import type { ConfigStore } from './config/store.js';
import { RouterError, asRouterError } from './errors.js';
import type { Logger } from './logger.js';
import { isJsonObject, type JsonObject } from './protocol/json.js';
import { ClientGoneError, ClientWriter } from './relay.js';
import type { RequestContext, ServeDeps, ServedPath } from './serve/context.js';
import { serveDirect } from './serve/direct.js';
import { serveLmcache } from './serve/lmcache.js';
import { serveNixl } from './serve/nixl.js';
import { UpstreamError, headerValue } from './upstream/call.js';

export interface HandlerDeps extends ServeDeps {
  store: ConfigStore;
  logger: Logger;
  /** Client requests being served (graceful shutdown waits for them). */
  active: { count: number };
}

export function parseGenerationBody(raw: unknown): { raw: Buffer; body: JsonObject } {
  if (!Buffer.isBuffer(raw) || raw.length === 0) {
    throw new RouterError('MALFORMED_JSON', 'request body is empty; expected a JSON object');
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RouterError('MALFORMED_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!isJsonObject(body)) throw new RouterError('BODY_NOT_OBJECT', 'request body must be a JSON object');
  return { raw, body };
}

/** Serves one generation request whose body was already read (`rawBody`, as the client sent it). */
export type GenerationHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  rawBody: unknown,
) => Promise<void>;

export function generationHandler(deps: HandlerDeps, kind: GenerationKind): GenerationHandler {
  const clientPath = kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
  // winston formats a record before its level filter drops it: skip building debug records at
  // info. Asked once: the level is fixed at start, and asking allocates on every call.
  const debug = deps.logger.isDebugEnabled();
  return async (req, res, rawBody) => {
    const startedAt = performance.now();
    const requestId = clientRequestId(headerValue(req.headers['x-request-id'])) ?? randomUUID();
    const snapshot = deps.store.current();
    const controller = new AbortController();
    const log = deps.logger.child({ requestId });
    let firstByteAt: number | undefined;
    const out = new ClientWriter(res, () => (firstByteAt ??= performance.now()));
    res.setHeader('x-request-id', requestId);
    // Client gone before the response finished: abort every upstream leg still open.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new ClientGoneError());
    });
    deps.active.count++;
    let clusterName = '';
    let path: ServedPath | 'none' = 'none';
    // a failure after the head went out (SSE error event, cut body) is still a failure: its status
    // is what router_requests_total records, not the 200 the client saw first
    let failedStatus: number | undefined;
    let ctx: RequestContext | undefined;
    try {
      const { raw, body } = parseGenerationBody(rawBody);
      const cluster = pickCluster(snapshot, body['model']);
      clusterName = cluster.name;
      const estimate = estimatePromptTokens(body, kind);
      const decision = decideRoute(estimate, cluster.routingThreshold);
      deps.metrics.estimatedTokens.observe({ cluster: cluster.name }, estimate);
      deps.metrics.decisions.inc({ cluster: cluster.name, decision });
      if (debug)
        log.debug('request classified', {
          cluster: cluster.name,
          model: body['model'],
          estimatedTokens: estimate,
          routingThreshold: cluster.routingThreshold,
          decision,
        });
      ctx = {
        deps,
        requestId,
        log,
        signal: controller.signal,
        kind,
        path: clientPath,
        rawBody: raw,
        body,
        clientHeaders: req.headers,
        clientAddress: req.socket.remoteAddress,
        stream: body['stream'] === true,
        cluster,
        out,
        servedPath: decision,
      };
      if (decision === 'direct') await serveDirect(ctx);
      else if (cluster.connector === 'nixl') await serveNixl(ctx);
      else await serveLmcache(ctx);
    } catch (err) {
      if (controller.signal.aborted || err instanceof ClientGoneError) {
        deps.metrics.clientAborts.inc({ cluster: clusterName });
        log.info('client disconnected; upstream legs aborted', { cluster: clusterName });
        if (!res.destroyed) res.destroy();
      } else if (err instanceof UpstreamError && err.kind === 'status_4xx' && err.response) {
        log.info('upstream rejected the request; passing its answer through', {
          endpoint: err.endpoint.id,
          status: err.response.status,
        });
        out.sendRaw(err.response.status, err.response.contentType, err.response.body);
      } else {
        const routerErr = err instanceof UpstreamError ? err.toRouterError() : asRouterError(err);
        const level = routerErr.status >= 500 ? 'warn' : 'info';
        log.log(level, 'request failed', {
          cluster: clusterName,
          code: routerErr.code,
          status: routerErr.status,
          error: routerErr.message,
          afterFirstByte: out.started,
        });
        if (routerErr.code === 'INTERNAL') log.error('internal error', { stack: (err as Error)?.stack });
        if (out.started) failedStatus = routerErr.status;
        out.fail(routerErr);
      }
    } finally {
      deps.active.count--;
      if (ctx) path = ctx.servedPath;
      const status = controller.signal.aborted ? '499' : String(failedStatus ?? res.statusCode);
      deps.metrics.requests.inc({ cluster: clusterName, path, status });
      deps.metrics.requestDuration.observe(
        { cluster: clusterName, path },
        (performance.now() - startedAt) / 1000,
      );
      if (firstByteAt !== undefined) {
        deps.metrics.timeToFirstToken.observe(
          { cluster: clusterName, path },
          (firstByteAt - startedAt) / 1000,
        );
      }
      if (debug)
        log.debug('request finished', {
          cluster: clusterName,
          path,
          status: Number(status),
          durationMs: Math.round(performance.now() - startedAt),
        });
    }
  };
}

/** Longest client X-Request-Id the router keeps (it goes into every log line and leg). */
export const MAX_REQUEST_ID_LENGTH = 128;

/** The client's id when it is short printable ASCII; otherwise the router makes its own. */
export function clientRequestId(id: string | undefined): string | undefined {
  if (!id || id.length > MAX_REQUEST_ID_LENGTH || !/^[\x21-\x7e]+$/.test(id)) return undefined;
  return id;
}
