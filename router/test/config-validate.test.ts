import { describe, expect, it } from '@jest/globals';
import { configHash, validateRouterConfig } from '../src/config/index.js';

const good = {
  generation: 3,
  clusters: [
    {
      name: 'default/llama',
      models: ['llama'],
      connector: 'lmcache',
      routingThreshold: 512,
      prefill: { endpoints: [{ id: 'p0', url: 'http://127.0.0.1:8100' }] },
      decode: {
        endpoints: [
          {
            id: 'd0',
            url: 'http://127.0.0.1:8200',
            lmcache: { receiverHost: '127.0.0.1', initPorts: [7300], allocPorts: [7400] },
          },
        ],
      },
    },
  ],
};

describe('validateRouterConfig', () => {
  it('accepts a complete document and fills defaults next to their fields', () => {
    const r = validateRouterConfig(good);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.clusters[0]!.loadBalancing).toBe('round_robin');
    expect(r.config.clusters[0]!.policies.prefillFailurePolicy).toBe('fallback');
    expect(r.config.peers).toEqual([]);
  });

  it.each([
    [
      'negative threshold',
      { routingThreshold: -1 },
      'clusters[0].routingThreshold: routingThreshold is a token count >= 0',
    ],
    ['unknown connector', { connector: 'mooncake' }, 'clusters[0].connector'],
    [
      'lmcache decoder without registry',
      { decode: { endpoints: [{ id: 'd0', url: 'http://127.0.0.1:8200' }] } },
      'needs an lmcache registry entry',
    ],
    ['unknown field', { surprise: true }, 'surprise'],
    [
      'bad url',
      { prefill: { endpoints: [{ id: 'p0', url: 'not a url' }] } },
      'clusters[0].prefill.endpoints[0].url',
    ],
  ])('rejects %s with a reason naming the field', (_name, patch, expected) => {
    const doc = { ...good, clusters: [{ ...good.clusters[0], ...patch }] };
    const r = validateRouterConfig(doc);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toContain(expected);
  });

  it('rejects mismatched init/alloc port lists and one model in two clusters', () => {
    const bad = {
      clusters: [
        {
          ...good.clusters[0],
          decode: {
            endpoints: [
              {
                id: 'd0',
                url: 'http://h:1',
                lmcache: { receiverHost: 'h', initPorts: [1, 2], allocPorts: [3] },
              },
            ],
          },
        },
        { ...good.clusters[0], name: 'other' },
      ],
    };
    const r = validateRouterConfig(bad);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toMatch(/same length/);
    expect(r.errors.join('\n')).toMatch(/model llama is served by both/);
  });

  it('hashes content, not generation or key order', () => {
    const a = validateRouterConfig(good);
    const b = validateRouterConfig({ ...good, generation: 99 });
    const c = validateRouterConfig({ ...good, clusters: [{ ...good.clusters[0], routingThreshold: 513 }] });
    if (!a.ok || !b.ok || !c.ok) throw new Error('expected valid');
    expect(a.hash).toBe(b.hash);
    expect(a.hash).not.toBe(c.hash);
    expect(configHash(a.config)).toBe(a.hash);
  });
});
