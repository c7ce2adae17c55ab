import { describe, expect, it } from '@jest/globals';
import { Balancer } from '../src/balance/balancer.js';
import { parseEngineLoad } from '../src/balance/engine-stats.js';
import { InFlightTracker } from '../src/balance/in-flight.js';
import { pickLeastLoaded } from '../src/balance/least-loaded.js';
import { pickRoundRobin } from '../src/balance/round-robin.js';

const eps = (role: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `${role}-${i}`,
    url: `http://127.0.0.1:${role === 'p' ? 8100 + i : 8200 + i}`,
  }));

function counts(picks: Array<{ id: string } | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of picks) out[p!.id] = (out[p!.id] ?? 0) + 1;
  return out;
}

describe('round robin', () => {
  it('spreads a 2P:4D topology evenly, each pool on its own rotation', () => {
    const b = new Balancer({ loadOf: () => ({ inFlight: 0, scraped: undefined }) });
    const prefill = eps('p', 2);
    const decode = eps('d', 4);
    const p: Array<{ id: string } | undefined> = [];
    const d: Array<{ id: string } | undefined> = [];
    for (let i = 0; i < 120; i++) {
      p.push(b.pick({ poolKey: 'c:prefill', endpoints: prefill, strategy: 'round_robin' }));
      d.push(b.pick({ poolKey: 'c:decode', endpoints: decode, strategy: 'round_robin' }));
    }
    expect(counts(p)).toEqual({ 'p-0': 60, 'p-1': 60 });
    expect(counts(d)).toEqual({ 'd-0': 30, 'd-1': 30, 'd-2': 30, 'd-3': 30 });
    // Consecutive picks never repeat an endpoint while others are free.
    expect(d.slice(0, 4).map((e) => e!.id)).toEqual(['d-0', 'd-1', 'd-2', 'd-3']);
  });

  it('skips excluded endpoints (retries go elsewhere) and handles empty pools', () => {
    const b = new Balancer({ loadOf: () => ({ inFlight: 0, scraped: undefined }) });
    const decode = eps('d', 2);
    for (let i = 0; i < 5; i++) {
      const pick = b.pick({
        poolKey: 'x',
        endpoints: decode,
        strategy: 'round_robin',
        exclude: new Set([decode[0]!.url]),
      });
      expect(pick!.id).toBe('d-1');
    }
    expect(b.pick({ poolKey: 'y', endpoints: [], strategy: 'round_robin' })).toBeUndefined();
    expect(pickRoundRobin([], 3)).toBeUndefined();
    expect(pickRoundRobin(['a', 'b', 'c'], 7)).toBe('b');
  });
});

describe('least loaded', () => {
  it('picks the lighter endpoint: in-flight plus scraped running+waiting', () => {
    const decode = eps('d', 3);
    const scraped: Record<string, number> = { [decode[0]!.url]: 5, [decode[1]!.url]: 1, [decode[2]!.url]: 3 };
    const inFlight = new InFlightTracker();
    const b = new Balancer({ loadOf: (url) => ({ inFlight: inFlight.get(url), scraped: scraped[url] }) });
    for (let i = 0; i < 10; i++) {
      expect(b.pick({ poolKey: 'd', endpoints: decode, strategy: 'least_loaded' })!.id).toBe('d-1');
    }
    // The router's own in-flight requests count too: d-1 now carries 1 + 3 = 4 > 3.
    const releases = [
      inFlight.begin(decode[1]!.url),
      inFlight.begin(decode[1]!.url),
      inFlight.begin(decode[1]!.url),
    ];
    expect(b.pick({ poolKey: 'd', endpoints: decode, strategy: 'least_loaded' })!.id).toBe('d-2');
    releases.forEach((r) => r());
    expect(inFlight.get(decode[1]!.url)).toBe(0);
  });

  it('falls back to round robin when no endpoint has stats', () => {
    const decode = eps('d', 3);
    const b = new Balancer({ loadOf: () => ({ inFlight: 0, scraped: undefined }) });
    const picks = Array.from(
      { length: 6 },
      () => b.pick({ poolKey: 'd', endpoints: decode, strategy: 'least_loaded' })!.id,
    );
    expect(picks).toEqual(['d-0', 'd-1', 'd-2', 'd-0', 'd-1', 'd-2']);
    expect(pickLeastLoaded(decode, () => ({ inFlight: 4, scraped: undefined }), 0)).toBeUndefined();
  });

  it('breaks ties round robin instead of piling onto the first endpoint', () => {
    const decode = eps('d', 4);
    const load = (url: string) => ({ inFlight: 0, scraped: url === decode[3]!.url ? 9 : 2 });
    const picks = Array.from({ length: 6 }, (_, i) => pickLeastLoaded(decode, (e) => load(e.url), i)!.id);
    expect(picks).toEqual(['d-0', 'd-1', 'd-2', 'd-0', 'd-0', 'd-1']);
  });
});

describe('parseEngineLoad', () => {
  it('sums vllm:num_requests_running and vllm:num_requests_waiting over label sets', () => {
    const text = [
      '# HELP vllm:num_requests_running Number of requests in model execution batches.',
      '# TYPE vllm:num_requests_running gauge',
      'vllm:num_requests_running{engine="0",model_name="m"} 3.0',
      'vllm:num_requests_running{engine="1",model_name="m"} 1',
      'vllm:num_requests_waiting{engine="0",model_name="m"} 2.0',
      'vllm:num_requests_running_total 99',
      'vllm:kv_cache_usage_perc{engine="0"} 0.5',
    ].join('\n');
    expect(parseEngineLoad(text)).toBe(6);
    expect(parseEngineLoad('vllm:num_requests_waiting 4\n')).toBe(4);
    expect(parseEngineLoad('other_metric 1\n')).toBeUndefined();
  });
});
