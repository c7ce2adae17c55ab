// Where a pod becomes a router endpoint. Pure: pods in, pool members and endpoints out.
//
// A pod is routable when it is Ready, has a pod IP, is not terminating and declares every port its
// role and connector need. Ports come from the pod's disagg.dev/* annotations, else from named
// container ports; a missing or malformed declaration leaves the pod out with a problem that names
// the pod and the annotation. Nothing is ever guessed (a wrong port would send KV to nowhere).
import type { DecodeEndpoint, Endpoint } from '../../../router/src/config/index.js';
import {
  ANN_HTTP_PORT,
  ANN_LMCACHE_ALLOC_PORTS,
  ANN_LMCACHE_INIT_PORTS,
  ANN_NIXL_PORT,
  LABEL_CLUSTER,
  LABEL_ROLE,
  PORT_NAME_HTTP,
  PORT_NAME_NIXL,
  portNameLmcacheAlloc,
  portNameLmcacheInit,
} from '../api/labels.js';
import { POOL_ROLES, type ConnectorType, type DisaggCluster, type Pod, type PoolRole } from '../api/types.js';
import { matchesSelector } from './label-selector.js';

export interface PodPorts {
  http: number;
  nixlSideChannel?: number;
  lmcacheInit?: number[];
  lmcacheAlloc?: number[];
}

export interface DiscoveredPod {
  pod: Pod;
  /** `<namespace>/<name>`, also the router endpoint id. */
  id: string;
  ready: boolean;
  terminating: boolean;
  /** Ready, has an IP, not terminating and ports valid (the planner may still drain it). */
  routable: boolean;
  /** Set when the ports are valid and the pod has an IP. */
  endpoint?: DecodeEndpoint;
  /** Why the pod's port declarations were refused, naming the pod and the annotation. */
  problem?: string;
}

export interface PodProblem {
  reason: 'InvalidPodPorts' | 'AmbiguousPodRole';
  pod: string;
  message: string;
}

export interface PoolDiscovery {
  role: PoolRole;
  pods: DiscoveredPod[];
}

export interface ClusterDiscovery {
  prefill: PoolDiscovery;
  decode: PoolDiscovery;
  problems: PodProblem[];
}

export function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function isTerminating(pod: Pod): boolean {
  return Boolean(pod.metadata.deletionTimestamp) || ['Succeeded', 'Failed'].includes(pod.status?.phase ?? '');
}

/** Which pool a pod belongs to: the operator's labels for template pools, the selector for adopted ones. */
export function poolsClaiming(cluster: DisaggCluster, pod: Pod): PoolRole[] {
  const labels = pod.metadata.labels ?? {};
  if (labels[LABEL_CLUSTER] !== cluster.metadata.name) return [];
  const roles: PoolRole[] = [];
  for (const role of POOL_ROLES) {
    const pool = cluster.spec[role];
    const claims = pool.selector ? matchesSelector(labels, pool.selector) : labels[LABEL_ROLE] === role;
    if (claims) roles.push(role);
  }
  return roles;
}

/** Splits the cluster's pods into pools and turns each into an endpoint or a reported problem. */
export function discoverEndpoints(cluster: DisaggCluster, pods: readonly Pod[]): ClusterDiscovery {
  const out: ClusterDiscovery = {
    prefill: { role: 'prefill', pods: [] },
    decode: { role: 'decode', pods: [] },
    problems: [],
  };
  const connector = cluster.spec.connector.type;
  for (const pod of [...pods].sort(byName)) {
    const roles = poolsClaiming(cluster, pod);
    const id = podId(pod);
    if (roles.length > 1) {
      out.problems.push({
        reason: 'AmbiguousPodRole',
        pod: id,
        message: `pod ${id} matches both the prefill and the decode selector; make the selectors disjoint`,
      });
      continue;
    }
    if (roles.length === 0) continue;
    const discovered = discoverPod(pod, roles[0]!, connector);
    if (discovered.problem && !discovered.terminating) {
      out.problems.push({ reason: 'InvalidPodPorts', pod: id, message: discovered.problem });
    }
    out[roles[0]!].pods.push(discovered);
  }
  return out;
}

export function discoverPod(pod: Pod, role: PoolRole, connector: ConnectorType): DiscoveredPod {
  const id = podId(pod);
  const ready = isPodReady(pod);
  const terminating = isTerminating(pod);
  const ports = podPorts(pod, role, connector);
  const ip = pod.status?.podIP;
  const base = { pod, id, ready, terminating };
  if (!ports.ok) return { ...base, routable: false, problem: ports.problem };
  if (!ip) return { ...base, routable: false };
  return { ...base, routable: ready && !terminating, endpoint: toEndpoint(id, ip, ports.ports, connector) };
}

function toEndpoint(id: string, ip: string, ports: PodPorts, connector: ConnectorType): DecodeEndpoint {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const endpoint: DecodeEndpoint = { id, url: `http://${host}:${ports.http}` };
  if (connector === 'nixl' && ports.nixlSideChannel !== undefined) {
    endpoint.nixl = { sideChannelHost: ip, sideChannelPort: ports.nixlSideChannel };
  }
  if (connector === 'lmcache' && ports.lmcacheInit && ports.lmcacheAlloc) {
    endpoint.lmcache = { receiverHost: ip, initPorts: ports.lmcacheInit, allocPorts: ports.lmcacheAlloc };
  }
  return endpoint;
}

/** The plain prefill endpoint (the router needs no connector metadata for prefillers). */
export function asPrefillEndpoint(ep: DecodeEndpoint): Endpoint {
  return { id: ep.id, url: ep.url };
}

type PortsResult = { ok: true; ports: PodPorts } | { ok: false; problem: string };

/** Reads the ports a pod of this role needs for this connector. */
export function podPorts(pod: Pod, role: PoolRole, connector: ConnectorType): PortsResult {
  const id = podId(pod);
  const http = singlePort(pod, ANN_HTTP_PORT, PORT_NAME_HTTP);
  if (!http.ok) return { ok: false, problem: `pod ${id}: ${http.problem}` };
  const ports: PodPorts = { http: http.port };
  if (role === 'decode' && connector === 'nixl') {
    const nixl = singlePort(pod, ANN_NIXL_PORT, PORT_NAME_NIXL);
    if (!nixl.ok) return { ok: false, problem: `pod ${id}: ${nixl.problem}` };
    ports.nixlSideChannel = nixl.port;
  }
  if (role === 'decode' && connector === 'lmcache') {
    const init = portList(pod, ANN_LMCACHE_INIT_PORTS, portNameLmcacheInit);
    if (!init.ok) return { ok: false, problem: `pod ${id}: ${init.problem}` };
    const alloc = portList(pod, ANN_LMCACHE_ALLOC_PORTS, portNameLmcacheAlloc);
    if (!alloc.ok) return { ok: false, problem: `pod ${id}: ${alloc.problem}` };
    if (init.ports.length !== alloc.ports.length) {
      return {
        ok: false,
        problem:
          `pod ${id}: ${ANN_LMCACHE_INIT_PORTS} has ${init.ports.length} port(s) but ${ANN_LMCACHE_ALLOC_PORTS} ` +
          `has ${alloc.ports.length}; both need one port per TP rank`,
      };
    }
    ports.lmcacheInit = init.ports;
    ports.lmcacheAlloc = alloc.ports;
  }
  return { ok: true, ports };
}

type OnePort = { ok: true; port: number } | { ok: false; problem: string };
type ManyPorts = { ok: true; ports: number[] } | { ok: false; problem: string };

function singlePort(pod: Pod, annotation: string, portName: string): OnePort {
  const raw = pod.metadata.annotations?.[annotation];
  if (raw !== undefined) {
    const port = parsePort(raw);
    return port === undefined
      ? { ok: false, problem: `annotation ${annotation}="${raw}" is not a port number (1-65535)` }
      : { ok: true, port };
  }
  const named = namedPort(pod, portName);
  if (named !== undefined) return { ok: true, port: named };
  return {
    ok: false,
    problem: `annotation ${annotation} is missing and no container port is named "${portName}"`,
  };
}

function portList(pod: Pod, annotation: string, nameOf: (rank: number) => string): ManyPorts {
  const raw = pod.metadata.annotations?.[annotation];
  if (raw !== undefined) {
    const parts = raw.split(',').map((s) => s.trim());
    const ports = parts.map(parsePort);
    if (parts.length === 0 || ports.some((p) => p === undefined)) {
      return {
        ok: false,
        problem: `annotation ${annotation}="${raw}" is not a comma-separated list of port numbers (1-65535), one per TP rank`,
      };
    }
    return { ok: true, ports: ports as number[] };
  }
  const ports: number[] = [];
  for (let rank = 0; ; rank++) {
    const p = namedPort(pod, nameOf(rank));
    if (p === undefined) break;
    ports.push(p);
  }
  if (ports.length === 0) {
    return {
      ok: false,
      problem: `annotation ${annotation} is missing and no container port is named "${nameOf(0)}"`,
    };
  }
  return { ok: true, ports };
}

function parsePort(raw: string): number | undefined {
  if (!/^\d{1,5}$/.test(raw.trim())) return undefined;
  const n = Number(raw.trim());
  return n >= 1 && n <= 65535 ? n : undefined;
}

function namedPort(pod: Pod, name: string): number | undefined {
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === name) return p.containerPort;
  }
  return undefined;
}

export function podId(pod: Pod): string {
  return `${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}`;
}

function byName(a: Pod, b: Pod): number {
  const x = a.metadata.name ?? '';
  const y = b.metadata.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}
