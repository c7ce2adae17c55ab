// Prometheus metrics under vLLM's names (the ones routers scrape) plus sim_* counters for the protocols.
import client from 'prom-client';

export interface LiveStats {
  running(): number;
  waiting(): number;
  kvCacheUsage(): number;
}

export type SimMetrics = ReturnType<typeof createMetrics>;

const PROMPT_SOURCES = ['local_compute', 'local_cache_hit', 'external_kv_transfer'] as const;
export type PromptSource = (typeof PROMPT_SOURCES)[number];
/** vLLM 0.32 exports every finished_reason series from the start. */
const FINISHED_REASONS = ['stop', 'length', 'abort', 'error', 'repetition'] as const;

export function createMetrics(model: string, live: LiveStats) {
  const registry = new client.Registry();
  // vLLM v1 labels its engine metrics with model_name and engine index.
  const labels = { model_name: model, engine: '0' };
  const labelNames = ['model_name', 'engine'] as const;
  const gauge = (name: string, help: string, read: () => number): client.Gauge<string> =>
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.set(labels, read());
      },
    });
  gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', live.running);
  gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', live.waiting);
  gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', live.kvCacheUsage);

  const promptTokens = new client.Counter({
    name: 'vllm:prompt_tokens_total',
    help: 'Number of prefill tokens processed.',
    labelNames,
    registers: [registry],
  });
  // vLLM 0.32: where each prompt token's KV came from (a decode leg's are external_kv_transfer)
  const promptTokensBySource = new client.Counter({
    name: 'vllm:prompt_tokens_by_source_total',
    help: 'Number of prompt tokens by source.',
    labelNames: [...labelNames, 'source'],
    registers: [registry],
  });
  for (const source of PROMPT_SOURCES) promptTokensBySource.inc({ ...labels, source }, 0);
  const generationTokens = new client.Counter({
    name: 'vllm:generation_tokens_total',
    help: 'Number of generation tokens processed.',
    labelNames,
    registers: [registry],
  });
  const requestSuccess = new client.Counter({
    name: 'vllm:request_success_total',
    help: 'Count of successfully processed requests.',
    labelNames: [...labelNames, 'finished_reason'],
    registers: [registry],
  });
  for (const finished_reason of FINISHED_REASONS) requestSuccess.inc({ ...labels, finished_reason }, 0);
  const counter = (name: string, help: string, extra: string[] = []): client.Counter<string> =>
    new client.Counter({ name, help, labelNames: extra, registers: [registry] });

  return {
    registry,
    addPromptTokens: (n: number, source: PromptSource) => {
      promptTokens.inc(labels, n);
      promptTokensBySource.inc({ ...labels, source }, n);
    },
    addGenerationTokens: (n: number) => generationTokens.inc(labels, n),
    requestFinished: (reason: string) => requestSuccess.inc({ ...labels, finished_reason: reason }),
    nixlLeasesCreated: counter(
      'sim_nixl_leases_created_total',
      'NIXL prefill leases (held KV blocks) created.',
    ),
    nixlLeasesExpired: counter('sim_nixl_leases_expired_total', 'NIXL leases that expired before a pull.'),
    nixlPulls: counter('sim_nixl_pulls_total', 'NIXL pulls by this decoder, by result.', ['result']),
    nixlServed: counter('sim_nixl_reads_served_total', 'NIXL reads served by this prefiller, by result.', [
      'result',
    ]),
    nixlInvalidParams: counter(
      'sim_nixl_invalid_params_total',
      'Decode legs whose kv_transfer_params were incomplete (vLLM ignores them and prefills locally).',
    ),
    lmcachePushes: counter('sim_lmcache_pushes_total', 'LMCache KV pushes by this prefiller, by result.', [
      'result',
    ]),
    lmcacheNotifications: counter('sim_lmcache_notifications_sent_total', 'ProxyNotif messages sent.'),
    lmcacheReceived: counter('sim_lmcache_kv_received_total', 'LMCache KV pushes received (per TP rank).'),
    lmcacheHits: counter('sim_lmcache_decode_hits_total', 'Decode legs served from pushed KV.'),
    lmcacheRecomputes: counter(
      'sim_lmcache_local_recomputes_total',
      'Decode legs whose pushed KV was absent, so the prompt was prefilled locally.',
    ),
    faultsInjected: counter('sim_faults_injected_total', 'Injected faults by kind.', ['kind']),
  };
}
