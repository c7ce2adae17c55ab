// The in-cluster configuration a pod gets: the API server from KUBERNETES_SERVICE_HOST/PORT, the
// cluster CA, the ServiceAccount token (a file, re-read as it rotates) and the pod's namespace.
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { KubeconfigError, type ClusterEndpoint, type NativeCredentials } from './kubeconfig.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InCluster {
  cluster: ClusterEndpoint;
  credentials: NativeCredentials;
  namespace?: string;
}

/** True when this process looks like it runs in a pod (the env and the token file are there). */
export function isInCluster(env: NodeJS.ProcessEnv, saDir = SERVICE_ACCOUNT_DIR): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(join(saDir, 'token'));
}

export function inClusterConfig(env: NodeJS.ProcessEnv, saDir = SERVICE_ACCOUNT_DIR): InCluster {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host) throw new KubeconfigError('in-cluster: KUBERNETES_SERVICE_HOST is not set');
  if (!port || !/^\d+$/.test(port))
    throw new KubeconfigError(
      `in-cluster: KUBERNETES_SERVICE_PORT ${JSON.stringify(port ?? '')} is not a port`,
    );
  const tokenFile = join(saDir, 'token');
  if (!existsSync(tokenFile))
    throw new KubeconfigError(`in-cluster: no ServiceAccount token at ${tokenFile}`);
  const caFile = join(saDir, 'ca.crt');
  let ca: Buffer;
  try {
    ca = readFileSync(caFile);
  } catch (err) {
    throw new KubeconfigError(`in-cluster: cannot read ${caFile}: ${(err as Error).message}`);
  }
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(saDir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined; // optional: the operator falls back to its flags
  }
  return {
    cluster: {
      server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
      ca,
      insecureSkipTlsVerify: false,
    },
    credentials: { tokenFile },
    namespace,
  };
}
