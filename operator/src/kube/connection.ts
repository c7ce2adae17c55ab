// How the operator reaches the API server: the base URL, an undici Dispatcher with the cluster's
// TLS settings, and the headers that authenticate each request. Sources, in kubectl's order:
// --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the pod's ServiceAccount. Kubeconfig
// users this package cannot serve itself (exec plugins, auth providers...) go through client-node,
// imported only then: loading it costs about 90 MB of RSS (see docs/architecture.md).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { inClusterConfig, isInCluster, SERVICE_ACCOUNT_DIR } from './in-cluster.js';
import {
  KubeconfigError,
  readKubeconfigFiles,
  selectContext,
  type ClusterEndpoint,
  type NativeCredentials,
} from './kubeconfig.js';
import { TokenFile } from './token-file.js';

export interface RequestAuth {
  dispatcher: Dispatcher;
  headers: Record<string, string>;
}

export interface KubeConnection {
  /** https://host:port, no trailing slash. */
  readonly server: string;
  /** The context's (or the pod's) namespace, if it names one. */
  readonly namespace?: string;
  /** Where the configuration came from, for the start-up log. */
  readonly source: string;
  /** Dispatcher and headers for the next request (a rotated token is picked up here). */
  authorize(): Promise<RequestAuth>;
  /** The server answered 401: re-read credentials that live in files before the next request. */
  unauthorized(): void;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** --kubeconfig; unset = $KUBECONFIG, ~/.kube/config, in-cluster. */
  kubeconfig?: string;
  /** A context other than current-context. */
  context?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
  serviceAccountDir?: string;
}

export async function connectToKube(opts: ConnectOptions = {}): Promise<KubeConnection> {
  const env = opts.env ?? process.env;
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const files = kubeconfigFiles(opts, env);
  if (files.length === 0) {
    if (!isInCluster(env, saDir))
      throw new KubeconfigError(
        'no Kubernetes configuration: no --kubeconfig, $KUBECONFIG unset, no ~/.kube/config, ' +
          `and not in a pod (KUBERNETES_SERVICE_HOST unset or no token in ${saDir})`,
      );
    const ic = inClusterConfig(env, saDir);
    return nativeConnection(ic.cluster, ic.credentials, { namespace: ic.namespace, source: 'in-cluster' });
  }
  const selection = selectContext(readKubeconfigFiles(files), opts.context);
  const source = `kubeconfig ${files.join(delimiter)} (context ${selection.context})`;
  if (selection.kind === 'native')
    return nativeConnection(selection.cluster, selection.credentials, {
      namespace: selection.namespace,
      source,
    });
  const { clientNodeConnection } = await import('./client-node-auth.js');
  return clientNodeConnection(selection.document, {
    namespace: selection.namespace,
    source: `${source} through client-node (${selection.reason})`,
  });
}

function kubeconfigFiles(opts: ConnectOptions, env: NodeJS.ProcessEnv): string[] {
  if (opts.kubeconfig) return [opts.kubeconfig];
  if (env.KUBECONFIG) {
    // Missing entries of the list are skipped, as kubectl does; none at all is an error.
    const listed = env.KUBECONFIG.split(delimiter).filter(Boolean);
    const present = listed.filter((f) => existsSync(f));
    if (listed.length > 0 && present.length === 0)
      throw new KubeconfigError(`$KUBECONFIG names no existing file: ${env.KUBECONFIG}`);
    return present;
  }
  const home = opts.home ?? env.HOME ?? homedir();
  const file = join(home, '.kube', 'config');
  return existsSync(file) ? [file] : [];
}

/** A connection from resolved settings: one keep-alive connection pool, token headers per request. */
export function nativeConnection(
  cluster: ClusterEndpoint,
  credentials: NativeCredentials,
  meta: { namespace?: string; source: string },
): KubeConnection {
  const tls = cluster.server.startsWith('https:');
  const dispatcher = new Agent({
    connect: {
      ...(tls
        ? {
            ca: cluster.ca,
            cert: credentials.clientCert,
            key: credentials.clientKey,
            rejectUnauthorized: !cluster.insecureSkipTlsVerify,
            servername: cluster.tlsServerName,
          }
        : {}),
      // undici's default 60 s can race load-balancer idle timeouts; client-go uses 30 s.
      keepAlive: true,
      keepAliveInitialDelay: 30_000,
    },
  });
  const tokenFile = credentials.tokenFile ? new TokenFile(credentials.tokenFile) : undefined;
  if (tokenFile) tokenFile.get(); // fail at start-up, not on the first request, if it is unreadable
  return {
    server: cluster.server,
    namespace: meta.namespace,
    source: meta.source,
    authorize: () => {
      const token = tokenFile ? tokenFile.get() : credentials.token;
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      return Promise.resolve({ dispatcher, headers });
    },
    unauthorized: () => tokenFile?.invalidate(),
    close: () => dispatcher.close(),
  };
}
