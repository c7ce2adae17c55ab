import { afterEach, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { podClusterIndex } from '../src/controller/indexes.js';
import { ResilientInformer, type InformerLifecycleEvent } from '../src/controller/informer.js';
import { RestKubeApi } from '../src/controller/kube-client.js';
import type { Pod } from '../src/api/types.js';
import { aPod } from './fixtures.js';

/** A fake API server whose list and watch answers a test scripts, one per call. */
class FakeApiServer {
  server: Server | undefined;
  lists: Array<(res: ServerResponse) => void> = [];
  watches: Array<(res: ServerResponse) => void> = [];
  openWatches: ServerResponse[] = [];
  port = 0;
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const isWatch = new URL(req.url!, 'http://x').searchParams.get('watch') === 'true';
      const script = (isWatch ? this.watches : this.lists).shift();
      if (isWatch) this.openWatches.push(res);
      if (script) script(res);
      // An unscripted watch stays open and quiet (headers sent, as the API server does).
      else if (isWatch) res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
      else res.writeHead(200).end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' } }));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }
  async stop(): Promise<void> {
    this.openWatches.forEach((r) => r.destroy());
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

const fail = (code: number) => (res: ServerResponse) =>
  res.writeHead(code).end(JSON.stringify({ message: `status ${code}` }));
const listOf = (pods: Pod[], rv: string) => (res: ServerResponse) =>
  res.writeHead(200).end(JSON.stringify({ items: pods, metadata: { resourceVersion: rv } }));

function kubeConfigFor(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

let api: FakeApiServer;
let informer: ResilientInformer<Pod> | undefined;
afterEach(async () => {
  await informer?.stop();
  await api?.stop();
  informer = undefined;
});

async function setup() {
  api = new FakeApiServer();
  await api.start();
  const kc = kubeConfigFor(api.port);
  const events: InformerLifecycleEvent[] = [];
  informer = new ResilientInformer<Pod>(kc, new RestKubeApi(kc), {
    resource: 'pods',
    path: '/api/v1/pods',
    labelSelector: 'disagg.dev/cluster',
    restartBaseMs: 20,
    restartMaxMs: 100,
    onLifecycle: (e) => events.push(e),
  });
  return { events, informer };
}

describe('resilient informer', () => {
  it('restarts after a failed list (client-node alone would stop) and fills the cache', async () => {
    const { events, informer } = await setup();
    api.lists.push(fail(500), fail(503), listOf([aPod().named('p1').build()], '5'));
    await informer.start();
    await until(() => informer.hasSynced());
    expect(informer.list().map((p) => p.metadata.name)).toEqual(['p1']);
    expect(events.filter((e) => e === 'error')).toHaveLength(2);
    expect(events.filter((e) => e === 'restart')).toHaveLength(2);
  });

  it('restarts after a watch error other than 410 and keeps delivering events', async () => {
    const { events, informer } = await setup();
    const seen: string[] = [];
    informer.on({ onAdd: (p) => seen.push(p.metadata.name!) });
    api.lists.push(listOf([], '1'));
    api.watches.push(fail(403));
    api.watches.push((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const pod = aPod().named('late').build();
      pod.metadata.resourceVersion = '2';
      res.write(`${JSON.stringify({ type: 'ADDED', object: pod })}\n`);
    });
    await informer.start();
    await until(() => seen.includes('late'));
    expect(events).toContain('error');
    expect(events).toContain('restart');
    expect(informer.get('late', 'serving')?.metadata.name).toBe('late');
  });

  it('stop() is not reported as an error and prevents restarts', async () => {
    const { events, informer } = await setup();
    await informer.start();
    await until(() => informer.hasSynced());
    await informer.stop();
    await new Promise((r) => setTimeout(r, 150));
    expect(events).not.toContain('error');
    expect(events).not.toContain('restart');
  });
});

describe('informer index', () => {
  it('files objects by the index function and keeps the index in step with adds, relabels and deletes', async () => {
    api = new FakeApiServer();
    await api.start();
    const kc = kubeConfigFor(api.port);
    informer = new ResilientInformer<Pod>(
      kc,
      new RestKubeApi(kc),
      { resource: 'pods', path: '/api/v1/pods', labelSelector: 'disagg.dev/cluster' },
      podClusterIndex,
    );
    const seen: string[] = [];
    // A handler added later already sees the index updated.
    informer.on({
      onUpdate: () => seen.push(...informer!.byIndex('serving/b').map((x) => x.metadata.name!)),
    });
    const pod = (name: string, cluster: string, rv: string) => {
      const p = aPod().named(name).cluster(cluster).build();
      p.metadata.resourceVersion = rv;
      return p;
    };
    api.lists.push(listOf([pod('p1', 'a', '1'), pod('p2', 'a', '1'), pod('p3', 'b', '1')], '1'));
    let watch: ServerResponse | undefined;
    api.watches.push((res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
      watch = res;
    });
    await informer.start();
    await until(() => watch !== undefined);
    const names = (v: string) =>
      informer!
        .byIndex(v)
        .map((p) => p.metadata.name)
        .sort();
    expect(names('serving/a')).toEqual(['p1', 'p2']);
    expect(names('serving/b')).toEqual(['p3']);
    watch!.write(`${JSON.stringify({ type: 'MODIFIED', object: pod('p2', 'b', '2') })}\n`);
    watch!.write(`${JSON.stringify({ type: 'DELETED', object: pod('p3', 'b', '3') })}\n`);
    await until(() => names('serving/b').join() === 'p2');
    expect(names('serving/a')).toEqual(['p1']);
    expect(seen.sort()).toEqual(['p2', 'p3']);
  });
});
