// Condition types and their CamelCase reasons; docs/api.md explains each and what to do about it.

export const CONDITION = {
  /** The cluster serves at its desired topology and the router has its configuration. */
  Ready: 'Ready',
  /** Pools are being scaled, started or drained. */
  Progressing: 'Progressing',
  /** Something needs a person: invalid pods, a rejected configuration, failed writes. */
  Degraded: 'Degraded',
  /** The leader's router acknowledged a configuration containing this cluster's current entry. */
  RouterConfigured: 'RouterConfigured',
} as const;
export type ConditionType = (typeof CONDITION)[keyof typeof CONDITION];

export const REASON = {
  // Ready
  AllEndpointsRoutable: 'AllEndpointsRoutable',
  EndpointsNotRoutable: 'EndpointsNotRoutable',
  NoRoutableDecoders: 'NoRoutableDecoders',
  ScaledToZero: 'ScaledToZero',
  RouterNotConfigured: 'RouterNotConfigured',
  // Progressing
  Stable: 'Stable',
  ScalingUp: 'ScalingUp',
  ScalingDown: 'ScalingDown',
  DrainingPods: 'DrainingPods',
  PodsStarting: 'PodsStarting',
  // Degraded
  AsExpected: 'AsExpected',
  InvalidPodPorts: 'InvalidPodPorts',
  AmbiguousPodRole: 'AmbiguousPodRole',
  ApplyFailed: 'ApplyFailed',
  // RouterConfigured (also Degraded reasons when the push fails for good)
  ConfigAcknowledged: 'ConfigAcknowledged',
  PushPending: 'PushPending',
  PushFailed: 'PushFailed',
  ConfigRejected: 'ConfigRejected',
  ModelConflict: 'ModelConflict',
} as const;
export type Reason = (typeof REASON)[keyof typeof REASON];

/** Kubernetes Event reasons (CamelCase, past tense or a state). */
export const EVENT = {
  ScaledPool: 'ScaledPool',
  DrainingPod: 'DrainingPod',
  DrainedPod: 'DrainedPod',
  DrainCancelled: 'DrainCancelled',
  InvalidPodPorts: 'InvalidPodPorts',
  AmbiguousPodRole: 'AmbiguousPodRole',
  RouterConfigured: 'RouterConfigured',
  RouterConfigFailed: 'RouterConfigFailed',
  ApplyFailed: 'ApplyFailed',
} as const;
