// Node and Lease bodies the loopback kubelet registers and keeps fresh (pure builders).
import { kubeMicroTime, kubeTime } from './pod-status.js';

export const LOOPBACK_NODE_LABEL = 'disagg.dev/loopback-kubelet';
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

/** Generous defaults so that scheduling never fails for lack of room; GPUs for vLLM-like pods. */
export const DEFAULT_NODE_CAPACITY: Record<string, string> = {
  cpu: '64',
  memory: '256Gi',
  pods: '250',
  'ephemeral-storage': '1Ti',
  'nvidia.com/gpu': '8',
};

export const LOOPBACK_HOST_IP = '127.0.0.1';

function conditions(now: string, since: string): object[] {
  const c = (type: string, status: string, reason: string, message: string): object => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: since,
  });
  return [
    c('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'loopback kubelet'),
    c('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'loopback kubelet'),
    c('PIDPressure', 'False', 'KubeletHasSufficientPID', 'loopback kubelet'),
    c('Ready', 'True', 'KubeletReady', 'loopback kubelet is posting ready status'),
  ];
}

export function nodeStatus(now: Date, since: string, capacity: Record<string, string>): object {
  return {
    capacity,
    allocatable: capacity,
    conditions: conditions(kubeTime(now), since),
    addresses: [
      { type: 'InternalIP', address: LOOPBACK_HOST_IP },
      { type: 'Hostname', address: 'localhost' },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
    nodeInfo: {
      machineID: '',
      systemUUID: '',
      bootID: '',
      kernelVersion: '',
      osImage: 'loopback',
      containerRuntimeVersion: 'loopback://1',
      kubeletVersion: 'v1.36.3',
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: 'amd64',
    },
  };
}

export function nodeObject(name: string, cidr: string, capacity: Record<string, string>, now: Date): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        [LOOPBACK_NODE_LABEL]: 'true',
      },
    },
    spec: { podCIDR: cidr, podCIDRs: [cidr] },
    status: nodeStatus(now, kubeTime(now), capacity),
  };
}

export function leaseObject(
  nodeName: string,
  nodeUid: string | undefined,
  durationS: number,
  now: Date,
): object {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: nodeName,
      namespace: NODE_LEASE_NAMESPACE,
      // like a kubelet: the lease goes away with its node
      ...(nodeUid
        ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid }] }
        : {}),
    },
    spec: { holderIdentity: nodeName, leaseDurationSeconds: durationS, renewTime: kubeMicroTime(now) },
  };
}
