import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { podClusterIndex } from '../src/controller/indexes.js';
import {
  ResilientInformer,
  type InformerLifecycleEvent,
  type ResilientInformerOptions,
} from '../src/controller/informer.js';
import { RestKubeApi } from '../src/controller/kube-client.js';
import { nativeConnection, type KubeConnection } from '../src/kube/connection.js';
import type { Pod } from '../src/api/types.js';
import { aPod } from './fixtures.js';

type Script = (res: ServerResponse, url: URL) => void;

/** A fake API server whose list and watch answers a test scripts, one per call. */
class FakeApiServer {
  server: Server | undefined;
  lists: Script[] = [];
  watches: Script[] = [];
  openWatches: ServerResponse[] = [];
  /** Every request, in order. */
  requests: URL[] = [];
  port = 0;
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      this.requests.push(url);
      const isWatch = url.searchParams.get('watch') === 'true';
      const script = (isWatch ? this.watches : this.lists).shift();
      if (isWatch) this.openWatches.push(res);
      if (script) script(res, url);
      // An unscripted watch stays open and quiet (headers sent, as the API server does).
      else if (isWatch) res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
      else res.writeHead(200).end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' } }));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }
  watchRequests(): URL[] {
    return this.requests.filter((u) => u.searchParams.get('watch') === 'true');
  }
  listRequests(): URL[] {
    return this.requests.filter((u) => u.searchParams.get('watch') !== 'true');
  }
  async stop(): Promise<void> {
    this.openWatches.forEach((r) => r.destroy());
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

const fail = (code: number) => (res: ServerResponse) =>
  res.writeHead(code).end(JSON.stringify({ message: `status ${code}`, code }));
const listOf =
  (pods: Pod[], rv: string, cont?: string): Script =>
  (res) =>
    res.writeHead(200).end(
      JSON.stringify({
        items: pods,
        metadata: { resourceVersion: rv, ...(cont ? { continue: cont } : {}) },
      }),
    );
/** A watch that sends these events, then ends the stream normally (the server's timeout). */
const watchThenClose =
  (...events: unknown[]): Script =>
  (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  };
/** A watch that sends these events and stays open. */
const watchOpen =
  (...events: unknown[]): Script =>
  (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (events.length) res.write(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    else res.flushHeaders();
  };

const pod = (name: string, rv: string, cluster = 'a'): Pod => {
  const p = aPod().named(name).cluster(cluster).build();
  p.metadata.resourceVersion = rv;
  return p;
};

function connectionFor(port: number): KubeConnection {
  return nativeConnection(
    { server: `http://127.0.0.1:${port}`, insecureSkipTlsVerify: false },
    { token: 't' },
    { source: 'test' },
  );
}

const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

let api: FakeApiServer;
let conn: KubeConnection | undefined;
let informer: ResilientInformer<Pod> | undefined;
afterEach(async () => {
  await informer?.stop();
  await conn?.close();
  await api?.stop();
  informer = undefined;
  conn = undefined;
});

async function setup(extra: Partial<ResilientInformerOptions> = {}) {
  api = new FakeApiServer();
  await api.start();
  conn = connectionFor(api.port);
  const events: InformerLifecycleEvent[] = [];
  const seen: string[] = [];
  informer = new ResilientInformer<Pod>(new RestKubeApi(conn), {
    resource: 'pods',
    path: '/api/v1/pods',
    labelSelector: 'disagg.dev/cluster',
    restartBaseMs: 20,
    restartMaxMs: 100,
    onLifecycle: (e) => events.push(e),
    ...extra,
  });
  informer.on({
    onAdd: (p) => seen.push(`add ${p.metadata.name}`),
    onUpdate: (p) => seen.push(`update ${p.metadata.name}`),
    onDelete: (p) => seen.push(`delete ${p.metadata.name}`),
  });
  return { events, seen, informer };
}

const names = (i: ResilientInformer<Pod>) =>
  i
    .list()
    .map((p) => p.metadata.name)
    .sort();

describe('resilient informer', () => {
  it('restarts after a failed list and fills the cache', async () => {
    const { events, informer } = await setup();
    api.lists.push(fail(500), fail(503), listOf([aPod().named('p1').build()], '5'));
    await informer.start();
    await until(() => informer.hasSynced());
    expect(informer.list().map((p) => p.metadata.name)).toEqual(['p1']);
    expect(events.filter((e) => e === 'error')).toHaveLength(2);
    expect(events.filter((e) => e === 'restart')).toHaveLength(2);
  });

  it('restarts after a watch error other than 410 and keeps delivering events', async () => {
    const { events, seen, informer } = await setup();
    api.lists.push(listOf([], '1'));
    api.watches.push(fail(403));
    api.watches.push(watchOpen({ type: 'ADDED', object: pod('late', '2') }));
    await informer.start();
    await until(() => seen.includes('add late'));
    expect(events).toContain('error');
    expect(events).toContain('restart');
    expect(informer.get('late', 'serving')?.metadata.name).toBe('late');
  });

  it('asks for bookmarks, a server-side timeout and the label selector, from the list resourceVersion', async () => {
    const { informer } = await setup({ watchTimeoutSeconds: 40 });
    api.lists.push(listOf([pod('p1', '3')], '17'));
    await informer.start();
    await until(() => api.watchRequests().length === 1);
    const w = api.watchRequests()[0]!.searchParams;
    expect(w.get('resourceVersion')).toBe('17');
    expect(w.get('allowWatchBookmarks')).toBe('true');
    expect(w.get('labelSelector')).toBe('disagg.dev/cluster');
    const timeout = Number(w.get('timeoutSeconds'));
    expect(timeout).toBeGreaterThanOrEqual(40);
    expect(timeout).toBeLessThanOrEqual(80);
  });

  it('re-watches at once, without a re-list, when the server ends the stream; a bookmark advances the resourceVersion', async () => {
    const { events, seen, informer } = await setup();
    api.lists.push(listOf([pod('p1', '3')], '10'));
    api.watches.push(
      watchThenClose(
        { type: 'MODIFIED', object: pod('p1', '11') },
        { type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: '25' } } },
      ),
    );
    api.watches.push(watchOpen({ type: 'ADDED', object: pod('p2', '26') }));
    await informer.start();
    await until(() => seen.includes('add p2'));
    const watches = api.watchRequests().map((u) => u.searchParams.get('resourceVersion'));
    expect(watches).toEqual(['10', '25']);
    expect(api.listRequests()).toHaveLength(1);
    expect(events).not.toContain('error');
    expect(events.filter((e) => e === 'connect')).toHaveLength(2);
    // The bookmark is not an object change.
    expect(seen).toEqual(['add p1', 'update p1', 'add p2']);
    expect(names(informer)).toEqual(['p1', 'p2']);
  });

  it.each([
    [
      'an ERROR event with code 410',
      watchOpen({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } }),
    ],
    ['a 410 response', fail(410)],
  ])('re-lists on %s and delivers the deletes missed while disconnected', async (_what, expired) => {
    const { events, seen, informer } = await setup();
    api.lists.push(listOf([pod('p1', '3'), pod('p2', '4'), pod('p3', '5')], '10'));
    api.watches.push(expired);
    // p2 was deleted and p3 changed while the watch was gone; p1 is unchanged.
    api.lists.push(listOf([pod('p1', '3'), pod('p3', '40'), pod('p4', '41')], '50'));
    await informer.start();
    await until(() => api.watchRequests().length === 2);
    expect(seen).toEqual(['add p1', 'add p2', 'add p3', 'update p3', 'add p4', 'delete p2']);
    expect(names(informer)).toEqual(['p1', 'p3', 'p4']);
    expect(api.watchRequests()[1]!.searchParams.get('resourceVersion')).toBe('50');
    // Expiry is routine, not a failure.
    expect(events).not.toContain('error');
    expect(events.filter((e) => e === 'list')).toHaveLength(2);
  });

  it('lists in pages (limit/continue) and watches from the resourceVersion of the list', async () => {
    const { informer } = await setup({ pageSize: 2 });
    api.lists.push(
      listOf([pod('p1', '1'), pod('p2', '1')], '9', 'tok1'),
      listOf([pod('p3', '1'), pod('p4', '1')], '9', 'tok2'),
      listOf([pod('p5', '1')], '9'),
    );
    await informer.start();
    expect(informer.hasSynced()).toBe(true);
    expect(names(informer)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    const lists = api
      .listRequests()
      .map((u) => [u.searchParams.get('limit'), u.searchParams.get('continue')]);
    expect(lists).toEqual([
      ['2', null],
      ['2', 'tok1'],
      ['2', 'tok2'],
    ]);
    await until(() => api.watchRequests().length === 1);
    expect(api.watchRequests()[0]!.searchParams.get('resourceVersion')).toBe('9');
  });

  it('falls back to one unpaged list when the continue token expired', async () => {
    const { informer } = await setup({ pageSize: 1 });
    api.lists.push(
      listOf([pod('p1', '1')], '9', 'tok1'),
      fail(410),
      listOf([pod('p1', '1'), pod('p2', '1')], '12'),
    );
    await informer.start();
    expect(names(informer)).toEqual(['p1', 'p2']);
    const lists = api
      .listRequests()
      .map((u) => [u.searchParams.get('limit'), u.searchParams.get('continue')]);
    expect(lists).toEqual([
      ['1', null],
      ['1', 'tok1'],
      [null, null],
    ]);
  });

  it('caches objects without managedFields, from the list and from the watch', async () => {
    const { informer } = await setup();
    const withFields = (p: Pod) => {
      (p.metadata as Record<string, unknown>).managedFields = [
        { manager: 'kubelet', fieldsV1: { 'f:status': {} } },
      ];
      return p;
    };
    const handed: Pod[] = [];
    informer.on({ onAdd: (p) => handed.push(p), onUpdate: (p) => handed.push(p) });
    api.lists.push(listOf([withFields(pod('p1', '1'))], '5'));
    api.watches.push(watchOpen({ type: 'ADDED', object: withFields(pod('p2', '6')) }));
    await informer.start();
    await until(() => handed.length === 2);
    for (const p of [...informer.list(), ...handed]) expect(p.metadata).not.toHaveProperty('managedFields');
    expect(informer.get('p2', 'serving')?.metadata.resourceVersion).toBe('6');
  });

  it('takes a watch that sends nothing past its idle timeout for dead, and restarts it', async () => {
    const { events, seen, informer } = await setup({ idleTimeoutMs: 300 });
    api.lists.push(listOf([], '1'));
    api.watches.push(watchOpen()); // headers, then silence
    api.watches.push(watchOpen({ type: 'ADDED', object: pod('p1', '2') }));
    await informer.start();
    await until(() => seen.includes('add p1'));
    expect(events).toContain('error');
    expect(events).toContain('restart');
  });

  it('keeps going when a handler throws', async () => {
    const errors: unknown[] = [];
    const { seen, informer } = await setup({ onHandlerError: (e) => errors.push(e) });
    informer.on({
      onAdd: () => {
        throw new Error('boom');
      },
    });
    api.lists.push(listOf([pod('p1', '1')], '1'));
    api.watches.push(watchOpen({ type: 'ADDED', object: pod('p2', '2') }));
    await informer.start();
    await until(() => seen.includes('add p2'));
    expect(errors).toHaveLength(2);
    expect(names(informer)).toEqual(['p1', 'p2']);
  });

  it('stop() does not wait for a list the API server has not answered', async () => {
    const { informer } = await setup();
    // Answered only after stop() returned (an API server that hangs until the client gives up).
    let answer: (() => void) | undefined;
    api.lists.push((res) => (answer = () => listOf([pod('p1', '1')], '2')(res, new URL('http://x'))));
    const started = informer.start();
    await until(() => answer !== undefined);
    const t0 = Date.now();
    await informer.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    answer!();
    await started;
    expect(informer.hasSynced()).toBe(false);
    expect(informer.list()).toEqual([]);
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
    conn = connectionFor(api.port);
    informer = new ResilientInformer<Pod>(
      new RestKubeApi(conn),
      { resource: 'pods', path: '/api/v1/pods', labelSelector: 'disagg.dev/cluster' },
      podClusterIndex,
    );
    const seen: string[] = [];
    // A handler added later already sees the index updated.
    informer.on({
      onUpdate: () => seen.push(...informer!.byIndex('serving/b').map((x) => x.metadata.name!)),
    });
    api.lists.push(listOf([pod('p1', '1'), pod('p2', '1'), pod('p3', '1', 'b')], '1'));
    let watch: ServerResponse | undefined;
    api.watches.push((res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
      watch = res;
    });
    await informer.start();
    await until(() => watch !== undefined);
    const byIndex = (v: string) =>
      informer!
        .byIndex(v)
        .map((p) => p.metadata.name)
        .sort();
    expect(byIndex('serving/a')).toEqual(['p1', 'p2']);
    expect(byIndex('serving/b')).toEqual(['p3']);
    watch!.write(`${JSON.stringify({ type: 'MODIFIED', object: pod('p2', '2', 'b') })}\n`);
    watch!.write(`${JSON.stringify({ type: 'DELETED', object: pod('p3', '3', 'b') })}\n`);
    await until(() => byIndex('serving/b').join() === 'p2');
    expect(byIndex('serving/a')).toEqual(['p1']);
    expect(seen.sort()).toEqual(['p2', 'p3']);
  });
});
