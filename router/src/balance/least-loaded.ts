// Least loaded: the router's own in-flight count plus the engine's scraped queue
// (vllm:num_requests_running + vllm:num_requests_waiting). Ties go round robin.
import { modulo } from './round-robin.js';

export interface EndpointLoad {
  /** Requests this router has open on the endpoint right now. */
  inFlight: number;
  /** running + waiting from the engine's last /metrics scrape; undefined when unknown or stale. */
  scraped: number | undefined;
}

/**
 * Returns undefined when no candidate has scraped stats: the caller then falls back to round
 * robin (in-flight alone is too blind to burst load on the engine from other routers).
 * A candidate without stats counts only its in-flight requests.
 */
export function pickLeastLoaded<T>(
  candidates: readonly T[],
  loadOf: (candidate: T) => EndpointLoad,
  counter: number,
): T | undefined {
  if (candidates.length === 0) return undefined;
  const loads = candidates.map(loadOf);
  if (loads.every((l) => l.scraped === undefined)) return undefined;
  const totals = loads.map((l) => l.inFlight + (l.scraped ?? 0));
  const min = Math.min(...totals);
  // Start the scan at the round-robin position so equal loads rotate instead of piling on the first.
  const start = modulo(counter, candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    const idx = (start + i) % candidates.length;
    if (totals[idx] === min) return candidates[idx];
  }
  return undefined;
}
