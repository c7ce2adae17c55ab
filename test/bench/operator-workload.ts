// The DisaggClusters the operator benchmark creates and edits, through the API server as a user
// would (admin credentials, not the operator's). Engines: the full simulator (test/sim) or the
// loopback kubelet's "tiny" engine (annotation disagg.dev/loopback-engine), a bare /health server
// light enough to run 400 of on 2 cores.
import type { KubeConfig } from '@kubernetes/client-node';
import { ENGINE_ANNOTATION } from '../cluster/loopback-kubelet.js';
import { isConflict, kubeRequest } from '../cluster/rest.js';
import { waitFor } from '../cluster/wait.js';

export type EngineKind = 'sim' | 'tiny';

export interface ClusterShape {
  namespace: string;
  name: string;
  model: string;
  prefill: number;
  decode: number;
  engine: EngineKind;
}

/** The router's name for the cluster (the operator's work-queue key). */
export const clusterKey = (s: Pick<ClusterShape, 'namespace' | 'name'>): string => `${s.namespace}/${s.name}`;

const crPath = (ns: string, name = ''): string =>
  `/apis/disagg.dev/v1alpha1/namespaces/${ns}/disaggclusters${name ? `/${name}` : ''}`;

function pool(s: ClusterShape, role: 'prefill' | 'decode'): Record<string, unknown> {
  const args =
    s.engine === 'sim'
      ? ['--model', s.model, '--role', role, '--connector', 'nixl', '--prefill-ms-per-token', '0.02']
      : ['--model', s.model];
  return {
    replicas: s[role],
    // the drain only delays the pods' deletion; they leave the router when it starts
    drainSeconds: 1,
    template: {
      metadata: s.engine === 'tiny' ? { annotations: { [ENGINE_ANNOTATION]: 'tiny' } } : {},
      spec: {
        terminationGracePeriodSeconds: 5,
        containers: [{ name: 'engine', image: `disagg-dev/engine-${s.engine}:bench`, args }],
      },
    },
  };
}

export function disaggClusterManifest(s: ClusterShape): Record<string, unknown> {
  return {
    apiVersion: 'disagg.dev/v1alpha1',
    kind: 'DisaggCluster',
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      model: { servedName: s.model },
      connector: { type: 'nixl', nixl: { sideChannelPort: 5600 } },
      routing: { threshold: 64, loadBalancing: 'round_robin', prefillFailurePolicy: 'fallback' },
      prefill: pool(s, 'prefill'),
      decode: pool(s, 'decode'),
    },
  };
}

/** Creates the namespace and waits for its "default" ServiceAccount (pods are refused before it exists). */
export async function createNamespace(kc: KubeConfig, ns: string): Promise<void> {
  try {
    await kubeRequest(kc, {
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
  await waitFor(
    `ServiceAccount ${ns}/default`,
    () => kubeRequest(kc, { method: 'GET', path: `/api/v1/namespaces/${ns}/serviceaccounts/default` }),
    { timeoutMs: 60_000, intervalMs: 100 },
  );
}

export async function createCluster(kc: KubeConfig, s: ClusterShape): Promise<void> {
  await kubeRequest(kc, { method: 'POST', path: crPath(s.namespace), body: disaggClusterManifest(s) });
}

/** Merge-patches both pools' replicas; returns the moment the edit was sent (Date.now()). */
export async function scaleCluster(
  kc: KubeConfig,
  s: ClusterShape,
  prefill: number,
  decode: number,
): Promise<number> {
  const at = Date.now();
  await kubeRequest(kc, {
    method: 'PATCH',
    path: crPath(s.namespace, s.name),
    patchType: 'merge',
    body: { spec: { prefill: { replicas: prefill }, decode: { replicas: decode } } },
  });
  return at;
}
