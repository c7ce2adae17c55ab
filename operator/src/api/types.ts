// TypeScript shape of the DisaggCluster resource (crds/disagg.dev_disaggclusters.yaml is the source
// of truth; keep the two in step). Kubernetes core types are the minimal subsets the operator reads.

export const GROUP = 'disagg.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'DisaggCluster';
export const PLURAL = 'disaggclusters';

export type ConnectorType = 'nixl' | 'lmcache';
export type PoolRole = 'prefill' | 'decode';
export const POOL_ROLES: readonly PoolRole[] = ['prefill', 'decode'];

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string; apiVersion?: string } } & Record<string, unknown>;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  [field: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  [field: string]: unknown;
}

export interface PodTemplateSpec {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: PodSpec;
  status?: { phase?: string; podIP?: string; conditions?: PodCondition[] };
}

export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: PodTemplateSpec;
  };
  status?: {
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
    observedGeneration?: number;
  };
}

export interface LegTimeoutsSpec {
  connectMs?: number;
  firstByteMs?: number;
  idleMs?: number;
}

export interface PoolSpec {
  /** Desired engines in the pool (>= 0). */
  replicas: number;
  /** Template pools: port of the engine's OpenAI server (default 8000). */
  httpPort?: number;
  /** Template pools: seconds between the router dropping a pod and its deletion (default 30). */
  drainSeconds?: number;
  /** Exactly one of template and selector is set (enforced by the CRD). */
  template?: PodTemplateSpec;
  selector?: LabelSelector;
}

export interface DisaggClusterSpec {
  model: { servedName: string };
  connector: {
    type: ConnectorType;
    nixl?: { sideChannelPort?: number };
    lmcache?: { initPorts: number[]; allocPorts: number[]; kvNotifyHost: string; kvNotifyPort?: number };
  };
  routing?: {
    threshold?: number;
    loadBalancing?: 'round_robin' | 'least_loaded';
    prefillFailurePolicy?: 'fallback' | 'fail';
    prefillTimeouts?: LegTimeoutsSpec;
    decodeTimeouts?: LegTimeoutsSpec;
    kvReadyTimeoutMs?: number;
  };
  prefill: PoolSpec;
  decode: PoolSpec;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface PoolStatus {
  replicas: number;
  readyReplicas: number;
  routableEndpoints: number;
}

export interface DisaggClusterStatus {
  observedGeneration?: number;
  topology?: string;
  prefill?: PoolStatus;
  decode?: PoolStatus;
  router?: { acknowledgedHash?: string; entryHash?: string };
  conditions?: Condition[];
}

export interface DisaggCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: DisaggClusterSpec;
  status?: DisaggClusterStatus;
}

/** Defaults the CRD applies, repeated here because a nested object the user omits gets none. */
export const DEFAULTS = {
  nixlSideChannelPort: 5600,
  lmcacheKvNotifyPort: 7500,
  httpPort: 8000,
  drainSeconds: 30,
  threshold: 0,
  loadBalancing: 'round_robin',
  prefillFailurePolicy: 'fallback',
} as const;

/** `namespace/name`, the work-queue key and the router's cluster name. */
export function keyOf(obj: { metadata: ObjectMeta }): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}
