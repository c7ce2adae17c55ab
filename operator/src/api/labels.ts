// Label and annotation keys of the pod contract (docs/api.md "Pod contract").

export const LABEL_CLUSTER = 'disagg.dev/cluster';
export const LABEL_ROLE = 'disagg.dev/role';
/** On Deployments the operator runs, so its Deployment informer sees only its own. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'disagg-operator';

export const ANN_HTTP_PORT = 'disagg.dev/http-port';
export const ANN_NIXL_PORT = 'disagg.dev/nixl-side-channel-port';
export const ANN_LMCACHE_INIT_PORTS = 'disagg.dev/lmcache-init-ports';
export const ANN_LMCACHE_ALLOC_PORTS = 'disagg.dev/lmcache-alloc-ports';

/** Set on a pod chosen to go on scale-down: the RFC 3339 time it left the router's pools. */
export const ANN_DRAINING_SINCE = 'disagg.dev/draining-since';
/** Read by the ReplicaSet controller: pods with the lowest cost are deleted first. */
export const ANN_POD_DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';
/** The cost put on drained pods so the ReplicaSet deletes exactly those on scale-down. */
export const DRAINED_POD_DELETION_COST = '-1000000';

/** Named container ports used when an annotation is absent. */
export const PORT_NAME_HTTP = 'http';
export const PORT_NAME_NIXL = 'nixl';
export const portNameLmcacheInit = (rank: number): string => `lmcache-init-${rank}`;
export const portNameLmcacheAlloc = (rank: number): string => `lmcache-alloc-${rank}`;
