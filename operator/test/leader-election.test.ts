import { describe, expect, it } from '@jest/globals';
import { LeaderElector, leasePath, microTime, type Lease } from '../src/controller/leader-election.js';
import {
  ANN_NOTIFY_ADDRESS,
  LABEL_ROUTER_MEMBER,
  livePeers,
  Membership,
} from '../src/controller/membership.js';
import { FakeKube } from './fake-kube.js';

const NS = 'ops';
const PATH = leasePath(NS, 'disagg-operator');

function elector(api: FakeKube, identity: string, clock: { t: number }, log: string[]) {
  return new LeaderElector({
    api,
    namespace: NS,
    name: 'disagg-operator',
    identity,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    now: () => clock.t,
    onStartedLeading: () => log.push(`${identity} leads`),
    onStoppedLeading: () => log.push(`${identity} stopped`),
  });
}

describe('leader election', () => {
  it('creates the lease, keeps it while renewing, and a second candidate waits', async () => {
    const api = new FakeKube();
    const clock = { t: 1_000_000 };
    const log: string[] = [];
    const a = elector(api, 'a', clock, log);
    const b = elector(api, 'b', clock, log);
    await a.step();
    await b.step();
    for (let i = 0; i < 10; i++) {
      clock.t += 2_000;
      await a.step();
      await b.step();
    }
    expect(log).toEqual(['a leads']);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    const lease = await api.get<Lease>(PATH);
    expect(lease.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);
  });

  it('takes over when the holder stops renewing, after the lease duration on its own clock', async () => {
    const api = new FakeKube();
    const clock = { t: 1_000_000 };
    const log: string[] = [];
    const a = elector(api, 'a', clock, log);
    const b = elector(api, 'b', clock, log);
    await a.step();
    await b.step(); // b first sees the record now
    clock.t += 14_000;
    await b.step();
    expect(b.isLeader()).toBe(false);
    clock.t += 1_500;
    await b.step();
    expect(b.isLeader()).toBe(true);
    expect((await api.get<Lease>(PATH)).spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('a released lease is taken at once', async () => {
    const api = new FakeKube();
    const clock = { t: 1_000_000 };
    const log: string[] = [];
    const a = elector(api, 'a', clock, log);
    const b = elector(api, 'b', clock, log);
    await a.step();
    await b.step();
    await a.stop();
    expect((await api.get<Lease>(PATH)).spec.holderIdentity).toBe('');
    clock.t += 100;
    await b.step();
    expect(log).toEqual(['a leads', 'a stopped', 'b leads']);
  });

  it('the leader steps down when it cannot renew for the renew deadline, and leads again later', async () => {
    const api = new FakeKube();
    const clock = { t: 1_000_000 };
    const log: string[] = [];
    const a = elector(api, 'a', clock, log);
    await a.step();
    api.failWith = new Error('connect ECONNREFUSED');
    for (let i = 0; i < 4; i++) {
      clock.t += 2_000;
      await a.step();
    }
    expect(a.isLeader()).toBe(true); // 8 s without renewal: still within the deadline
    clock.t += 2_000;
    await a.step();
    expect(a.isLeader()).toBe(false);
    api.failWith = undefined;
    clock.t += 2_000;
    await a.step(); // its own lease: no wait needed
    expect(log).toEqual(['a leads', 'a stopped', 'a leads']);
  });

  it('loses a race on resourceVersion (409) without claiming leadership', async () => {
    const api = new FakeKube();
    const clock = { t: 1_000_000 };
    await api.create(leasePath(NS), {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'disagg-operator', namespace: NS },
      spec: { holderIdentity: '', leaseDurationSeconds: 15 },
    });
    // Another candidate writes between our read and our write.
    const racing = Object.assign(Object.create(Object.getPrototypeOf(api)) as FakeKube, api, {
      get: async <T>(path: string): Promise<T> => {
        const seen = await api.get<Lease>(path);
        await api.replace(path, {
          ...seen,
          spec: { ...seen.spec, holderIdentity: 'c', renewTime: microTime(clock.t) },
        });
        return seen as T;
      },
    });
    const b = elector(racing, 'b', clock, []);
    await b.step();
    expect(b.isLeader()).toBe(false);
    expect((await api.get<Lease>(PATH)).spec.holderIdentity).toBe('c');
  });
});

describe('router membership', () => {
  it('lists live members with their notification addresses, skipping expired and malformed ones', () => {
    const now = Date.parse('2026-01-01T00:00:30Z');
    const lease = (id: string, renew: string, address?: string): Lease => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: id, namespace: NS, annotations: address ? { [ANN_NOTIFY_ADDRESS]: address } : {} },
      spec: { holderIdentity: id, leaseDurationSeconds: 15, renewTime: renew },
    });
    expect(
      livePeers(
        [
          lease('b', '2026-01-01T00:00:29.000000Z', 'tcp://10.0.0.2:7500'),
          lease('a', '2026-01-01T00:00:20.000000Z', 'tcp://10.0.0.1:7500'),
          lease('old', '2026-01-01T00:00:10.000000Z', 'tcp://10.0.0.3:7500'),
          lease('noaddr', '2026-01-01T00:00:29.000000Z'),
          lease('bad', '2026-01-01T00:00:29.000000Z', 'http://x'),
        ],
        now,
      ),
    ).toEqual([
      { id: 'a', notifyAddress: 'tcp://10.0.0.1:7500' },
      { id: 'b', notifyAddress: 'tcp://10.0.0.2:7500' },
    ]);
  });

  it('two replicas see each other through their leases; leaving deletes ours', async () => {
    const api = new FakeKube();
    const seen: Record<string, string[]> = { a: [], b: [] };
    const member = (id: string) =>
      new Membership({
        api,
        namespace: NS,
        replicaId: id,
        notifyAddress: `tcp://127.0.0.${id === 'a' ? 1 : 2}:7500`,
        onPeersChanged: (peers) => (seen[id] = peers.map((p) => p.id)),
      });
    const a = member('a');
    const b = member('b');
    await a.step();
    await b.step();
    await a.step();
    expect(seen).toEqual({ a: ['a', 'b'], b: ['a', 'b'] });
    const stored = await api.list<Lease>(leasePath(NS), { labelSelector: `${LABEL_ROUTER_MEMBER}=true` });
    expect(stored.items).toHaveLength(2);
    await b.stop();
    await a.step();
    expect(seen.a).toEqual(['a']);
  });
});
