// The fallback for kubeconfig users the operator does not authenticate itself (exec plugins,
// auth providers, basic auth, impersonation, proxies): client-node's KubeConfig signs each request.
// Imported lazily by connection.ts, so clusters that need none of this never load client-node.
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { Agent, type Dispatcher } from 'undici';
import { stringify } from 'yaml';
import type { KubeConnection } from './connection.js';

export function clientNodeConnection(
  document: Record<string, unknown>,
  meta: { namespace?: string; source: string },
): KubeConnection {
  const kc = new KubeConfig();
  kc.loadFromString(stringify(document));
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${meta.source}: no current cluster`);
  const server = cluster.server.replace(/\/+$/, '');
  let dispatcher: Dispatcher | undefined;
  return {
    server,
    namespace: meta.namespace,
    source: meta.source,
    authorize: async () => {
      const ctx = new RequestContext(server, HttpMethod.GET);
      // Per request: exec plugins cache their credential until it expires, then run again.
      await kc.applySecurityAuthentication(ctx);
      // The TLS settings do not change; the first dispatcher keeps one connection pool.
      dispatcher ??= (ctx.getDispatcher() as Dispatcher | undefined) ?? new Agent();
      return { dispatcher, headers: ctx.getHeaders() };
    },
    unauthorized: () => undefined,
    close: async () => {
      await dispatcher?.close();
    },
  };
}
