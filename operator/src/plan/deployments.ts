// The Deployment the operator runs for a template pool: the user's pod template plus the pod
// contract (labels, port annotations) and the connector env vLLM/LMCache read. Pure.
import {
  ANN_HTTP_PORT,
  ANN_LMCACHE_ALLOC_PORTS,
  ANN_LMCACHE_INIT_PORTS,
  ANN_NIXL_PORT,
  LABEL_CLUSTER,
  LABEL_MANAGED_BY,
  LABEL_ROLE,
  MANAGED_BY,
} from '../api/labels.js';
import {
  API_VERSION,
  DEFAULTS,
  KIND,
  type Container,
  type Deployment,
  type DisaggCluster,
  type EnvVar,
  type OwnerReference,
  type PoolRole,
} from '../api/types.js';

export const deploymentName = (cluster: DisaggCluster, role: PoolRole): string =>
  `${cluster.metadata.name}-${role}`;

export function poolSelectorLabels(cluster: DisaggCluster, role: PoolRole): Record<string, string> {
  return { [LABEL_CLUSTER]: cluster.metadata.name!, [LABEL_ROLE]: role };
}

/**
 * Controller owner reference. blockOwnerDeletion is left unset on purpose: it only matters for
 * foreground deletion and would need `update` on disaggclusters/finalizers where the
 * OwnerReferencesPermissionEnforcement admission plugin runs.
 */
export function ownerReference(cluster: DisaggCluster): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: cluster.metadata.name!,
    uid: cluster.metadata.uid!,
    controller: true,
  };
}

/** The port annotations of the pod contract, from the spec. */
export function contractAnnotations(cluster: DisaggCluster, role: PoolRole): Record<string, string> {
  const { connector } = cluster.spec;
  const pool = cluster.spec[role];
  const out: Record<string, string> = { [ANN_HTTP_PORT]: String(pool.httpPort ?? DEFAULTS.httpPort) };
  if (connector.type === 'nixl') {
    out[ANN_NIXL_PORT] = String(connector.nixl?.sideChannelPort ?? DEFAULTS.nixlSideChannelPort);
  }
  if (connector.type === 'lmcache' && role === 'decode' && connector.lmcache) {
    out[ANN_LMCACHE_INIT_PORTS] = connector.lmcache.initPorts.join(',');
    out[ANN_LMCACHE_ALLOC_PORTS] = connector.lmcache.allocPorts.join(',');
  }
  return out;
}

const podIP: EnvVar['valueFrom'] = { fieldRef: { fieldPath: 'status.podIP' } };

/** The env the engine reads for its connector (names as vLLM and LMCache define them). */
export function connectorEnv(cluster: DisaggCluster, role: PoolRole): EnvVar[] {
  const { connector } = cluster.spec;
  if (connector.type === 'nixl') {
    return [
      // vLLM defaults to localhost, which a decoder on another host cannot reach.
      { name: 'VLLM_NIXL_SIDE_CHANNEL_HOST', valueFrom: podIP },
      {
        name: 'VLLM_NIXL_SIDE_CHANNEL_PORT',
        value: String(connector.nixl?.sideChannelPort ?? DEFAULTS.nixlSideChannelPort),
      },
    ];
  }
  const lm = connector.lmcache;
  if (!lm) return [];
  if (role === 'decode') {
    return [
      { name: 'LMCACHE_PD_PEER_HOST', valueFrom: podIP },
      { name: 'LMCACHE_PD_PEER_INIT_PORT', value: lm.initPorts.join(',') },
      { name: 'LMCACHE_PD_PEER_ALLOC_PORT', value: lm.allocPorts.join(',') },
    ];
  }
  return [
    { name: 'LMCACHE_PD_PROXY_HOST', value: lm.kvNotifyHost },
    { name: 'LMCACHE_PD_PROXY_PORT', value: String(lm.kvNotifyPort ?? DEFAULTS.lmcacheKvNotifyPort) },
  ];
}

/** Our env wins over a same-named entry in the template (the contract must hold). */
function mergeEnv(existing: EnvVar[] | undefined, injected: EnvVar[]): EnvVar[] {
  const names = new Set(injected.map((e) => e.name));
  return [...(existing ?? []).filter((e) => !names.has(e.name)), ...injected];
}

/** The desired Deployment for a template pool, as sent with server-side apply. */
export function desiredDeployment(cluster: DisaggCluster, role: PoolRole, replicas: number): Deployment {
  const pool = cluster.spec[role];
  if (!pool.template) throw new Error(`${role} pool has no template`);
  const template = structuredClone(pool.template);
  const selector = poolSelectorLabels(cluster, role);
  const [engine, ...sidecars] = template.spec.containers ?? [];
  const containers: Container[] = engine
    ? [{ ...engine, env: mergeEnv(engine.env, connectorEnv(cluster, role)) }, ...sidecars]
    : [];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: deploymentName(cluster, role),
      namespace: cluster.metadata.namespace,
      labels: { ...selector, [LABEL_MANAGED_BY]: MANAGED_BY },
      ownerReferences: [ownerReference(cluster)],
    },
    spec: {
      replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: { ...(template.metadata?.labels ?? {}), ...selector },
          annotations: { ...(template.metadata?.annotations ?? {}), ...contractAnnotations(cluster, role) },
        },
        spec: { ...template.spec, containers },
      },
    },
  };
}
