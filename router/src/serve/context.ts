// What every step of serving one request needs: the request as parsed, the cluster it resolved
// to (from the config snapshot taken when it arrived), the client writer and shared services.
import type { IncomingHttpHeaders } from 'node:http';
import type { Balancer } from '../balance/balancer.js';
import type { GenerationKind } from '../classify/estimate-tokens.js';
import type { ClusterConfig, DecodeEndpoint, Endpoint } from '../config/index.js';
import type { KvNotifyHub } from '../kv-notify.js';
import type { Logger } from '../logger.js';
import type { JsonObject } from '../protocol/json.js';
import type { ClientWriter } from '../relay.js';
import { openLeg, type LegDeps, type LegRole, type OpenLeg } from '../upstream/call.js';

export interface ServeDeps extends LegDeps {
  balancer: Balancer;
  kvHub: KvNotifyHub;
  replicaId: string;
  /** Prefill endpoints whose loopback remote_host rewrite was already logged (logged once each). */
  hostRewritesLogged: Set<string>;
}

export type ServedPath = 'dpd' | 'direct' | 'fallback';

export interface RequestContext {
  deps: ServeDeps;
  requestId: string;
  log: Logger;
  signal: AbortSignal;
  kind: GenerationKind;
  /** The client's path, `/v1/completions` or `/v1/chat/completions`. */
  path: string;
  rawBody: Buffer;
  body: JsonObject;
  clientHeaders: IncomingHttpHeaders;
  /** The peer address the router saw (appended to X-Forwarded-For on every leg). */
  clientAddress: string | undefined;
  stream: boolean;
  cluster: ClusterConfig;
  out: ClientWriter;
  /** Set by the serving step that finally answered. */
  servedPath: ServedPath;
}

function pickIn<E extends Endpoint>(
  ctx: RequestContext,
  role: 'prefill' | 'decode',
  endpoints: readonly E[],
  exclude?: ReadonlySet<string>,
): E | undefined {
  return ctx.deps.balancer.pick({
    poolKey: `${ctx.cluster.name}:${role}`,
    endpoints,
    strategy: ctx.cluster.loadBalancing,
    ...(exclude ? { exclude } : {}),
  });
}

export function pickDecoder(ctx: RequestContext, exclude?: ReadonlySet<string>): DecodeEndpoint | undefined {
  return pickIn(ctx, 'decode', ctx.cluster.decode.endpoints, exclude);
}

export function pickPrefiller(ctx: RequestContext, exclude?: ReadonlySet<string>): Endpoint | undefined {
  return pickIn(ctx, 'prefill', ctx.cluster.prefill.endpoints, exclude);
}

/** Opens a `role` leg with the cluster's timeouts for that role, aborted with the client request. */
export function openLegFor(
  ctx: RequestContext,
  role: LegRole,
  endpoint: Endpoint,
  path: string,
  body: string | Buffer,
  headers: Record<string, string>,
): Promise<OpenLeg> {
  const { policies } = ctx.cluster;
  const timeouts = role === 'decode' ? policies.decodeTimeouts : policies.prefillTimeouts;
  return openLeg(ctx.deps, { role, endpoint, timeouts, path, body, headers, signal: ctx.signal });
}
