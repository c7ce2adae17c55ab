// What happens when the prefill leg cannot be used: the cluster's prefillFailurePolicy decides
// between serving the request direct on a decoder (`fallback`, counted) and failing (`fail`).
import type { DecodeEndpoint } from '../config/index.js';
import { RouterError } from '../errors.js';
import { ClientGoneError } from '../relay.js';
import { UpstreamError } from '../upstream/call.js';
import type { RequestContext } from './context.js';
import { serveDirect } from './direct.js';

export type FallbackReason = 'prefill_failed' | 'no_prefiller' | 'lmcache_unsupported';

export async function fallBackToDirect(
  ctx: RequestContext,
  reason: FallbackReason,
  decoder: DecodeEndpoint | undefined,
  detail: string,
): Promise<void> {
  ctx.deps.metrics.fallbacks.inc({ cluster: ctx.cluster.name, reason });
  ctx.log.warn('serving request direct on a decoder instead of disaggregated', { reason, detail });
  ctx.servedPath = 'fallback';
  await serveDirect(ctx, decoder);
}

/** Rethrows what must reach the client as is (4xx, client gone) or under policy `fail`; else falls back. */
export async function onPrefillFailure(
  ctx: RequestContext,
  err: unknown,
  decoder: DecodeEndpoint,
): Promise<void> {
  if (err instanceof ClientGoneError || ctx.signal.aborted) throw err;
  // A 4xx is about the request itself; a decoder would reject it too.
  if (err instanceof UpstreamError && (err.kind === 'status_4xx' || err.kind === 'aborted')) throw err;
  const routerErr = err instanceof UpstreamError ? err.toRouterError() : err;
  if (ctx.cluster.policies.prefillFailurePolicy === 'fail' || ctx.out.started) throw routerErr;
  const detail = routerErr instanceof Error ? routerErr.message : String(routerErr);
  await fallBackToDirect(ctx, 'prefill_failed', decoder, detail);
}

export async function onNoPrefiller(ctx: RequestContext, decoder: DecodeEndpoint): Promise<void> {
  const message = `no routable endpoint in the prefill pool of cluster ${ctx.cluster.name}: the pool is empty`;
  if (ctx.cluster.policies.prefillFailurePolicy === 'fail') throw new RouterError('NO_PREFILLER', message);
  await fallBackToDirect(ctx, 'no_prefiller', decoder, message);
}
