// The cluster's entry in the router configuration, in the router's own (input) type. Pure.
import type { RouterConfigInput } from '../../../router/src/config/index.js';
import type { DisaggCluster, LegTimeoutsSpec } from '../api/types.js';
import { DEFAULTS, keyOf } from '../api/types.js';
import { asPrefillEndpoint, type ClusterDiscovery, type DiscoveredPod } from '../discovery/pod-endpoints.js';

export type ClusterEntry = RouterConfigInput['clusters'][number];

/** Pods the router may send to: routable and not chosen to go. Sorted by id so the hash is stable. */
export function routablePods(pods: readonly DiscoveredPod[], draining: ReadonlySet<string>): DiscoveredPod[] {
  return pods
    .filter((p) => p.routable && p.endpoint && !draining.has(p.id))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function timeouts(t: LegTimeoutsSpec | undefined): LegTimeoutsSpec | undefined {
  if (!t) return undefined;
  const out: LegTimeoutsSpec = {};
  if (t.connectMs !== undefined) out.connectMs = t.connectMs;
  if (t.firstByteMs !== undefined) out.firstByteMs = t.firstByteMs;
  if (t.idleMs !== undefined) out.idleMs = t.idleMs;
  return out;
}

export function routerEntry(
  cluster: DisaggCluster,
  discovery: ClusterDiscovery,
  draining: ReadonlySet<string>,
): ClusterEntry {
  const routing = cluster.spec.routing ?? {};
  const policies: NonNullable<ClusterEntry['policies']> = {
    prefillFailurePolicy: routing.prefillFailurePolicy ?? DEFAULTS.prefillFailurePolicy,
  };
  const prefillTimeouts = timeouts(routing.prefillTimeouts);
  const decodeTimeouts = timeouts(routing.decodeTimeouts);
  if (prefillTimeouts) policies.prefillTimeouts = prefillTimeouts;
  if (decodeTimeouts) policies.decodeTimeouts = decodeTimeouts;
  if (routing.kvReadyTimeoutMs !== undefined) policies.kvReadyTimeoutMs = routing.kvReadyTimeoutMs;
  return {
    name: keyOf(cluster),
    models: [cluster.spec.model.servedName],
    connector: cluster.spec.connector.type,
    routingThreshold: routing.threshold ?? DEFAULTS.threshold,
    loadBalancing: routing.loadBalancing ?? DEFAULTS.loadBalancing,
    prefill: {
      endpoints: routablePods(discovery.prefill.pods, draining).map((p) => asPrefillEndpoint(p.endpoint!)),
    },
    decode: { endpoints: routablePods(discovery.decode.pods, draining).map((p) => p.endpoint!) },
    policies,
  };
}
