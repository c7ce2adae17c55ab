// Cache indexes, so a reconcile reads its cluster's pods and Deployments without scanning the
// namespace. Each returns the index values an object is filed under.
import { LABEL_CLUSTER } from '../api/labels.js';
import type { Deployment, Pod } from '../api/types.js';

/** `namespace/cluster` from the pod's disagg.dev/cluster label. */
export const podClusterIndex = (p: Pod): string[] => {
  const cluster = p.metadata.labels?.[LABEL_CLUSTER];
  return cluster ? [`${p.metadata.namespace}/${cluster}`] : [];
};

/** The uids of the Deployment's owners (the DisaggCluster's uid for ours). */
export const ownerUidIndex = (d: Deployment): string[] => d.metadata.ownerReferences?.map((o) => o.uid) ?? [];
