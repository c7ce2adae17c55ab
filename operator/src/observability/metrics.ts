// prom-client metrics under the names controller-runtime uses, so existing dashboards work,
// plus the operator's own (informer lifecycle, router pushes, routable endpoints).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const CONTROLLER_NAME = 'disaggcluster';

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;

export function createOperatorMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller, by result (success|error|requeue|requeue_after)',
      labelNames: ['controller', 'result'] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'] as const,
      registers,
    }),
    queueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'] as const,
      registers,
    }),
    queueAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'] as const,
      registers,
    }),
    queueRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'] as const,
      registers,
    }),
    queueLatency: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'] as const,
      buckets: [0.0001, 0.001, 0.01, 0.1, 1, 10, 100, 1000],
      registers,
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'] as const,
      buckets: [0.0001, 0.001, 0.01, 0.1, 1, 10, 100, 1000],
      registers,
    }),
    leaderStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'] as const,
      registers,
    }),
    informerEvents: new Counter({
      name: 'disagg_informer_lifecycle_events_total',
      help: 'Informer lifecycle events by resource (list|connect|error|restart)',
      labelNames: ['resource', 'event'] as const,
      registers,
    }),
    routerPushes: new Counter({
      name: 'disagg_router_config_push_total',
      help: 'Router configuration pushes by result (success|rejected|unreachable|unchanged)',
      labelNames: ['result'] as const,
      registers,
    }),
    routableEndpoints: new Gauge({
      name: 'disagg_pool_routable_endpoints',
      help: 'Endpoints in the router configuration per cluster and pool',
      labelNames: ['namespace', 'cluster', 'role'] as const,
      registers,
    }),
    routerPeers: new Gauge({
      name: 'disagg_router_peers',
      help: 'Live router replicas known from membership leases',
      registers,
    }),
  };
}
