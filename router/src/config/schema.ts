// The router's configuration contract: one document, owned here, imported by the operator.
// Defaults live beside the field they configure, with the unit in the name.
import { z } from 'zod';

const port = z.number().int().min(1, 'ports are 1-65535').max(65535, 'ports are 1-65535');
/** Why a base URL is not one (the router appends /v1/...), or undefined when it is. */
export function baseUrlProblem(u: string): string | undefined {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return 'must be an absolute URL such as http://10.0.0.5:8000';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.username || url.password) return 'must not carry credentials (user:password@)';
  if (url.search || u.includes('?')) return 'must not have a query (?...)';
  if (url.hash || u.includes('#')) return 'must not have a fragment (#...)';
  if (url.pathname !== '/') {
    return `must be the engine's base URL without a path (the router adds /v1/...): use ${url.origin}`;
  }
  return undefined;
}

const httpUrl = z.string().superRefine((u, ctx) => {
  const problem = baseUrlProblem(u);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const legTimeoutsSchema = z
  .object({
    /** Time to establish the TCP connection to the engine. */
    connectMs: z.number().int().positive().default(5_000),
    /** Time from sending the request to the first response byte (headers). */
    firstByteMs: z.number().int().positive().default(300_000),
    /** Longest pause between two body chunks once the response has started. */
    idleMs: z.number().int().positive().default(60_000),
  })
  .strict();

export const policiesSchema = z
  .object({
    /** `fallback`: a failed prefill leg sends the request straight to a decoder; `fail`: return the error. */
    prefillFailurePolicy: z.enum(['fallback', 'fail']).default('fallback'),
    prefillTimeouts: legTimeoutsSchema.default(legTimeoutsSchema.parse({})),
    decodeTimeouts: legTimeoutsSchema.default(legTimeoutsSchema.parse({})),
    /** LMCache only: how long to wait for the prefiller's KV-ready notification(s). */
    kvReadyTimeoutMs: z.number().int().positive().default(30_000),
  })
  .strict();

export const nixlRegistrySchema = z
  .object({
    /** Host the decoder's NIXL side channel listens on (VLLM_NIXL_SIDE_CHANNEL_HOST). */
    sideChannelHost: z.string().min(1),
    /** VLLM_NIXL_SIDE_CHANNEL_PORT of the decoder. */
    sideChannelPort: port,
  })
  .strict();

export const lmcacheRegistrySchema = z
  .object({
    /** Host the decoder's LMCache receiver is reachable on (pd_peer_host). */
    receiverHost: z.string().min(1),
    /** pd_peer_init_port, one per decoder TP rank. */
    initPorts: z.array(port).min(1, 'needs one init port per TP rank'),
    /** pd_peer_alloc_port, one per decoder TP rank. */
    allocPorts: z.array(port).min(1, 'needs one alloc port per TP rank'),
  })
  .strict()
  .refine((r) => r.initPorts.length === r.allocPorts.length, {
    message: 'initPorts and allocPorts must have one entry per TP rank each (same length)',
  });

export const endpointSchema = z
  .object({
    /** Stable identity of the engine, e.g. `<namespace>/<pod>`. */
    id: z.string().min(1),
    /** Base URL of the engine's OpenAI server, without the `/v1` suffix. */
    url: httpUrl,
  })
  .strict();

export const decodeEndpointSchema = endpointSchema
  .extend({
    nixl: nixlRegistrySchema.optional(),
    lmcache: lmcacheRegistrySchema.optional(),
  })
  .strict();

export const clusterSchema = z
  .object({
    /** Usually `<namespace>/<DisaggCluster name>`. */
    name: z.string().min(1),
    /** Model names requests may carry in `model`; the first is reported by /v1/models. */
    models: z.array(z.string().min(1)).min(1, 'at least one served model name'),
    connector: z.enum(['nixl', 'lmcache']),
    /** Estimated input tokens at or above which a request goes prefill->decode; 0 = always. */
    routingThreshold: z.number().int().min(0, 'routingThreshold is a token count >= 0'),
    loadBalancing: z.enum(['round_robin', 'least_loaded']).default('round_robin'),
    prefill: z.object({ endpoints: z.array(endpointSchema) }).strict(),
    decode: z.object({ endpoints: z.array(decodeEndpointSchema) }).strict(),
    policies: policiesSchema.default(policiesSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    const ids = new Set<string>();
    for (const [pool, eps] of [
      ['prefill', c.prefill.endpoints],
      ['decode', c.decode.endpoints],
    ] as const) {
      eps.forEach((ep, i) => {
        if (ids.has(ep.id)) {
          ctx.addIssue({
            code: 'custom',
            path: [pool, 'endpoints', i, 'id'],
            message: `duplicate endpoint id ${ep.id}`,
          });
        }
        ids.add(ep.id);
      });
    }
    if (c.connector === 'lmcache') {
      c.decode.endpoints.forEach((ep, i) => {
        if (!ep.lmcache) {
          ctx.addIssue({
            code: 'custom',
            path: ['decode', 'endpoints', i, 'lmcache'],
            message: `decoder ${ep.id} needs an lmcache registry entry (receiverHost, initPorts, allocPorts) when connector is lmcache`,
          });
        }
      });
    }
  });

export const routerPeerSchema = z
  .object({
    /** Router replica id; LMCache req_ids start with it. */
    id: z.string().regex(/^[a-zA-Z0-9-]+$/, 'peer ids are letters, digits and dashes'),
    /** Where that replica's KV-ready notification PULL socket listens, e.g. tcp://10.0.0.7:7500. */
    notifyAddress: z.string().regex(/^tcp:\/\/[^:]+:\d+$/, 'must look like tcp://host:port'),
  })
  .strict();

export const routerConfigSchema = z
  .object({
    /** Increases with every change the pusher makes; informational (the hash identifies content). */
    generation: z.number().int().min(0).default(0),
    clusters: z.array(clusterSchema),
    /** Other router replicas (LMCache notifications are forwarded to the replica a req_id names). */
    peers: z.array(routerPeerSchema).default([]),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    const models = new Map<string, string>();
    cfg.clusters.forEach((c, i) => {
      if (names.has(c.name))
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'name'],
          message: `duplicate cluster name ${c.name}`,
        });
      names.add(c.name);
      for (const m of c.models) {
        const owner = models.get(m);
        if (owner !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['clusters', i, 'models'],
            message: `model ${m} is served by both ${owner} and ${c.name}; a model name must pick one cluster`,
          });
        }
        models.set(m, c.name);
      }
    });
  });

/** The document as written by a user or the operator (defaults may be omitted). */
export type RouterConfigInput = z.input<typeof routerConfigSchema>;
/** The validated document, defaults filled in. */
export type RouterConfig = z.output<typeof routerConfigSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
export type Endpoint = z.output<typeof endpointSchema>;
export type DecodeEndpoint = z.output<typeof decodeEndpointSchema>;
export type LegTimeouts = z.output<typeof legTimeoutsSchema>;
export type Policies = z.output<typeof policiesSchema>;
export type LmcacheRegistry = z.output<typeof lmcacheRegistrySchema>;
export type NixlRegistry = z.output<typeof nixlRegistrySchema>;
export type RouterPeer = z.output<typeof routerPeerSchema>;
export type ConnectorType = ClusterConfig['connector'];
export type LoadBalancing = ClusterConfig['loadBalancing'];
