// How the loopback kubelet turns a pod's first container into an engine-simulator command line
// (pod contract in CONTRACTS.md): the container's args and env as a kubelet would resolve them,
// plus --host <podIP> --port <http port>.
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';

export const DEFAULT_HTTP_PORT = 8000;
export const HTTP_PORT_ANNOTATION = 'disagg.dev/http-port';

export interface PodPlacement {
  podIP: string;
  hostIP: string;
  nodeName: string;
}

export interface EngineLaunch {
  args: string[];
  env: Record<string, string>;
  httpPort: number;
  /** env entries that could not be resolved (configMap/secret refs), for the kubelet's log. */
  unresolvedEnv: string[];
}

/** annotation disagg.dev/http-port, else the container port named http, else the first one, else 8000. */
export function httpPortOf(pod: V1Pod): number {
  const fromAnnotation = Number(pod.metadata?.annotations?.[HTTP_PORT_ANNOTATION]);
  if (Number.isInteger(fromAnnotation) && fromAnnotation > 0) return fromAnnotation;
  const ports = pod.spec?.containers?.[0]?.ports ?? [];
  return ports.find((p) => p.name === 'http')?.containerPort ?? ports[0]?.containerPort ?? DEFAULT_HTTP_PORT;
}

/** Value of a downward-API fieldRef, or undefined for paths a loopback pod cannot answer. */
export function fieldRefValue(pod: V1Pod, at: PodPlacement, fieldPath: string): string | undefined {
  const meta = pod.metadata ?? {};
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (keyed) return (keyed[1] === 'labels' ? meta.labels : meta.annotations)?.[keyed[2]];
  switch (fieldPath) {
    case 'metadata.name':
      return meta.name;
    case 'metadata.namespace':
      return meta.namespace;
    case 'metadata.uid':
      return meta.uid;
    case 'spec.nodeName':
      return at.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName;
    case 'status.podIP':
    case 'status.podIPs':
      return at.podIP;
    case 'status.hostIP':
    case 'status.hostIPs':
      return at.hostIP;
    default:
      return undefined;
  }
}

/** Expands $(VAR) from env like a kubelet: $$ escapes, unknown references stay as written. */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m: string, name?: string) => {
    if (m === '$$') return '$';
    return name !== undefined && name in env ? env[name] : m;
  });
}

function resolveEnv(
  vars: V1EnvVar[],
  pod: V1Pod,
  at: PodPlacement,
): { env: Record<string, string>; unresolved: string[] } {
  const env: Record<string, string> = {};
  const unresolved: string[] = [];
  for (const v of vars) {
    if (v.valueFrom?.fieldRef) {
      const value = fieldRefValue(pod, at, v.valueFrom.fieldRef.fieldPath);
      if (value === undefined) unresolved.push(v.name);
      else env[v.name] = value;
    } else if (v.valueFrom) {
      unresolved.push(v.name);
    } else {
      // later entries may refer to earlier ones, as in a real pod
      env[v.name] = expandVars(v.value ?? '', env);
    }
  }
  return { env, unresolved };
}

export function engineLaunch(pod: V1Pod, at: PodPlacement): EngineLaunch {
  const container: V1Container | undefined = pod.spec?.containers?.[0];
  const httpPort = httpPortOf(pod);
  const { env, unresolved } = resolveEnv(container?.env ?? [], pod, at);
  const args = (container?.args ?? []).map((a) => expandVars(a, env));
  return {
    args: [...args, '--host', at.podIP, '--port', String(httpPort)],
    env,
    httpPort,
    unresolvedEnv: unresolved,
  };
}
