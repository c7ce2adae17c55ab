// The operator's Leases are owned by its Pod, so the garbage collector removes them with the pod:
// `helm uninstall` deletes the chart's RBAC together with the pods, after which a stopping operator
// could not delete them itself (seen on the real node tier: test/node/chart-real.test.ts).
import { describe, expect, it } from '@jest/globals';
import {
  LeaderElector,
  leasePath,
  podOwner,
  type Lease,
  type OwnerReference,
} from '../src/controller/leader-election.js';
import { Membership, memberLeaseName } from '../src/controller/membership.js';
import { FakeKube } from './fake-kube.js';

const NS = 'disagg';
const owner = (name: string): OwnerReference => ({ apiVersion: 'v1', kind: 'Pod', name, uid: `uid-${name}` });

describe('podOwner', () => {
  it('is the pod from POD_NAME/POD_UID when the Lease lives in the pod namespace', () => {
    expect(podOwner(NS, { POD_NAME: 'op-1', POD_UID: 'u1', POD_NAMESPACE: NS })).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'op-1',
      uid: 'u1',
    });
  });
  it.each([
    ['outside a pod', {}],
    ['no uid', { POD_NAME: 'op-1', POD_NAMESPACE: NS }],
    [
      'Leases in another namespace (owner references cannot cross namespaces)',
      { POD_NAME: 'op-1', POD_UID: 'u1', POD_NAMESPACE: 'other' },
    ],
  ])('is undefined %s', (_why, env) => {
    expect(podOwner(NS, env)).toBeUndefined();
  });
});

describe('Lease owner references', () => {
  it('the leader Lease is owned by its holder, and passes to the next holder with the lease', async () => {
    const api = new FakeKube();
    const clock = { t: 1_000_000 };
    const make = (id: string) =>
      new LeaderElector({
        api,
        namespace: NS,
        name: 'demo',
        identity: id,
        owner: owner(id),
        now: () => clock.t,
        leaseDurationMs: 15_000,
        retryPeriodMs: 2_000,
        renewDeadlineMs: 10_000,
      });
    const a = make('op-a');
    const b = make('op-b');
    await a.step();
    expect((await api.get<Lease>(leasePath(NS, 'demo'))).metadata.ownerReferences).toEqual([owner('op-a')]);
    await b.step();
    clock.t += 16_000; // a stopped renewing
    await b.step();
    expect(b.isLeader()).toBe(true);
    expect((await api.get<Lease>(leasePath(NS, 'demo'))).metadata.ownerReferences).toEqual([owner('op-b')]);
  });

  it('the router member Lease is owned by the replica pod', async () => {
    const api = new FakeKube();
    const m = new Membership({
      api,
      namespace: NS,
      replicaId: 'op-a',
      notifyAddress: 'tcp://10.0.0.1:7500',
      owner: owner('op-a'),
    });
    m.start();
    try {
      const lease = await waitForLease(api, leasePath(NS, memberLeaseName('op-a')));
      expect(lease.metadata.ownerReferences).toEqual([owner('op-a')]);
    } finally {
      await m.stop();
    }
  });
});

async function waitForLease(api: FakeKube, path: string): Promise<Lease> {
  for (let i = 0; i < 100; i++) {
    try {
      return await api.get<Lease>(path);
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  throw new Error(`no lease at ${path}`);
}
