// Chooses one endpoint of a pool for one leg. Counters live here (per cluster and role) so they
// survive config swaps; loads come from the in-flight tracker and the engine-stats scraper.
import type { LoadBalancing } from '../config/index.js';
import { pickLeastLoaded, type EndpointLoad } from './least-loaded.js';
import { pickRoundRobin } from './round-robin.js';

export interface LoadSource {
  loadOf(url: string): EndpointLoad;
}

export interface PickRequest<T extends { url: string }> {
  /** Identifies the pool, e.g. `default/llama:decode`; each pool has its own rotation. */
  poolKey: string;
  endpoints: readonly T[];
  strategy: LoadBalancing;
  /** Endpoints already tried by this request (a retry goes elsewhere). */
  exclude?: ReadonlySet<string>;
}

export class Balancer {
  private readonly counters = new Map<string, number>();

  constructor(private readonly loads: LoadSource) {}

  pick<T extends { url: string }>(req: PickRequest<T>): T | undefined {
    const candidates = req.exclude?.size
      ? req.endpoints.filter((e) => !req.exclude!.has(e.url))
      : req.endpoints;
    if (candidates.length === 0) return undefined;
    const counter = this.counters.get(req.poolKey) ?? 0;
    this.counters.set(req.poolKey, counter + 1);
    if (req.strategy === 'least_loaded') {
      const picked = pickLeastLoaded(candidates, (e) => this.loads.loadOf(e.url), counter);
      if (picked) return picked;
    }
    return pickRoundRobin(candidates, counter);
  }
}
