// Fluent fixture builders so tests read as specs: aPod().role('decode').ready().build().
import {
  ANN_DRAINING_SINCE,
  ANN_HTTP_PORT,
  ANN_LMCACHE_ALLOC_PORTS,
  ANN_LMCACHE_INIT_PORTS,
  ANN_NIXL_PORT,
  ANN_POD_DELETION_COST,
  DRAINED_POD_DELETION_COST,
  LABEL_CLUSTER,
  LABEL_ROLE,
} from '../src/api/labels.js';
import type {
  Condition,
  ContainerPort,
  Deployment,
  DisaggCluster,
  DisaggClusterStatus,
  LabelSelector,
  Pod,
  PoolRole,
  PoolSpec,
} from '../src/api/types.js';

export const NS = 'serving';
export const T0 = new Date('2026-01-01T00:00:00Z');
export const secondsAfter = (t: Date, s: number): Date => new Date(t.getTime() + s * 1000);

let podSeq = 0;

export class PodBuilder {
  private pod: Pod;
  constructor() {
    podSeq++;
    this.pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `pod-${podSeq}`,
        namespace: NS,
        uid: `uid-pod-${podSeq}`,
        creationTimestamp: secondsAfter(T0, podSeq).toISOString(),
        labels: { [LABEL_CLUSTER]: 'llama' },
        annotations: { [ANN_HTTP_PORT]: '8000' },
      },
      spec: { containers: [{ name: 'engine', image: 'vllm' }] },
      status: { phase: 'Pending' },
    };
  }
  named(name: string): this {
    this.pod.metadata.name = name;
    return this;
  }
  cluster(name: string): this {
    this.pod.metadata.labels![LABEL_CLUSTER] = name;
    return this;
  }
  role(role: PoolRole): this {
    this.pod.metadata.labels![LABEL_ROLE] = role;
    return this;
  }
  label(key: string, value: string): this {
    this.pod.metadata.labels![key] = value;
    return this;
  }
  withoutLabel(key: string): this {
    delete this.pod.metadata.labels![key];
    return this;
  }
  annotation(key: string, value: string): this {
    this.pod.metadata.annotations![key] = value;
    return this;
  }
  withoutAnnotation(key: string): this {
    delete this.pod.metadata.annotations![key];
    return this;
  }
  nixlPort(port = 5600): this {
    return this.annotation(ANN_NIXL_PORT, String(port));
  }
  lmcachePorts(init: number[] = [7300], alloc: number[] = [7400]): this {
    return this.annotation(ANN_LMCACHE_INIT_PORTS, init.join(',')).annotation(
      ANN_LMCACHE_ALLOC_PORTS,
      alloc.join(','),
    );
  }
  containerPort(name: string, containerPort: number): this {
    const c = this.pod.spec!.containers[0]!;
    c.ports = [...(c.ports ?? []), { name, containerPort } as ContainerPort];
    return this;
  }
  ip(ip: string): this {
    this.pod.status!.podIP = ip;
    return this;
  }
  /** Running, Ready, with an IP (derived from the pod number unless given). */
  ready(ip?: string): this {
    this.pod.status = {
      phase: 'Running',
      podIP: ip ?? this.pod.status?.podIP ?? `10.0.0.${podSeq % 250}`,
      conditions: [{ type: 'Ready', status: 'True' }],
    };
    return this;
  }
  notReady(): this {
    this.pod.status = {
      ...this.pod.status,
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'False' }],
    };
    if (!this.pod.status.podIP) this.pod.status.podIP = `10.0.1.${podSeq % 250}`;
    return this;
  }
  terminating(): this {
    this.pod.metadata.deletionTimestamp = T0.toISOString();
    return this;
  }
  createdAt(t: Date): this {
    this.pod.metadata.creationTimestamp = t.toISOString();
    return this;
  }
  drainingSince(t: Date): this {
    return this.annotation(ANN_DRAINING_SINCE, t.toISOString());
  }
  drainedCost(): this {
    return this.annotation(ANN_POD_DELETION_COST, DRAINED_POD_DELETION_COST);
  }
  build(): Pod {
    return structuredClone(this.pod);
  }
}
export const aPod = (): PodBuilder => new PodBuilder();

const engineTemplate = (): NonNullable<PoolSpec['template']> => ({
  metadata: { labels: { app: 'vllm' } },
  spec: { containers: [{ name: 'engine', image: 'vllm/vllm-openai', args: ['--model', 'm'] }] },
});

export class ClusterBuilder {
  private c: DisaggCluster;
  constructor() {
    this.c = {
      apiVersion: 'disagg.dev/v1alpha1',
      kind: 'DisaggCluster',
      metadata: { name: 'llama', namespace: NS, uid: 'uid-llama', generation: 1 },
      spec: {
        model: { servedName: 'meta-llama/Llama-3.1-8B-Instruct' },
        connector: { type: 'nixl', nixl: { sideChannelPort: 5600 } },
        routing: { threshold: 256, loadBalancing: 'round_robin', prefillFailurePolicy: 'fallback' },
        prefill: { replicas: 1, httpPort: 8000, drainSeconds: 30, template: engineTemplate() },
        decode: { replicas: 1, httpPort: 8000, drainSeconds: 30, template: engineTemplate() },
      },
    };
  }
  named(name: string): this {
    this.c.metadata.name = name;
    return this;
  }
  generation(g: number): this {
    this.c.metadata.generation = g;
    return this;
  }
  lmcache(initPorts = [7300], allocPorts = [7400], kvNotifyHost = 'disagg-router.ops.svc'): this {
    this.c.spec.connector = {
      type: 'lmcache',
      lmcache: { initPorts, allocPorts, kvNotifyHost, kvNotifyPort: 7500 },
    };
    return this;
  }
  threshold(t: number): this {
    this.c.spec.routing = { ...this.c.spec.routing, threshold: t };
    return this;
  }
  prefill(replicas: number): this {
    this.c.spec.prefill.replicas = replicas;
    return this;
  }
  decode(replicas: number): this {
    this.c.spec.decode.replicas = replicas;
    return this;
  }
  drainSeconds(s: number): this {
    this.c.spec.prefill.drainSeconds = s;
    this.c.spec.decode.drainSeconds = s;
    return this;
  }
  adopt(role: PoolRole, selector: LabelSelector): this {
    const { template: _t, ...rest } = this.c.spec[role];
    this.c.spec[role] = { ...rest, selector };
    return this;
  }
  templateEnv(role: PoolRole, name: string, value: string): this {
    const c = this.c.spec[role].template!.spec.containers[0]!;
    c.env = [...(c.env ?? []), { name, value }];
    return this;
  }
  status(status: DisaggClusterStatus): this {
    this.c.status = status;
    return this;
  }
  condition(c: Partial<Condition> & { type: string; status: Condition['status'] }): this {
    const conds = (this.c.status ??= {}).conditions ?? [];
    this.c.status.conditions = [
      ...conds.filter((x) => x.type !== c.type),
      { reason: 'X', message: '', lastTransitionTime: T0.toISOString(), ...c },
    ];
    return this;
  }
  build(): DisaggCluster {
    return structuredClone(this.c);
  }
}
export const aCluster = (): ClusterBuilder => new ClusterBuilder();

export function aDeployment(name: string, replicas: number): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: { replicas, selector: { matchLabels: {} }, template: { spec: { containers: [] } } },
  };
}
