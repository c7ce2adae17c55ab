import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CliError, FLAGS, helpText, parseCli } from '../src/cli.js';
import { validateRouterConfig } from '../src/config/index.js';
import { configFromSeedFlags } from '../src/config/from-flags.js';
import { ConfigStore } from '../src/config/store.js';
import { ConfigFileWatcher } from '../src/config/watch.js';
import { createLogger } from '../src/logger.js';

describe('config from seed-style flags', () => {
  it('builds one validated cluster from the flags', () => {
    const doc = configFromSeedFlags({
      prefillEndpoints: 'http://10.0.0.1:8100, http://10.0.0.2:8100',
      decodeEndpoints: 'http://10.0.0.3:8200,http://10.0.0.4:8200',
      routingThreshold: 2048,
      loadBalancingStrategy: 'least_loaded',
      disaggConnectorType: 'lmcache',
      model: 'llama,llama-alias',
      decoderRegistry: JSON.stringify({
        'decode-0': { receiver_host: '10.0.0.3', receiver_init_port: [7300], receiver_alloc_port: [7400] },
        'http://10.0.0.4:8200': {
          receiverHost: '10.0.0.4',
          initPorts: [7300, 7301],
          allocPorts: [7400, 7401],
        },
      }),
      prefillFailurePolicy: 'fail',
      firstByteTimeoutMs: 1000,
    });
    const r = validateRouterConfig(doc);
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const c = r.config.clusters[0]!;
    expect(c.models).toEqual(['llama', 'llama-alias']);
    expect(c.routingThreshold).toBe(2048);
    expect(c.loadBalancing).toBe('least_loaded');
    expect(c.prefill.endpoints.map((e) => e.id)).toEqual(['prefill-0', 'prefill-1']);
    expect(c.decode.endpoints[0]!.lmcache).toEqual({
      receiverHost: '10.0.0.3',
      initPorts: [7300],
      allocPorts: [7400],
    });
    expect(c.decode.endpoints[1]!.lmcache!.initPorts).toEqual([7300, 7301]);
    expect(c.policies.prefillFailurePolicy).toBe('fail');
    expect(c.policies.prefillTimeouts).toEqual({ connectMs: 5000, firstByteMs: 1000, idleMs: 60000 });
  });

  it('rejects registry entries for unknown decoders instead of silently using another spec', () => {
    expect(() =>
      configFromSeedFlags({
        decodeEndpoints: 'http://10.0.0.3:8200',
        decoderRegistry: JSON.stringify({
          'http://10.0.0.9:8200': { receiver_host: 'h', receiver_init_port: [1], receiver_alloc_port: [2] },
        }),
      }),
    ).toThrow(/unknown decoders: http:\/\/10.0.0.9:8200/);
    expect(() => configFromSeedFlags({ decodeEndpoints: 'http://h:1', decoderRegistry: '{nope' })).toThrow(
      /not valid JSON/,
    );
  });

  it('defaults: nixl, round robin, threshold 0, model "default"', () => {
    const r = validateRouterConfig(configFromSeedFlags({ decodeEndpoints: 'http://127.0.0.1:8200' }));
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.config.clusters[0]).toMatchObject({
      connector: 'nixl',
      loadBalancing: 'round_robin',
      routingThreshold: 0,
      models: ['default'],
    });
  });
});

describe('CLI flags', () => {
  it('lists every flag in --help', () => {
    const help = helpText();
    for (const f of FLAGS) expect(help).toContain(`--${f.name}`);
    for (const name of [
      '--host',
      '--port',
      '--admin-socket',
      '--admin-port',
      '--admin-token-file',
      '--config',
      '--prefill-endpoints',
      '--decode-endpoints',
      '--routing-threshold',
      '--load-balancing-strategy',
      '--disagg-connector-type',
      '--decoder-registry',
      '--model',
      '--replica-id',
      '--kv-notify-port',
      '--kv-notify-host',
      '--engine-stats-interval-ms',
      '--log-level',
    ]) {
      expect(help).toContain(name);
    }
  });

  it('parses the contract defaults and seed flags', () => {
    const { options, help } = parseCli([
      '--decode-endpoints',
      'http://127.0.0.1:8200',
      '--routing-threshold',
      '10',
    ]);
    expect(help).toBe(false);
    expect(options).toMatchObject({
      host: '0.0.0.0',
      port: 8000,
      adminSocket: '/var/run/disagg/router-admin.sock',
      kvNotifyHost: '0.0.0.0',
      kvNotifyPort: 7500,
      engineStatsIntervalMs: 2000,
      logLevel: 'info',
    });
    expect(options.config?.clusters[0]?.routingThreshold).toBe(10);
    expect(parseCli(['--help']).help).toBe(true);
    expect(parseCli(['--admin-socket', '']).options.adminSocket).toBeNull();
  });

  it.each([
    [['--port', 'abc'], /--port must be a non-negative integer/],
    [['--load-balancing-strategy', 'random'], /must be one of round_robin, least_loaded/],
    [['--admin-port', '9000'], /--admin-port needs --admin-token-file/],
    [['--config', 'x.yaml', '--decode-endpoints', 'http://h:1'], /either --config or the one-cluster flags/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseCli(argv)).toThrow(CliError);
    expect(() => parseCli(argv)).toThrow(message);
  });
});

describe('config file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'router-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const yamlDoc = (threshold: number) => `
generation: 1
clusters:
  - name: default/llama
    models: [llama]
    connector: nixl
    routingThreshold: ${threshold}
    prefill: { endpoints: [{ id: p0, url: "http://127.0.0.1:8100" }] }
    decode: { endpoints: [{ id: d0, url: "http://127.0.0.1:8200" }] }
`;

  it('loads YAML and JSON, rejects a bad file keeping the last good config, and follows changes', async () => {
    const path = join(dir, 'router.yaml');
    await writeFile(path, yamlDoc(100));
    const store = new ConfigStore();
    let rejected = 0;
    const watcher = new ConfigFileWatcher(path, store, createLogger('silent'), () => rejected++);
    try {
      expect(await watcher.reload('startup')).toBe(true);
      expect(store.current().config.clusters[0]!.routingThreshold).toBe(100);
      const goodHash = store.current().hash;

      await writeFile(path, yamlDoc(-5));
      expect(await watcher.reload('test')).toBe(false);
      await writeFile(path, 'clusters: [unclosed');
      expect(await watcher.reload('test')).toBe(false);
      expect(rejected).toBe(2);
      expect(store.current().hash).toBe(goodHash);

      // JSON is YAML too.
      const json = JSON.parse(JSON.stringify({ clusters: [] }));
      await writeFile(path, JSON.stringify(json));
      expect(await watcher.reload('test')).toBe(true);
      expect(store.current().config.clusters).toEqual([]);

      // Watched: a rename-replace (how editors and ConfigMaps update files) is picked up.
      watcher.start();
      await writeFile(join(dir, 'next.yaml'), yamlDoc(300));
      await rename(join(dir, 'next.yaml'), path);
      const deadline = Date.now() + 10_000;
      while (store.current().config.clusters[0]?.routingThreshold !== 300 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(store.current().config.clusters[0]?.routingThreshold).toBe(300);
      expect(store.current().source).toBe('file');
    } finally {
      watcher.stop();
    }
  });

  it('keeps the snapshot a request took when a swap happens', () => {
    const store = new ConfigStore();
    store.apply({ clusters: [] }, 'admin');
    const taken = store.current();
    const r = store.apply(
      {
        generation: 2,
        clusters: [
          {
            name: 'c',
            models: ['m'],
            connector: 'nixl',
            routingThreshold: 0,
            prefill: { endpoints: [] },
            decode: { endpoints: [] },
          },
        ],
      },
      'admin',
    );
    expect(r.ok).toBe(true);
    expect(taken.config.clusters).toEqual([]);
    expect(Object.isFrozen(taken)).toBe(true);
    expect(store.current().generation).toBe(2);
    expect(store.current().clusterByModel.get('m')?.name).toBe('c');
  });
});
