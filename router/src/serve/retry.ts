// Retries a leg on another endpoint of the same pool - only for failures where the engine never
// started the work (connect errors, 503), and only before anything reached the client.
import type { Endpoint } from '../config/index.js';
import { UpstreamError, type LegRole } from '../upstream/call.js';
import { pickDecoder, pickPrefiller, type RequestContext } from './context.js';

/** One first try plus one retry elsewhere: enough to step around a dead pod without a retry storm. */
export const MAX_ATTEMPTS_PER_LEG = 2;

export async function withRetry<E extends Endpoint, T>(
  ctx: RequestContext,
  role: LegRole,
  first: E,
  attempt: (endpoint: E) => Promise<T>,
): Promise<{ result: T; endpoint: E }> {
  const tried = new Set<string>();
  let endpoint = first;
  for (let n = 1; ; n++) {
    tried.add(endpoint.url);
    try {
      return { result: await attempt(endpoint), endpoint };
    } catch (err) {
      if (!(err instanceof UpstreamError) || !err.retryable || n >= MAX_ATTEMPTS_PER_LEG || ctx.out.started) {
        throw err;
      }
      const next = (role === 'decode' ? pickDecoder(ctx, tried) : pickPrefiller(ctx, tried)) as E | undefined;
      if (!next) throw err;
      ctx.deps.metrics.retries.inc({ cluster: ctx.cluster.name, role });
      ctx.log.warn('retrying leg on another endpoint', {
        role,
        failed: endpoint.id,
        next: next.id,
        error: err.message,
      });
      endpoint = next;
    }
  }
}
