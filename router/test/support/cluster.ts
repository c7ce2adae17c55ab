// Builds router config documents from running engines (simulated or real).

/** What a config entry needs of an engine: test/sim's RunningEngine and test/real's RealEngine have it. */
export interface EngineEndpoint {
  url: string;
  host: string;
  lmcacheInitPorts: number[];
  lmcacheAllocPorts: number[];
}

export interface ClusterSpec {
  name?: string;
  models?: string[];
  connector: 'nixl' | 'lmcache';
  routingThreshold?: number;
  loadBalancing?: 'round_robin' | 'least_loaded';
  prefill: EngineEndpoint[];
  decode: EngineEndpoint[];
  policies?: Record<string, unknown>;
}

export function clusterDoc(spec: ClusterSpec): Record<string, unknown> {
  return {
    name: spec.name ?? 'default/sim',
    models: spec.models ?? ['sim-model'],
    connector: spec.connector,
    routingThreshold: spec.routingThreshold ?? 0,
    loadBalancing: spec.loadBalancing ?? 'round_robin',
    prefill: { endpoints: spec.prefill.map((e, i) => ({ id: `prefill-${i}`, url: e.url })) },
    decode: {
      endpoints: spec.decode.map((e, i) => ({
        id: `decode-${i}`,
        url: e.url,
        ...(spec.connector === 'lmcache'
          ? {
              lmcache: {
                receiverHost: e.host,
                initPorts: e.lmcacheInitPorts,
                allocPorts: e.lmcacheAllocPorts,
              },
            }
          : {}),
      })),
    },
    ...(spec.policies ? { policies: spec.policies } : {}),
  };
}

export function configDoc(
  clusters: ClusterSpec[],
  generation = 1,
  peers: unknown[] = [],
): Record<string, unknown> {
  return { generation, clusters: clusters.map(clusterDoc), peers };
}
