import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateRouterConfig } from '../../router/src/config/index.js';
import { buildRouterConfig, RouterConfigPusher } from '../src/controller/router-pusher.js';
import type { ClusterEntry } from '../src/plan/router-entry.js';

/** A stand-in for the router's admin API on a real Unix socket. */
class FakeRouterAdmin {
  server: Server | undefined;
  puts: unknown[] = [];
  gets = 0;
  current: { hash: string; config: unknown } | undefined;
  reject: string | undefined;
  constructor(readonly socketPath: string) {}
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.method === 'GET') {
          this.gets++;
          if (!this.current) return res.writeHead(404).end('{}');
          return res
            .writeHead(200)
            .end(JSON.stringify({ generation: 1, hash: this.current.hash, config: this.current.config }));
        }
        const doc = JSON.parse(body) as unknown;
        this.puts.push(doc);
        if (this.reject) {
          return res
            .writeHead(400)
            .end(JSON.stringify({ error: { message: 'invalid config', details: [this.reject] } }));
        }
        const v = validateRouterConfig(doc);
        if (!v.ok)
          return res.writeHead(400).end(JSON.stringify({ error: { message: 'invalid', details: v.errors } }));
        this.current = { hash: v.hash, config: v.config };
        res.writeHead(200).end(JSON.stringify({ generation: v.config.generation, hash: v.hash }));
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.socketPath, r));
  }
  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }
}

const entry = (name: string, model: string, decodeIds: string[] = ['d-0']): ClusterEntry => ({
  name,
  models: [model],
  connector: 'nixl',
  routingThreshold: 0,
  loadBalancing: 'round_robin',
  prefill: { endpoints: [] },
  decode: {
    endpoints: decodeIds.map((id, i) => ({
      id: `${name}/${id}`,
      url: `http://10.0.0.${i + 1}:8000`,
      nixl: { sideChannelHost: `10.0.0.${i + 1}`, sideChannelPort: 5600 },
    })),
  },
  policies: { prefillFailurePolicy: 'fallback' },
});

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

let dir: string;
let router: FakeRouterAdmin | undefined;
let pusher: RouterConfigPusher | undefined;
afterEach(async () => {
  await pusher?.stop();
  await router?.stop();
  rmSync(dir, { recursive: true, force: true });
  pusher = undefined;
  router = undefined;
});

function setup(opts: { startRouter?: boolean; validate?: typeof validateRouterConfig } = {}) {
  dir = mkdtempSync(join(tmpdir(), 'pusher-'));
  const socketPath = join(dir, 'admin.sock');
  router = new FakeRouterAdmin(socketPath);
  const changed: string[] = [];
  pusher = new RouterConfigPusher({
    socketPath,
    debounceMs: 1,
    retryBaseMs: 20,
    retryMaxMs: 50,
    onStateChanged: (keys) => changed.push(...keys),
    ...(opts.validate ? { validate: opts.validate } : {}),
  });
  return {
    router,
    pusher,
    changed,
    start: opts.startRouter === false ? async () => undefined : () => router!.start(),
  };
}

describe('router config pusher', () => {
  it('pushes entries as one RouterConfig and reports the acknowledged entry per cluster', async () => {
    const { router, pusher, changed, start } = setup();
    await start();
    pusher.setEntry('ns/a', entry('ns/a', 'model-a'), '2026-01-01T00:00:00Z');
    pusher.setEntry('ns/b', entry('ns/b', 'model-b'), '2026-01-01T00:00:01Z');
    await until(() => changed.includes('ns/a') && changed.includes('ns/b'));
    await pusher.idle();
    const last = router.puts.at(-1) as { clusters: Array<{ name: string }>; peers: unknown[] };
    expect(last.clusters.map((c) => c.name)).toEqual(['ns/a', 'ns/b']);
    const state = pusher.stateOf('ns/a');
    expect(state.ackedHash).toBe(router.current!.hash);
    expect(state.ackedEndpointIds).toEqual(['ns/a/d-0']);
    expect(state.failure).toBeUndefined();
  });

  it('does not push again when nothing changed; pushes when an entry changes', async () => {
    const { router, pusher, start } = setup();
    await start();
    pusher.setEntry('ns/a', entry('ns/a', 'm'), 't0');
    await until(() => router.puts.length === 1);
    await pusher.idle();
    pusher.setEntry('ns/a', entry('ns/a', 'm'), 't0');
    await new Promise((r) => setTimeout(r, 30));
    expect(router.puts).toHaveLength(1);
    pusher.setEntry('ns/a', entry('ns/a', 'm', ['d-0', 'd-1']), 't0');
    await until(() => router.puts.length === 2);
  });

  it('an unreachable router: PushFailed, retried with backoff until it answers', async () => {
    const { router, pusher, changed, start } = setup({ startRouter: false });
    await start();
    pusher.setEntry('ns/a', entry('ns/a', 'm'), 't0');
    await until(() => pusher.stateOf('ns/a').failure?.reason === 'PushFailed');
    expect(pusher.stateOf('ns/a').failure?.message).toContain('Cannot reach the router admin socket');
    await router.start();
    await until(() => pusher.stateOf('ns/a').ackedEntryKey !== undefined);
    expect(pusher.stateOf('ns/a').failure).toBeUndefined();
    expect(changed.filter((k) => k === 'ns/a').length).toBeGreaterThanOrEqual(2);
  });

  it('a rejected config: ConfigRejected with the router details, previous ack kept', async () => {
    const { router, pusher, start } = setup();
    await start();
    pusher.setEntry('ns/a', entry('ns/a', 'm'), 't0');
    await until(() => pusher.stateOf('ns/a').ackedEntryKey !== undefined);
    const ackedKey = pusher.stateOf('ns/a').ackedEntryKey;
    router.reject = 'clusters[0]: something the router dislikes';
    pusher.setEntry('ns/a', entry('ns/a', 'm', ['d-0', 'd-1']), 't0');
    await until(() => pusher.stateOf('ns/a').failure?.reason === 'ConfigRejected');
    expect(pusher.stateOf('ns/a').failure?.message).toContain('something the router dislikes');
    expect(pusher.stateOf('ns/a').ackedEntryKey).toBe(ackedKey);
  });

  it('resync heals a restarted router that lost its config, and leaves an up-to-date one alone', async () => {
    const { router, pusher, start } = setup();
    await start();
    pusher.setEntry('ns/a', entry('ns/a', 'm'), 't0');
    await until(() => router.puts.length === 1);
    await pusher.idle();
    pusher.resync();
    await until(() => router.gets === 1);
    await pusher.idle();
    expect(router.puts).toHaveLength(1);
    router.current = undefined; // restarted, empty
    pusher.resync();
    await until(() => router.puts.length === 2);
  });

  it('removing an entry pushes a config without it', async () => {
    const { router, pusher, start } = setup();
    await start();
    pusher.setEntry('ns/a', entry('ns/a', 'm'), 't0');
    await until(() => router.puts.length === 1);
    await pusher.idle();
    pusher.removeEntry('ns/a');
    await until(() => router.puts.length === 2);
    expect((router.puts[1] as { clusters: unknown[] }).clusters).toEqual([]);
  });

  it('validates an entry alone only when it changed, and the whole document once per push', async () => {
    const alone: string[] = [];
    let whole = 0;
    const validate: typeof validateRouterConfig = (doc) => {
      const d = doc as { clusters: Array<{ name: string }>; generation?: number };
      if (d.generation === undefined) alone.push(...d.clusters.map((c) => c.name));
      else whole++;
      return validateRouterConfig(doc);
    };
    const { router, pusher, start } = setup({ validate });
    await start();
    pusher.setEntry('ns/a', entry('ns/a', 'model-a'), 't0');
    pusher.setEntry('ns/b', entry('ns/b', 'model-b'), 't0');
    await until(() => router.puts.length === 1);
    await pusher.idle();
    expect(alone.sort()).toEqual(['ns/a', 'ns/b']);
    expect(whole).toBe(1);
    pusher.setEntry('ns/b', entry('ns/b', 'model-b', ['d-0', 'd-1']), 't0');
    await until(() => router.puts.length === 2);
    await pusher.idle();
    expect(alone.sort()).toEqual(['ns/a', 'ns/b', 'ns/b']);
    expect(whole).toBe(2);
    // Same content under a new creationTimestamp: the verdict carries over.
    pusher.setEntry('ns/a', entry('ns/a', 'model-a'), 't1');
    await new Promise((r) => setTimeout(r, 30));
    await pusher.idle();
    expect(alone).toHaveLength(3);
    expect(router.puts).toHaveLength(2);
  });

  it('a refused entry stays refused without being validated again', async () => {
    let aloneCalls = 0;
    const validate: typeof validateRouterConfig = (doc) => {
      if ((doc as { generation?: number }).generation === undefined) aloneCalls++;
      return validateRouterConfig(doc);
    };
    const { router, pusher, start } = setup({ validate });
    await start();
    const bad = entry('ns/bad', 'x');
    bad.connector = 'lmcache'; // decoders without an lmcache registry
    pusher.setEntry('ns/bad', bad, 't0');
    pusher.setEntry('ns/ok', entry('ns/ok', 'y'), 't0');
    await until(() => pusher.stateOf('ns/bad').failure?.reason === 'ConfigRejected');
    await pusher.idle();
    expect(aloneCalls).toBe(2);
    pusher.setEntry('ns/ok', entry('ns/ok', 'y', ['d-0', 'd-1']), 't0');
    await until(() => router.puts.length === 2);
    await pusher.idle();
    expect(aloneCalls).toBe(3);
    expect(pusher.stateOf('ns/bad').failure?.reason).toBe('ConfigRejected');
    expect((router.puts[1] as { clusters: Array<{ name: string }> }).clusters.map((c) => c.name)).toEqual([
      'ns/ok',
    ]);
  });

  it('sends the peers list', async () => {
    const { router, pusher, start } = setup();
    await start();
    pusher.setPeers([{ id: 'op-a', notifyAddress: 'tcp://127.0.0.1:7500' }]);
    await until(() => router.puts.length === 1);
    expect((router.puts[0] as { peers: unknown[] }).peers).toEqual([
      { id: 'op-a', notifyAddress: 'tcp://127.0.0.1:7500' },
    ]);
  });
});

describe('building the config', () => {
  it('the older cluster keeps a contested model; the newer one is left out with ModelConflict', () => {
    const entries = new Map([
      ['ns/new', { entry: entry('ns/new', 'llama'), createdAt: '2026-01-02T00:00:00Z' }],
      ['ns/old', { entry: entry('ns/old', 'llama'), createdAt: '2026-01-01T00:00:00Z' }],
    ]);
    const built = buildRouterConfig(entries, [], 1);
    expect(built.included).toEqual(['ns/old']);
    expect(built.excluded.get('ns/new')).toEqual({
      reason: 'ModelConflict',
      message: 'Model llama is already served by ns/old (created earlier); change spec.model.servedName',
    });
    expect(validateRouterConfig(built.config).ok).toBe(true);
  });

  it('an entry the contract refuses is left out alone, the rest still served', () => {
    const bad = entry('ns/bad', 'x');
    bad.connector = 'lmcache'; // decoders without an lmcache registry
    const built = buildRouterConfig(
      new Map([
        ['ns/bad', { entry: bad, createdAt: 't' }],
        ['ns/ok', { entry: entry('ns/ok', 'y'), createdAt: 't' }],
      ]),
      [],
      1,
    );
    expect(built.included).toEqual(['ns/ok']);
    expect(built.excluded.get('ns/bad')?.reason).toBe('ConfigRejected');
  });
});
