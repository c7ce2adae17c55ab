// Sends one request through the router and reconstructs the path it took: the router's own word
// (router_requests_total's `path` label) and what each engine saw (its /sim/requests log, matched
// by the X-Request-Id the router forwards on every leg).
import { randomUUID } from 'node:crypto';
import { getText, increasedSeries, timedStream } from '../bench/router-http.js';
import type { SimRequest } from '../sim/requests-log.js';

export interface EngineRef {
  /** Pod name (or any label for the engine). */
  name: string;
  url: string;
}

export interface LegRecord {
  engine: string;
  leg: SimRequest['leg'];
  kvSource: SimRequest['kvSource'];
  status: number;
  promptTokens: number;
}

export interface TracedRequest {
  requestId: string;
  status: number;
  /** dpd | direct | fallback | none, from the router's metrics. */
  routerPath: string;
  legs: LegRecord[];
  ttftMs: number | undefined;
  totalMs: number;
  text: string;
  tokens: number;
}

export interface TraceOptions {
  routerUrl: string;
  /** The router's cluster name (`<namespace>/<DisaggCluster>` when the operator configures it). */
  cluster: string;
  model: string;
  prompt: string;
  maxTokens: number;
  engines: () => EngineRef[];
  label?: string;
}

/** The router's estimate for a plain string prompt (router/src/classify/estimate-tokens.ts). */
export const estimateStringTokens = (prompt: string): number => Math.floor(prompt.length / 4);

export async function traceRequest(o: TraceOptions): Promise<TracedRequest> {
  const requestId = `${o.label ?? 'demo'}-${randomUUID().slice(0, 8)}`;
  const before = await getText(`${o.routerUrl}/metrics`);
  const reply = await timedStream(
    `${o.routerUrl}/v1/completions`,
    { model: o.model, prompt: o.prompt, max_tokens: o.maxTokens, stream: true },
    { 'x-request-id': requestId },
  );
  const after = await getText(`${o.routerUrl}/metrics`);
  const series = increasedSeries(before, after, 'router_requests_total').filter(
    (s) => s['cluster'] === o.cluster,
  );
  const legs: LegRecord[] = [];
  await Promise.all(
    o.engines().map(async (e) => {
      const log = await fetchSimRequests(e.url).catch(() => []);
      for (const r of log) {
        if (r.id !== requestId) continue;
        legs.push({
          engine: e.name,
          leg: r.leg,
          kvSource: r.kvSource,
          status: r.status,
          promptTokens: r.promptTokens,
        });
      }
    }),
  );
  legs.sort((a, b) => legOrder(a) - legOrder(b));
  return {
    requestId,
    status: reply.status,
    routerPath: series[0]?.['path'] ?? 'none',
    legs,
    ttftMs: reply.ttftMs,
    totalMs: reply.totalMs,
    text: reply.status === 200 ? reply.text : reply.body,
    tokens: reply.tokenEvents,
  };
}

const legOrder = (l: LegRecord): number => (l.leg === 'prefill' ? 0 : 1);

async function fetchSimRequests(url: string): Promise<SimRequest[]> {
  const body = JSON.parse(await getText(`${url}/sim/requests`)) as SimRequest[] | { requests: SimRequest[] };
  return Array.isArray(body) ? body : body.requests;
}

/** One line per hop, e.g. "prefill on pod-a -> decode on pod-b (KV pulled over NIXL)". */
export function describeLegs(legs: LegRecord[]): string {
  if (legs.length === 0) return 'no engine saw it';
  return legs
    .map((l) => {
      if (l.leg === 'prefill') return `prefill on ${l.engine}`;
      if (l.leg === 'direct') return `${l.engine} (prefill + decode on one engine)`;
      const kv =
        l.kvSource === 'local' ? 'KV recomputed locally' : `KV pulled over ${l.kvSource.toUpperCase()}`;
      return `decode on ${l.engine} (${kv})`;
    })
    .join(' -> ');
}

/** True when the engines' logs agree with the path the router reports. */
export function legsMatchPath(path: string, legs: LegRecord[], connector: string): boolean {
  const ok = legs.every((l) => l.status === 200);
  if (path === 'direct') return ok && legs.length === 1 && legs[0]!.leg === 'direct';
  if (path === 'dpd') {
    return (
      ok &&
      legs.length === 2 &&
      legs[0]!.leg === 'prefill' &&
      legs[1]!.leg === 'decode' &&
      legs[1]!.kvSource === connector
    );
  }
  return false;
}
