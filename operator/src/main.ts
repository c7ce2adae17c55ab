#!/usr/bin/env node
// disagg-operator: `npm run operator -- --help`.
import { readFileSync } from 'node:fs';
import { RestKubeApi } from './controller/kube-client.js';
import { connectToKube } from './kube/connection.js';
import { Manager } from './controller/manager.js';
import { podOwner } from './controller/leader-election.js';
import { helpText, parseFlags } from './flags.js';
import { startProbeServer } from './observability/http.js';
import { createLogger, errorMessage } from './observability/logger.js';
import { createOperatorMetrics } from './observability/metrics.js';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

async function main(): Promise<void> {
  const parsed = parseFlags(process.argv.slice(2), process.env);
  if (!parsed.ok) {
    process.stderr.write(`${parsed.error}\n\n${helpText()}\n`);
    process.exit(2);
  }
  const flags = parsed.flags;
  if (flags.help) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  const log = createLogger(flags.logLevel);
  // Never imports client-node unless the kubeconfig's user needs it (exec plugins and the like).
  const conn = await connectToKube({ kubeconfig: flags.kubeconfig });
  log.info('Connecting to the API server', { server: conn.server, config: conn.source });
  const leaseNamespace = flags.leaderElectionNamespace ?? podNamespace() ?? 'default';
  const metrics = createOperatorMetrics();
  const manager = new Manager({
    api: new RestKubeApi(conn),
    // Lease calls must fail fast: a renewal stuck for the whole renew deadline loses the lease.
    leaseApi: new RestKubeApi(conn, Math.max(1000, Math.min(5000, flags.renewDeadlineMs / 2))),
    namespaces: flags.namespaces,
    routerAdminSocket: flags.routerAdminSocket,
    resyncPeriodMs: flags.resyncPeriodMs,
    workers: flags.workers,
    replicaId: flags.replicaId,
    kvNotifyAddress: flags.kvNotifyAddress,
    leaderElection: {
      enabled: flags.leaderElect,
      namespace: leaseNamespace,
      id: flags.leaderElectionId,
      leaseDurationMs: flags.leaseDurationMs,
      renewDeadlineMs: flags.renewDeadlineMs,
      retryPeriodMs: flags.retryPeriodMs,
    },
    leaseOwner: podOwner(leaseNamespace),
    log,
    metrics,
  });
  const health = await startProbeServer({
    host: flags.bindAddress,
    port: flags.healthPort,
    isReady: () => manager.hasSynced(),
  });
  const metricsServer = await startProbeServer({
    host: flags.bindAddress,
    port: flags.metricsPort,
    registry: metrics.registry,
  });
  await manager.start();
  log.info('operator listening', { healthPort: health.port, metricsPort: metricsServer.port });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('Shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    try {
      await manager.stop();
    } catch (err) {
      log.error('Shutdown failed', { error: errorMessage(err) });
    }
    health.server.close();
    metricsServer.server.close();
    log.info('Stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function podNamespace(): string | undefined {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`disagg-operator: ${errorMessage(err)}\n`);
  process.exit(1);
});
