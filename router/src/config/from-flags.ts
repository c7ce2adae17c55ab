// The seed's one-cluster flags (--prefill-endpoints, --decode-endpoints, --decoder-registry, ...)
// turned into a config document. Pure: the caller validates the result like any other document.
import type { DecodeEndpoint, RouterConfigInput } from './schema.js';

export interface SeedFlags {
  prefillEndpoints?: string | undefined;
  decodeEndpoints?: string | undefined;
  routingThreshold?: number | undefined;
  loadBalancingStrategy?: string | undefined;
  disaggConnectorType?: string | undefined;
  /** JSON object keyed by decoder id (`decode-0`, ...) or base URL. */
  decoderRegistry?: string | undefined;
  /** Comma-separated served model names. */
  model?: string | undefined;
  prefillFailurePolicy?: string | undefined;
  kvReadyTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
  firstByteTimeoutMs?: number | undefined;
  idleTimeoutMs?: number | undefined;
}

/** Name of the single cluster the seed-style flags describe. */
export const FLAGS_CLUSTER_NAME = 'default';

export function hasSeedFlags(flags: SeedFlags): boolean {
  return Boolean(flags.prefillEndpoints || flags.decodeEndpoints);
}

/** Throws an Error naming the flag when a value cannot be understood. */
export function configFromSeedFlags(flags: SeedFlags): RouterConfigInput {
  const prefill = splitList(flags.prefillEndpoints).map((url, i) => ({ id: `prefill-${i}`, url }));
  const decodeUrls = splitList(flags.decodeEndpoints);
  const registry = parseRegistry(flags.decoderRegistry);
  const used = new Set<string>();
  const decode = decodeUrls.map((url, i) => {
    const id = `decode-${i}`;
    const key = [id, url, trimSlash(url)].find((k) => registry.has(k));
    if (key === undefined) return { id, url };
    used.add(key);
    // Field values are checked by validateRouterConfig like any other document.
    return {
      id,
      url,
      ...(registryEntry(registry.get(key), key) as Pick<DecodeEndpoint, 'lmcache' | 'nixl'>),
    };
  });
  const unknown = [...registry.keys()].filter((k) => !used.has(k));
  if (unknown.length > 0) {
    // The seed silently fell back to a static spec here, pushing KV to the wrong decoder.
    throw new Error(
      `--decoder-registry has entries for unknown decoders: ${unknown.join(', ')} (keys must be decoder ids decode-N or URLs from --decode-endpoints)`,
    );
  }
  const timeouts = {
    ...(flags.connectTimeoutMs !== undefined ? { connectMs: flags.connectTimeoutMs } : {}),
    ...(flags.firstByteTimeoutMs !== undefined ? { firstByteMs: flags.firstByteTimeoutMs } : {}),
    ...(flags.idleTimeoutMs !== undefined ? { idleMs: flags.idleTimeoutMs } : {}),
  };
  const models = splitList(flags.model);
  return {
    generation: 0,
    clusters: [
      {
        name: FLAGS_CLUSTER_NAME,
        models: models.length > 0 ? models : ['default'],
        connector: (flags.disaggConnectorType ?? 'nixl') as 'nixl' | 'lmcache',
        routingThreshold: flags.routingThreshold ?? 0,
        loadBalancing: (flags.loadBalancingStrategy ?? 'round_robin') as 'round_robin' | 'least_loaded',
        prefill: { endpoints: prefill },
        decode: { endpoints: decode },
        policies: {
          ...(flags.prefillFailurePolicy
            ? { prefillFailurePolicy: flags.prefillFailurePolicy as 'fallback' | 'fail' }
            : {}),
          prefillTimeouts: timeouts,
          decodeTimeouts: timeouts,
          ...(flags.kvReadyTimeoutMs !== undefined ? { kvReadyTimeoutMs: flags.kvReadyTimeoutMs } : {}),
        },
      },
    ],
    peers: [],
  };
}

function parseRegistry(json: string | undefined): Map<string, unknown> {
  if (!json) return new Map();
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new Error(`--decoder-registry is not valid JSON: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Error('--decoder-registry must be a JSON object keyed by decoder id or URL');
  }
  return new Map(Object.entries(doc as Record<string, unknown>));
}

/**
 * Accepts the config's own shape ({lmcache:{receiverHost,initPorts,allocPorts}, nixl:{...}} or
 * the same fields flat) and the seed's snake_case ({receiver_host, receiver_init_port, ...}).
 */
function registryEntry(
  raw: unknown,
  key: string,
): { lmcache?: Record<string, unknown>; nixl?: Record<string, unknown> } {
  if (!raw || typeof raw !== 'object') throw new Error(`--decoder-registry entry ${key} must be an object`);
  const e = raw as Record<string, unknown>;
  const out: { lmcache?: Record<string, unknown>; nixl?: Record<string, unknown> } = {};
  if (e['lmcache'] && typeof e['lmcache'] === 'object') out.lmcache = e['lmcache'] as Record<string, unknown>;
  if (e['nixl'] && typeof e['nixl'] === 'object') out.nixl = e['nixl'] as Record<string, unknown>;
  const receiverHost = e['receiverHost'] ?? e['receiver_host'];
  if (receiverHost !== undefined) {
    out.lmcache = {
      receiverHost,
      initPorts: portList(e['initPorts'] ?? e['receiver_init_port']),
      allocPorts: portList(e['allocPorts'] ?? e['receiver_alloc_port']),
    };
  }
  const sideChannelHost = e['sideChannelHost'] ?? e['side_channel_host'];
  if (sideChannelHost !== undefined) {
    out.nixl = { sideChannelHost, sideChannelPort: e['sideChannelPort'] ?? e['side_channel_port'] };
  }
  if (!out.lmcache && !out.nixl) {
    throw new Error(
      `--decoder-registry entry ${key} has neither LMCache (receiver_host, receiver_init_port, receiver_alloc_port) nor NIXL (side_channel_host, side_channel_port) fields`,
    );
  }
  return out;
}

function portList(v: unknown): unknown {
  if (typeof v === 'number') return [v];
  if (typeof v === 'string') return v.split(',').map((s) => Number(s.trim()));
  return v;
}

function splitList(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
