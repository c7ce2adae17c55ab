// In-memory log of the requests an engine saw, served at GET /sim/requests for tests to assert on.

export type LegName = 'prefill' | 'decode' | 'direct';
export type KvSource = 'nixl' | 'lmcache' | 'local';

export interface SimRequest {
  /** X-Request-Id of the incoming request (or a generated one). */
  id: string;
  path: string;
  leg: LegName;
  kvSource: KvSource;
  model: string;
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
  /** HTTP status; 0 while in flight, 499 when the client went away. */
  status: number;
  ts: number;
  error?: string;
  /** The kv_transfer_params this engine returned (prefill legs). */
  kvTransferParams?: Record<string, unknown> | null;
  /** For LMCache prefill legs: the disagg_spec req_id. */
  lmcacheReqId?: string;
}

const MAX_ENTRIES = 10000;

export class RequestLog {
  private entries: SimRequest[] = [];

  add(entry: SimRequest): SimRequest {
    this.entries.push(entry);
    // Trim in batches so a long benchmark run stays O(1) per request.
    if (this.entries.length > 2 * MAX_ENTRIES) this.entries = this.entries.slice(-MAX_ENTRIES);
    return entry;
  }

  list(): SimRequest[] {
    return this.entries;
  }

  clear(): void {
    this.entries = [];
  }
}
