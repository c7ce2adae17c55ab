// The pod status the loopback kubelet reports (pure).
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { kubeMicroTime, kubeTime, podStatusPatch, type ObservedPod } from './pod-status.js';

const pod: V1Pod = {
  metadata: { name: 'p', namespace: 'ns', uid: 'u' },
  spec: {
    containers: [
      { name: 'vllm', image: 'vllm' },
      { name: 'sidecar', image: 'router' },
    ],
  },
};
const seen: ObservedPod = {
  phase: 'Running',
  podIP: '127.1.0.9',
  hostIP: '127.0.0.1',
  startTime: '2026-01-01T00:00:00Z',
  engine: { kind: 'running', startedAt: '2026-01-01T00:00:01Z' },
  ready: true,
  readyChangedAt: '2026-01-01T00:00:02Z',
  restartCount: 0,
};
type Status = {
  status: {
    podIP: string;
    conditions: { type: string; status: string; reason?: string; lastTransitionTime: string }[];
    containerStatuses: {
      name: string;
      ready: boolean;
      restartCount: number;
      state: object;
      lastState: object;
    }[];
  };
};

describe('podStatusPatch', () => {
  test('a running, healthy engine makes the pod Ready; sidecars count as running', () => {
    const s = (podStatusPatch(pod, seen) as Status).status;
    expect(s.podIP).toBe('127.1.0.9');
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      lastTransitionTime: '2026-01-01T00:00:02Z',
    });
    expect(s.containerStatuses.map((c) => [c.name, c.ready])).toEqual([
      ['vllm', true],
      ['sidecar', true],
    ]);
  });

  test('a crashed engine waiting for restart is NotReady and shows its last termination', () => {
    const s = (
      podStatusPatch(pod, {
        ...seen,
        ready: false,
        engine: { kind: 'waiting', reason: 'CrashLoopBackOff' },
        restartCount: 2,
        lastTermination: {
          exitCode: 137,
          signal: 'SIGKILL',
          reason: 'Error',
          startedAt: 'a',
          finishedAt: 'b',
        },
      }) as Status
    ).status;
    expect(s.conditions.find((c) => c.type === 'ContainersReady')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotReady',
    });
    expect(s.containerStatuses[0]).toMatchObject({
      ready: false,
      restartCount: 2,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: { terminated: { exitCode: 137, signal: 9, reason: 'Error' } },
    });
  });
});

describe('API time formats', () => {
  test('Time has seconds, MicroTime six fractional digits', () => {
    const d = new Date('2026-03-04T05:06:07.089Z');
    expect(kubeTime(d)).toBe('2026-03-04T05:06:07Z');
    expect(kubeMicroTime(d)).toBe('2026-03-04T05:06:07.089000Z');
  });
});
