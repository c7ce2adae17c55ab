import { describe, expect, it } from '@jest/globals';
import { pickCluster } from '../src/classify/pick-cluster.js';
import { ConfigStore } from '../src/config/store.js';

const cluster = (name: string, models: string[]) => ({
  name,
  models,
  connector: 'nixl',
  routingThreshold: 0,
  prefill: { endpoints: [] },
  decode: { endpoints: [] },
});

describe('pickCluster', () => {
  it('sends any model (or none) to the only cluster', () => {
    const store = new ConfigStore();
    store.apply({ clusters: [cluster('a', ['llama'])] }, 'admin');
    expect(pickCluster(store.current(), 'whatever').name).toBe('a');
    expect(pickCluster(store.current(), undefined).name).toBe('a');
  });

  it('picks by model with several clusters: missing model 400, unknown model 404', () => {
    const store = new ConfigStore();
    store.apply({ clusters: [cluster('a', ['llama']), cluster('b', ['qwen', 'qwen-alias'])] }, 'admin');
    expect(pickCluster(store.current(), 'qwen-alias').name).toBe('b');
    expect(() => pickCluster(store.current(), undefined)).toThrow(
      expect.objectContaining({ code: 'MODEL_REQUIRED', status: 400 }),
    );
    expect(() => pickCluster(store.current(), 'gpt')).toThrow(
      expect.objectContaining({ code: 'MODEL_NOT_FOUND', status: 404 }),
    );
  });

  it('answers 503 before any config arrived', () => {
    expect(() => pickCluster(new ConfigStore().current(), 'm')).toThrow(
      expect.objectContaining({ code: 'NOT_CONFIGURED', status: 503 }),
    );
  });
});
