// A kubelet for tests without containers: registers Nodes, keeps their Leases and heartbeats
// fresh, and runs each pod bound to them as an engine-simulator process on its own loopback IP,
// reporting pod status the way a kubelet does (IPs, phase, container states, Ready).
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CLUSTER_DIR, REPO_ROOT } from './bins.js';
import { engineLaunch, httpPortOf } from './engine-launch.js';
import { ListWatch } from './list-watch.js';
import { LoopbackAddressPool } from './loopback-addresses.js';
import { claimOctets, releaseOctets } from './loopback-octets.js';
import {
  DEFAULT_NODE_CAPACITY,
  LOOPBACK_HOST_IP,
  NODE_LEASE_NAMESPACE,
  leaseObject,
  nodeObject,
  nodeStatus,
} from './loopback-node.js';
import { kubeMicroTime, kubeTime, podStatusPatch, type ObservedPod, type Termination } from './pod-status.js';
import type { ManagedProcess, ProcessRegistry } from './processes.js';
import { isConflict, isNotFound, kubeRequest } from './rest.js';
import { sleep } from './wait.js';

export interface EngineCommand {
  command: string;
  /** Put before the pod's own args. */
  args: string[];
  cwd?: string;
  /** The "image's" environment: the pod's env is laid over it, as over an image's ENV. */
  env?: Record<string, string>;
}

/** The engine simulator of the router issue (test/sim/main.ts), run with tsx. */
export const SIMULATOR_ENGINE: EngineCommand = {
  command: process.execPath,
  args: ['--import', 'tsx', join(REPO_ROOT, 'test', 'sim', 'main.ts')],
  cwd: REPO_ROOT,
};

/** A minimal HTTP engine (fixtures/tiny-engine.ts) for harness tests that need no simulator. */
export const TINY_ENGINE: EngineCommand = {
  command: process.execPath,
  args: ['--import', 'tsx', join(CLUSTER_DIR, 'fixtures', 'tiny-engine.ts')],
  cwd: REPO_ROOT,
};

/** Engines a pod can pick with the annotation disagg.dev/loopback-engine (default: the kubelet's). */
export const NAMED_ENGINES: Record<string, EngineCommand> = { sim: SIMULATOR_ENGINE, tiny: TINY_ENGINE };
export const ENGINE_ANNOTATION = 'disagg.dev/loopback-engine';

export interface LoopbackKubeletOptions {
  kubeConfig: KubeConfig;
  registry: ProcessRegistry;
  logDir: string;
  /** Number of Nodes to register. Default 1. */
  nodes?: number;
  /** Node names are <prefix><index>. Default "loopback-". */
  nodeNamePrefix?: string;
  capacity?: Record<string, string>;
  /** Default engine for pods without the disagg.dev/loopback-engine annotation. Default: the simulator. */
  engine?: EngineCommand;
  /** GET path that makes a pod Ready once it answers 2xx. Default /health. */
  healthPath?: string;
  /** Readiness probe period. Default 1000 ms. */
  readinessPeriodMs?: number;
  /** Probe timeout; a hung (SIGSTOPped) engine fails after this. Default 1000 ms. */
  probeTimeoutMs?: number;
  /** First delay before restarting a dead engine, doubling per restart up to 5 min. Default 10 s (kubelet's). */
  restartBackoffMs?: number;
  /** Upper bound on a pod's termination grace period. Default 30 s. */
  maxTerminationGraceMs?: number;
  leaseDurationS?: number;
  leaseRenewMs?: number;
  nodeStatusPeriodMs?: number;
  log?: (line: string) => void;
}

export interface EngineInfo {
  namespace: string;
  name: string;
  uid: string;
  nodeName: string;
  ip: string;
  httpPort: number;
  url: string;
  pid: number | undefined;
  ready: boolean;
  restartCount: number;
  hung: boolean;
}

interface PodRuntime {
  uid: string;
  namespace: string;
  name: string;
  nodeName: string;
  pool: LoopbackAddressPool;
  pod: V1Pod;
  ip: string;
  httpPort: number;
  observed: ObservedPod;
  engine?: ManagedProcess;
  hung: boolean;
  terminating: boolean;
  gone: boolean;
  probing: boolean;
  probeTimer?: NodeJS.Timeout;
  restartTimer?: NodeJS.Timeout;
  retryTimer?: NodeJS.Timeout;
  statusChain: Promise<void>;
}

interface NodeState {
  name: string;
  index: number;
  uid?: string;
  pool: LoopbackAddressPool;
  since: string;
}

export class LoopbackKubelet {
  readonly nodeNames: string[];
  private readonly nodes = new Map<string, NodeState>();
  private readonly pods = new Map<string, PodRuntime>();
  private readonly timers: NodeJS.Timeout[] = [];
  private watch: ListWatch<V1Pod> | undefined;
  private stopped = false;
  private octets: number[] = [];
  private readonly o: Required<Omit<LoopbackKubeletOptions, 'log'>> & Pick<LoopbackKubeletOptions, 'log'>;

  constructor(opts: LoopbackKubeletOptions) {
    this.o = {
      nodes: 1,
      nodeNamePrefix: 'loopback-',
      capacity: DEFAULT_NODE_CAPACITY,
      engine: SIMULATOR_ENGINE,
      healthPath: '/health',
      readinessPeriodMs: 1000,
      probeTimeoutMs: 1000,
      restartBackoffMs: 10_000,
      maxTerminationGraceMs: 30_000,
      leaseDurationS: 10,
      leaseRenewMs: 2500,
      nodeStatusPeriodMs: 10_000,
      ...opts,
    };
    this.nodeNames = Array.from({ length: this.o.nodes }, (_, i) => `${this.o.nodeNamePrefix}${i}`);
  }

  private log(msg: string): void {
    this.o.log?.(`[loopback-kubelet] ${msg}`);
  }

  /** Registers the nodes and their leases, then starts watching pods. */
  async start(): Promise<void> {
    const now = new Date();
    this.octets = claimOctets(this.nodeNames.length);
    await Promise.all(
      this.nodeNames.map(async (name, index) => {
        const pool = new LoopbackAddressPool(this.octets[index]);
        const state: NodeState = { name, index, pool, since: kubeTime(now) };
        this.nodes.set(name, state);
        await this.registerNode(state, now);
      }),
    );
    this.timers.push(
      setInterval(() => void this.renewLeases(), this.o.leaseRenewMs),
      setInterval(() => void this.postNodeStatus(), this.o.nodeStatusPeriodMs),
    );
    this.watch = new ListWatch<V1Pod>(this.o.kubeConfig, '/api/v1/pods', {
      onUpsert: (pod) => this.onPod(pod),
      onDelete: (pod) => this.onPodDeleted(pod),
      onError: (err) => this.log(`pod watch: ${(err as Error).message}`),
    });
    await this.watch.start();
  }

  /** Stops heartbeats and the watch and every engine; leaves the API objects alone. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.forEach((t) => clearInterval(t));
    await this.watch?.stop();
    await Promise.all(
      [...this.pods.values()].map(async (rt) => {
        this.clearTimers(rt);
        rt.gone = true;
        await rt.engine?.stop(2000);
      }),
    );
    releaseOctets(this.octets);
  }

  engines(): EngineInfo[] {
    return [...this.pods.values()]
      .filter((rt) => !rt.gone)
      .map((rt) => ({
        namespace: rt.namespace,
        name: rt.name,
        uid: rt.uid,
        nodeName: rt.nodeName,
        ip: rt.ip,
        httpPort: rt.httpPort,
        url: `http://${rt.ip}:${rt.httpPort}`,
        pid: rt.engine?.hasExited === false ? rt.engine.pid : undefined,
        ready: rt.observed.ready && rt.observed.engine.kind === 'running',
        restartCount: rt.observed.restartCount,
        hung: rt.hung,
      }));
  }

  /** SIGKILLs the pod's engine: the pod turns NotReady, then the engine restarts after the backoff. */
  killEngine(podName: string, namespace?: string): void {
    const rt = this.find(podName, namespace);
    if (!rt.engine) throw new Error(`pod ${rt.namespace}/${rt.name} has no running engine`);
    this.log(`killing engine of ${rt.namespace}/${rt.name}`);
    rt.engine.signal('SIGKILL');
  }

  /** SIGSTOPs the pod's engine: it keeps its sockets but answers nothing, so readiness fails. */
  hangEngine(podName: string, namespace?: string): void {
    const rt = this.find(podName, namespace);
    if (!rt.engine) throw new Error(`pod ${rt.namespace}/${rt.name} has no running engine`);
    rt.hung = true;
    rt.engine.signal('SIGSTOP');
  }

  /** SIGCONTs a hung engine. */
  resumeEngine(podName: string, namespace?: string): void {
    const rt = this.find(podName, namespace);
    rt.hung = false;
    rt.engine?.signal('SIGCONT');
  }

  private find(podName: string, namespace?: string): PodRuntime {
    const matches = [...this.pods.values()].filter(
      (rt) => !rt.gone && rt.name === podName && (namespace === undefined || rt.namespace === namespace),
    );
    if (matches.length !== 1) {
      throw new Error(`${matches.length} loopback pods named ${namespace ? namespace + '/' : ''}${podName}`);
    }
    return matches[0];
  }

  // ---- nodes -------------------------------------------------------------------------------

  private async registerNode(node: NodeState, now: Date): Promise<void> {
    const kc = this.o.kubeConfig;
    try {
      const created = await kubeRequest<{ metadata: { uid: string } }>(kc, {
        method: 'POST',
        path: '/api/v1/nodes',
        body: nodeObject(node.name, node.pool.cidr, this.o.capacity, now),
      });
      node.uid = created.metadata.uid;
    } catch (err) {
      if (!isConflict(err)) throw err;
      // a previous run registered it: take it over
      const existing = await kubeRequest<{ metadata: { uid: string } }>(kc, {
        method: 'GET',
        path: `/api/v1/nodes/${node.name}`,
      });
      node.uid = existing.metadata.uid;
      await this.patchNodeStatus(node, now);
    }
    await this.renewLease(node, now);
  }

  private patchNodeStatus(node: NodeState, now: Date): Promise<unknown> {
    return kubeRequest(this.o.kubeConfig, {
      method: 'PATCH',
      path: `/api/v1/nodes/${node.name}/status`,
      patchType: 'strategic',
      body: { status: nodeStatus(now, node.since, this.o.capacity) },
    });
  }

  private async renewLease(node: NodeState, now: Date): Promise<void> {
    const kc = this.o.kubeConfig;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${NODE_LEASE_NAMESPACE}/leases/${node.name}`;
    try {
      await kubeRequest(kc, {
        method: 'PATCH',
        path,
        patchType: 'merge',
        body: { spec: { holderIdentity: node.name, renewTime: kubeMicroTime(now) } },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await kubeRequest(kc, {
        method: 'POST',
        path: `/apis/coordination.k8s.io/v1/namespaces/${NODE_LEASE_NAMESPACE}/leases`,
        body: leaseObject(node.name, node.uid, this.o.leaseDurationS, now),
      });
    }
  }

  private async renewLeases(): Promise<void> {
    const now = new Date();
    for (const node of this.nodes.values()) {
      await this.renewLease(node, now).catch((err: Error) => this.log(`lease ${node.name}: ${err.message}`));
    }
  }

  private async postNodeStatus(): Promise<void> {
    const now = new Date();
    for (const node of this.nodes.values()) {
      await this.patchNodeStatus(node, now).catch((err: Error) =>
        this.log(`node ${node.name}: ${err.message}`),
      );
    }
  }

  // ---- pods --------------------------------------------------------------------------------

  private onPod(pod: V1Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid ?? '';
    const node = this.nodes.get(pod.spec?.nodeName ?? '');
    if (!node) return;
    const rt = this.pods.get(uid);
    if (rt) {
      rt.pod = pod;
      if (pod.metadata?.deletionTimestamp && !rt.terminating) void this.terminate(rt);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return;
    if (pod.metadata?.deletionTimestamp) {
      // deleted before we ran it: nothing to stop
      void this.deletePod(pod.metadata.namespace ?? '', pod.metadata.name ?? '', uid);
      return;
    }
    this.admit(pod, node);
  }

  private onPodDeleted(pod: V1Pod): void {
    const rt = this.pods.get(pod.metadata?.uid ?? '');
    if (!rt) return;
    // force-deleted (grace 0) or our own final delete: make sure nothing keeps running
    rt.gone = true;
    this.clearTimers(rt);
    void (rt.engine?.stop(2000) ?? Promise.resolve()).then(() => this.forget(rt));
  }

  private admit(pod: V1Pod, node: NodeState): void {
    const existingIP = pod.status?.podIP;
    const ip = existingIP && node.pool.reserve(existingIP) ? existingIP : node.pool.allocate();
    const now = kubeTime();
    const rt: PodRuntime = {
      uid: pod.metadata?.uid ?? '',
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      nodeName: node.name,
      pool: node.pool,
      pod,
      ip,
      httpPort: 0,
      observed: {
        phase: 'Pending',
        podIP: ip,
        hostIP: LOOPBACK_HOST_IP,
        startTime: now,
        engine: { kind: 'waiting', reason: 'ContainerCreating' },
        ready: false,
        readyChangedAt: now,
        restartCount: 0,
      },
      hung: false,
      terminating: false,
      gone: false,
      probing: false,
      statusChain: Promise.resolve(),
    };
    this.pods.set(rt.uid, rt);
    void this.firstStart(rt);
  }

  /** Moves the pod off an address whose port something outside this kubelet holds, then starts it. */
  private async firstStart(rt: PodRuntime): Promise<void> {
    const port = httpPortOf(rt.pod);
    for (let tries = 0; tries < 16 && !(await canBind(rt.ip, port)); tries++) {
      this.log(`${rt.ip}:${port} is taken outside this cluster; skipping that address`);
      rt.ip = rt.pool.allocate(); // the taken address stays reserved, so it is not offered again
      rt.observed = { ...rt.observed, podIP: rt.ip };
    }
    if (rt.gone || rt.terminating || this.stopped) return;
    this.log(`pod ${rt.namespace}/${rt.name} -> ${rt.ip} on ${rt.nodeName}`);
    this.startEngine(rt);
    rt.probeTimer = setInterval(() => void this.probe(rt), this.o.readinessPeriodMs);
  }

  private startEngine(rt: PodRuntime): void {
    if (rt.gone || rt.terminating || this.stopped) return;
    const launch = engineLaunch(rt.pod, { podIP: rt.ip, hostIP: LOOPBACK_HOST_IP, nodeName: rt.nodeName });
    rt.httpPort = launch.httpPort;
    if (launch.unresolvedEnv.length > 0) {
      this.log(`${rt.namespace}/${rt.name}: env not resolvable here: ${launch.unresolvedEnv.join(', ')}`);
    }
    const picked = rt.pod.metadata?.annotations?.[ENGINE_ANNOTATION];
    const { command, args, cwd, env: imageEnv } = (picked && NAMED_ENGINES[picked]) || this.o.engine;
    const engine = this.o.registry.spawn(`engine ${rt.namespace}/${rt.name}`, command, {
      args: [...args, ...launch.args],
      // a container does not inherit the host's environment; PATH/HOME keep tools working
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...imageEnv, ...launch.env },
      cwd,
      logPath: join(this.o.logDir, `engine-${rt.namespace}-${rt.name}.log`),
    });
    rt.engine = engine;
    rt.hung = false;
    rt.observed = {
      ...rt.observed,
      phase: 'Running',
      engine: { kind: 'running', startedAt: kubeTime() },
      ready: false,
    };
    this.pushStatus(rt);
    void engine.exited.then((code) => this.onEngineExit(rt, engine, code));
  }

  private onEngineExit(rt: PodRuntime, engine: ManagedProcess, code: number | string): void {
    if (rt.engine !== engine) return;
    rt.engine = undefined;
    if (rt.gone || rt.terminating || this.stopped) return;
    const startedAt = rt.observed.engine.kind === 'running' ? rt.observed.engine.startedAt : kubeTime();
    const termination: Termination = {
      exitCode: typeof code === 'number' ? code : 137,
      ...(typeof code === 'string' ? { signal: code } : {}),
      reason: code === 0 ? 'Completed' : 'Error',
      startedAt,
      finishedAt: kubeTime(),
    };
    this.log(`engine of ${rt.namespace}/${rt.name} exited (${code})`);
    const policy = rt.pod.spec?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
    const wasReady = rt.observed.ready;
    rt.observed = {
      ...rt.observed,
      ready: false,
      readyChangedAt: wasReady ? kubeTime() : rt.observed.readyChangedAt,
      lastTermination: termination,
    };
    if (!restart) {
      rt.observed = {
        ...rt.observed,
        phase: code === 0 ? 'Succeeded' : 'Failed',
        engine: { kind: 'terminated', termination },
      };
      this.clearTimers(rt);
      this.pushStatus(rt);
      return;
    }
    const delay = Math.min(this.o.restartBackoffMs * 2 ** Math.min(rt.observed.restartCount, 10), 300_000);
    rt.observed = {
      ...rt.observed,
      engine: {
        kind: 'waiting',
        reason: 'CrashLoopBackOff',
        message: `back-off ${delay} ms restarting the engine`,
      },
    };
    this.pushStatus(rt);
    rt.restartTimer = setTimeout(() => {
      rt.restartTimer = undefined;
      rt.observed = { ...rt.observed, restartCount: rt.observed.restartCount + 1 };
      this.startEngine(rt);
    }, delay);
  }

  private async probe(rt: PodRuntime): Promise<void> {
    if (rt.probing || rt.gone || rt.terminating || !rt.engine) return;
    rt.probing = true;
    let ok = false;
    try {
      const res = await fetch(`http://${rt.ip}:${rt.httpPort}${this.o.healthPath}`, {
        signal: AbortSignal.timeout(this.o.probeTimeoutMs),
      });
      ok = res.ok;
      await res.body?.cancel();
    } catch {
      ok = false;
    } finally {
      rt.probing = false;
    }
    if (rt.gone || rt.terminating || !rt.engine || rt.observed.engine.kind !== 'running') return;
    if (ok !== rt.observed.ready) {
      rt.observed = { ...rt.observed, ready: ok, readyChangedAt: kubeTime() };
      this.log(`pod ${rt.namespace}/${rt.name} ready=${ok}`);
      this.pushStatus(rt);
    }
  }

  /** Serialised per pod, built from the latest observation when it is sent. */
  private pushStatus(rt: PodRuntime): void {
    rt.statusChain = rt.statusChain.then(async () => {
      if (rt.gone || this.stopped) return;
      try {
        const sent = rt.observed;
        await kubeRequest(this.o.kubeConfig, {
          method: 'PATCH',
          path: `/api/v1/namespaces/${rt.namespace}/pods/${rt.name}/status`,
          patchType: 'strategic',
          body: podStatusPatch(rt.pod, sent),
        });
        // The moment the API server has persisted it (benchmarks date "Ready persisted" by this line).
        this.log(
          `pod ${rt.namespace}/${rt.name} status persisted ready=${sent.ready && sent.engine.kind === 'running'}`,
        );
      } catch (err) {
        if (isNotFound(err)) return;
        this.log(`status of ${rt.namespace}/${rt.name}: ${(err as Error).message}`);
        // the API server may be restarting: send the then-current status again shortly
        rt.retryTimer ??= setTimeout(() => {
          rt.retryTimer = undefined;
          this.pushStatus(rt);
        }, 1000);
      }
    });
  }

  private async terminate(rt: PodRuntime): Promise<void> {
    rt.terminating = true;
    this.clearTimers(rt);
    const graceS =
      rt.pod.metadata?.deletionGracePeriodSeconds ?? rt.pod.spec?.terminationGracePeriodSeconds ?? 30;
    const graceMs = Math.min(graceS * 1000, this.o.maxTerminationGraceMs);
    this.log(`terminating ${rt.namespace}/${rt.name} (grace ${graceMs} ms)`);
    const engine = rt.engine;
    if (engine) {
      await engine.stop(graceMs);
      const code = await engine.exited;
      const startedAt = rt.observed.engine.kind === 'running' ? rt.observed.engine.startedAt : kubeTime();
      rt.observed = {
        ...rt.observed,
        ready: false,
        readyChangedAt: kubeTime(),
        engine: {
          kind: 'terminated',
          termination: {
            exitCode: typeof code === 'number' ? code : 143,
            reason: 'Completed',
            startedAt,
            finishedAt: kubeTime(),
          },
        },
      };
      this.pushStatus(rt);
      await rt.statusChain;
    }
    await this.deletePod(rt.namespace, rt.name, rt.uid);
    rt.gone = true;
    this.forget(rt);
  }

  private async deletePod(namespace: string, name: string, uid: string): Promise<void> {
    // retried: a pod left terminating after an API server outage would never go away
    for (let attempt = 0; attempt < 120 && !this.stopped; attempt++) {
      try {
        await kubeRequest(this.o.kubeConfig, {
          method: 'DELETE',
          path: `/api/v1/namespaces/${namespace}/pods/${name}`,
          body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } },
        });
        return;
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) return; // gone, or a new pod of that name
        if (attempt === 0) this.log(`delete ${namespace}/${name}: ${(err as Error).message} (retrying)`);
        await sleep(1000);
      }
    }
  }

  private clearTimers(rt: PodRuntime): void {
    if (rt.probeTimer) clearInterval(rt.probeTimer);
    if (rt.restartTimer) clearTimeout(rt.restartTimer);
    if (rt.retryTimer) clearTimeout(rt.retryTimer);
    rt.probeTimer = undefined;
    rt.restartTimer = undefined;
    rt.retryTimer = undefined;
  }

  private forget(rt: PodRuntime): void {
    if (this.pods.get(rt.uid) === rt) this.pods.delete(rt.uid);
    rt.pool.release(rt.ip);
  }
}

/** False when ip:port is already bound (EADDRINUSE); other errors are left to the engine to report. */
function canBind(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE'));
    srv.listen({ host: ip, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
