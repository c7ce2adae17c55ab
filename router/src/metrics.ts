// prom-client metrics, one registry per router instance (several routers may share a test process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TOKEN_BUCKETS = [16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072];

export type RouterMetrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'router_requests_total',
      help: 'Generation requests by cluster, path taken (dpd|direct|fallback|none) and HTTP status',
      labelNames: ['cluster', 'path', 'status'] as const,
      registers,
    }),
    estimatedTokens: new Histogram({
      name: 'router_estimated_prompt_tokens',
      help: 'Estimated input tokens of each request (chars/4 heuristic)',
      labelNames: ['cluster'] as const,
      buckets: TOKEN_BUCKETS,
      registers,
    }),
    decisions: new Counter({
      name: 'router_routing_decisions_total',
      help: 'Threshold classification outcomes by cluster (dpd|direct)',
      labelNames: ['cluster', 'decision'] as const,
      registers,
    }),
    prefillDuration: new Histogram({
      name: 'router_prefill_duration_seconds',
      help: 'Prefill leg latency (LMCache: tokenize + prefill), successful legs only',
      labelNames: ['cluster', 'connector'] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: 'router_time_to_first_token_seconds',
      help: 'From request arrival to the first response byte written to the client',
      labelNames: ['cluster', 'path'] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    requestDuration: new Histogram({
      name: 'router_request_duration_seconds',
      help: 'End-to-end latency of generation requests',
      labelNames: ['cluster', 'path'] as const,
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    inFlight: new Gauge({
      name: 'router_in_flight_requests',
      help: 'Upstream requests open per endpoint and role',
      labelNames: ['endpoint', 'role'] as const,
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'router_upstream_errors_total',
      help: 'Failed upstream calls by endpoint, role and kind (connect|first_byte_timeout|idle_timeout|status_4xx|status_5xx|reset|bad_response)',
      labelNames: ['endpoint', 'role', 'kind'] as const,
      registers,
    }),
    retries: new Counter({
      name: 'router_retries_total',
      help: 'Legs retried on another endpoint before the first byte reached the client',
      labelNames: ['cluster', 'role'] as const,
      registers,
    }),
    fallbacks: new Counter({
      name: 'router_fallbacks_total',
      help: 'DPD requests served direct by a decoder instead (prefill failed, no prefiller, or LMCache-unsupported request)',
      labelNames: ['cluster', 'reason'] as const,
      registers,
    }),
    nixlMissingKvParams: new Counter({
      name: 'router_nixl_kv_params_missing_total',
      help: 'NIXL prefill responses without kv_transfer_params (the decoder prefilled locally)',
      labelNames: ['cluster'] as const,
      registers,
    }),
    nixlRemoteHostRewrites: new Counter({
      name: 'router_nixl_remote_host_rewrites_total',
      help: 'Loopback remote_host values replaced by the prefill endpoint host',
      labelNames: ['endpoint'] as const,
      registers,
    }),
    kvNotifications: new Counter({
      name: 'router_kv_notifications_total',
      help: 'LMCache KV-ready notifications received, by outcome (delivered|forwarded|unmatched|unknown_owner|malformed|forward_failed)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    kvReadyWait: new Histogram({
      name: 'router_kv_ready_wait_seconds',
      help: 'LMCache: time from the prefill response to the last KV-ready notification',
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    kvReadyTimeouts: new Counter({
      name: 'router_kv_ready_timeouts_total',
      help: 'LMCache requests whose KV-ready notifications did not all arrive in time',
      labelNames: ['cluster'] as const,
      registers,
    }),
    clientAborts: new Counter({
      name: 'router_client_aborts_total',
      help: 'Requests whose client disconnected before the response finished (upstream legs aborted)',
      labelNames: ['cluster'] as const,
      registers,
    }),
    engineScrapeErrors: new Counter({
      name: 'router_engine_stats_scrape_errors_total',
      help: 'Failed /metrics scrapes of engines (least_loaded)',
      labelNames: ['url'] as const,
      registers,
    }),
    engineLoad: new Gauge({
      name: 'router_engine_scraped_load',
      help: 'Last scraped vllm:num_requests_running + vllm:num_requests_waiting per engine (least_loaded)',
      labelNames: ['url'] as const,
      registers,
    }),
    configGeneration: new Gauge({
      name: 'router_config_generation',
      help: 'Generation of the config in force',
      registers,
    }),
    configLastApply: new Gauge({
      name: 'router_config_last_apply_timestamp_seconds',
      help: 'Unix time the config in force was applied',
      registers,
    }),
    configApplyErrors: new Counter({
      name: 'router_config_apply_errors_total',
      help: 'Rejected config documents by source (file|admin|flags)',
      labelNames: ['source'] as const,
      registers,
    }),
  };
}

/**
 * Drops the per-endpoint series of endpoints no longer in the config, so the series count follows
 * the live pods instead of growing with every pod ever seen. A gauge series still above zero (a
 * request in flight on a removed endpoint) stays until it drains and a later config drops it.
 */
export async function dropRemovedEndpointSeries(
  metrics: RouterMetrics,
  live: { ids: ReadonlySet<string>; urls: ReadonlySet<string> },
): Promise<number> {
  let dropped = 0;
  const sweep = async (
    metric: Counter<string> | Gauge<string>,
    label: 'endpoint' | 'url',
    keep: ReadonlySet<string>,
    onlyIfZero: boolean,
  ): Promise<void> => {
    for (const v of (await metric.get()).values) {
      const key = v.labels[label];
      if (typeof key !== 'string' || keep.has(key) || (onlyIfZero && v.value !== 0)) continue;
      metric.remove(v.labels as Record<string, string>);
      dropped++;
    }
  };
  await sweep(metrics.upstreamErrors, 'endpoint', live.ids, false);
  await sweep(metrics.nixlRemoteHostRewrites, 'endpoint', live.ids, false);
  await sweep(metrics.inFlight, 'endpoint', live.ids, true);
  await sweep(metrics.engineScrapeErrors, 'url', live.urls, false);
  await sweep(metrics.engineLoad, 'url', live.urls, false);
  return dropped;
}
