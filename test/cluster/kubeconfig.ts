// Kubeconfig files for the test cluster: the admin one (client cert, system:masters) and ones
// that act as a ServiceAccount (TokenRequest token), so a test can run a component under its RBAC.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { readFileSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export type KubeconfigCredentials = { clientCertPem: string; clientKeyPem: string } | { token: string };

export interface KubeconfigSpec {
  server: string;
  caCertPem: string;
  credentials: KubeconfigCredentials;
  /** Name used for the cluster, user and context entries. */
  name?: string;
  namespace?: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export function kubeconfigYaml(spec: KubeconfigSpec): string {
  const name = spec.name ?? 'disagg-test';
  const user =
    'token' in spec.credentials
      ? { token: spec.credentials.token }
      : {
          'client-certificate-data': b64(spec.credentials.clientCertPem),
          'client-key-data': b64(spec.credentials.clientKeyPem),
        };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: spec.server, 'certificate-authority-data': b64(spec.caCertPem) } }],
    users: [{ name, user }],
    contexts: [
      {
        name,
        context: { cluster: name, user: name, ...(spec.namespace ? { namespace: spec.namespace } : {}) },
      },
    ],
    'current-context': name,
  });
}

export function writeKubeconfig(path: string, spec: KubeconfigSpec): string {
  writeFileSync(path, kubeconfigYaml(spec), { mode: 0o600 });
  return path;
}

export function loadKubeconfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface ServiceAccountKubeconfigOptions {
  namespace: string;
  serviceAccount: string;
  /** Where to write the kubeconfig. */
  path: string;
  /** Token lifetime; the API server's minimum is 600. */
  expirationSeconds?: number;
  /** Default namespace of the written context (defaults to the SA's namespace). */
  contextNamespace?: string;
}

/**
 * Requests a token for an existing ServiceAccount (TokenRequest API) and writes a kubeconfig that
 * uses it against the same API server as adminKubeconfigPath. Returns the written path.
 */
export async function serviceAccountKubeconfig(
  adminKubeconfigPath: string,
  opts: ServiceAccountKubeconfigOptions,
): Promise<string> {
  const admin = loadKubeconfig(adminKubeconfigPath);
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error(`${adminKubeconfigPath} has no current cluster`);
  const core = admin.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name: opts.serviceAccount,
    namespace: opts.namespace,
    body: { spec: { audiences: [], expirationSeconds: opts.expirationSeconds ?? 3600 } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error(`no token issued for ${opts.namespace}/${opts.serviceAccount}`);
  const caCertPem = cluster.caData
    ? Buffer.from(cluster.caData, 'base64').toString('utf8')
    : readFileSync(cluster.caFile ?? '', 'utf8');
  return writeKubeconfig(opts.path, {
    server: cluster.server,
    caCertPem,
    credentials: { token },
    name: `sa-${opts.namespace}-${opts.serviceAccount}`,
    namespace: opts.contextNamespace ?? opts.namespace,
  });
}
