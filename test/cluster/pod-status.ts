// The pod status a kubelet would report for a loopback pod, as a strategic-merge patch body.
// Pure: the kubelet hands in what it observed and the times at which things changed.
import type { V1Pod } from '@kubernetes/client-node';

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface Termination {
  exitCode: number;
  signal?: string;
  reason: string;
  startedAt: string;
  finishedAt: string;
}

export type EngineState =
  | { kind: 'running'; startedAt: string }
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'terminated'; termination: Termination };

export interface ObservedPod {
  phase: PodPhase;
  podIP: string;
  hostIP: string;
  startTime: string;
  engine: EngineState;
  /** Last /health answer of the engine. */
  ready: boolean;
  /** When `ready` last changed (lastTransitionTime of Ready/ContainersReady). */
  readyChangedAt: string;
  restartCount: number;
  lastTermination?: Termination;
}

/** RFC 3339 with second precision, as metav1.Time serialises. */
export function kubeTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RFC 3339 with microseconds, as metav1.MicroTime (Lease renewTime) requires. */
export function kubeMicroTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function terminatedState(t: Termination): Record<string, unknown> {
  return {
    terminated: {
      exitCode: t.exitCode,
      ...(t.signal ? { signal: signalNumber(t.signal) } : {}),
      reason: t.reason,
      startedAt: t.startedAt,
      finishedAt: t.finishedAt,
    },
  };
}

function signalNumber(sig: string): number {
  return { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6 }[sig] ?? 0;
}

function condition(type: string, ok: boolean, at: string, reason?: string): Record<string, unknown> {
  return {
    type,
    status: ok ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: at,
    ...(!ok && reason ? { reason } : {}),
  };
}

/**
 * Status patch for the pod: only the first container runs an engine; any further containers
 * (sidecars) have no process here and are reported as running and ready from the pod's start.
 */
export function podStatusPatch(pod: V1Pod, seen: ObservedPod, containerIdPrefix = 'loopback://'): object {
  const containers = pod.spec?.containers ?? [];
  const engineRunning = seen.engine.kind === 'running';
  const ready = engineRunning && seen.ready;
  const statuses = containers.map((c, i) => {
    if (i > 0) {
      return {
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        containerID: `${containerIdPrefix}${pod.metadata?.uid}/${c.name}`,
        ready: seen.phase === 'Running',
        started: seen.phase === 'Running',
        restartCount: 0,
        state: { running: { startedAt: seen.startTime } },
        lastState: {},
      };
    }
    const state =
      seen.engine.kind === 'running'
        ? { running: { startedAt: seen.engine.startedAt } }
        : seen.engine.kind === 'waiting'
          ? {
              waiting: {
                reason: seen.engine.reason,
                ...(seen.engine.message ? { message: seen.engine.message } : {}),
              },
            }
          : terminatedState(seen.engine.termination);
    return {
      name: c.name,
      image: c.image ?? '',
      imageID: '',
      containerID: `${containerIdPrefix}${pod.metadata?.uid}/${c.name}`,
      ready,
      started: engineRunning,
      restartCount: seen.restartCount,
      state,
      lastState: seen.lastTermination ? terminatedState(seen.lastTermination) : {},
    };
  });
  return {
    status: {
      phase: seen.phase,
      hostIP: seen.hostIP,
      hostIPs: [{ ip: seen.hostIP }],
      podIP: seen.podIP,
      podIPs: [{ ip: seen.podIP }],
      startTime: seen.startTime,
      conditions: [
        condition('PodReadyToStartContainers', true, seen.startTime),
        condition('Initialized', true, seen.startTime),
        condition('ContainersReady', ready, seen.readyChangedAt, 'ContainersNotReady'),
        condition('Ready', ready, seen.readyChangedAt, 'ContainersNotReady'),
      ],
      containerStatuses: statuses,
    },
  };
}
