import { encode } from '@msgpack/msgpack';
import { afterEach, describe, expect, it } from '@jest/globals';
import * as zmq from 'zeromq';
import {
  KvNotifyHub,
  encodeProxyNotif,
  makeReqId,
  ownerOf,
  parseProxyNotif,
  sanitizeReplicaId,
} from '../src/kv-notify.js';
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';

const hubs: KvNotifyHub[] = [];
const pushes: zmq.Push[] = [];

afterEach(async () => {
  for (const p of pushes.splice(0)) p.close();
  await Promise.all(hubs.splice(0).map((h) => h.close()));
});

async function hub(
  replicaId: string,
): Promise<{ hub: KvNotifyHub; metrics: ReturnType<typeof createMetrics> }> {
  const metrics = createMetrics();
  const h = new KvNotifyHub({
    replicaId,
    host: '127.0.0.1',
    port: 0,
    logger: createLogger('silent'),
    metrics,
  });
  await h.start();
  hubs.push(h);
  return { hub: h, metrics };
}

function pusher(port: number): zmq.Push {
  const p = new zmq.Push({ linger: 0 });
  p.connect(`tcp://127.0.0.1:${port}`);
  pushes.push(p);
  return p;
}

async function counter(metrics: ReturnType<typeof createMetrics>, outcome: string): Promise<number> {
  const m = await metrics.kvNotifications.get();
  return m.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('ProxyNotif wire format', () => {
  it('is the msgpack map msgspec writes for a tagged struct', () => {
    const frame = encodeProxyNotif('r1_abc');
    // fixmap(2) "type" "ProxyNotif" "req_id" "r1_abc"
    expect(Buffer.from(frame)).toEqual(Buffer.from(encode({ type: 'ProxyNotif', req_id: 'r1_abc' })));
    expect(parseProxyNotif(frame)).toBe('r1_abc');
    expect(parseProxyNotif(encode({ type: 'AllocRequest', keys: [] }))).toBeUndefined();
    expect(parseProxyNotif(encode(['ProxyNotif', 'x']))).toBeUndefined();
    expect(parseProxyNotif(Buffer.from([0xc1]))).toBeUndefined();
  });

  it('req_ids name their owning replica', () => {
    expect(makeReqId('router-a', 'u-1')).toBe('router-a_u-1');
    expect(ownerOf('router-a_u-1_x')).toBe('router-a');
    expect(ownerOf('nounderscore')).toBeUndefined();
    expect(sanitizeReplicaId('pod_name.ns')).toBe('pod-name-ns');
  });
});

describe('KvNotifyHub', () => {
  it('waits for one notification per decoder TP rank', async () => {
    const { hub: h, metrics } = await hub('r1');
    const waiter = h.expect('r1_req', 2);
    const push = pusher(h.port);
    let done = false;
    const waiting = waiter.wait(20_000, new AbortController().signal).then(() => (done = true));
    await push.send(encodeProxyNotif('r1_req'));
    await new Promise((r) => setTimeout(r, 200));
    expect(done).toBe(false);
    await push.send(encodeProxyNotif('r1_req'));
    await waiting;
    expect(done).toBe(true);
    expect(await counter(metrics, 'delivered')).toBe(2);
  });

  it('times out with KV_READY_TIMEOUT when notifications do not all arrive', async () => {
    const { hub: h } = await hub('r1');
    const waiter = h.expect('r1_slow', 1);
    await expect(waiter.wait(100, new AbortController().signal)).rejects.toMatchObject({
      code: 'KV_READY_TIMEOUT',
    });
  });

  it('forwards a notification owned by a peer replica to that peer', async () => {
    const a = await hub('router-a');
    const b = await hub('router-b');
    a.hub.setPeers([
      { id: 'router-a', notifyAddress: `tcp://127.0.0.1:${a.hub.port}` },
      { id: 'router-b', notifyAddress: `tcp://127.0.0.1:${b.hub.port}` },
    ]);
    const waiter = b.hub.expect('router-b_x1', 1);
    // The prefiller pushed to the wrong replica (a).
    await pusher(a.hub.port).send(encodeProxyNotif('router-b_x1'));
    await waiter.wait(20_000, new AbortController().signal);
    expect(await counter(a.metrics, 'forwarded')).toBe(1);
    expect(await counter(b.metrics, 'delivered')).toBe(1);
  });

  it('drops malformed and unknown-owner notifications without breaking the loop', async () => {
    const { hub: h, metrics } = await hub('r1');
    const push = pusher(h.port);
    await push.send(Buffer.from('not msgpack \xc1'));
    await push.send(encodeProxyNotif('stranger_1'));
    const waiter = h.expect('r1_after', 1);
    await push.send(encodeProxyNotif('r1_after'));
    await waiter.wait(20_000, new AbortController().signal);
    expect(await counter(metrics, 'malformed')).toBe(1);
    expect(await counter(metrics, 'unknown_owner')).toBe(1);
  });
});
