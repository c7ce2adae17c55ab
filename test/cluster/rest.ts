// Plain JSON requests to the API server with a kubeconfig's credentials. The harness uses these
// rather than the generated clients where it needs exact bodies (patch content types, MicroTime
// strings) and the raw JSON that watches deliver.
import type { KubeConfig } from '@kubernetes/client-node';
import { request, type RequestOptions } from 'node:https';

export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${statusCode}: ${KubeApiError.reason(body)}`);
  }

  private static reason(body: string): string {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body.slice(0, 300);
    }
  }
}

export type PatchType = 'merge' | 'strategic' | 'json';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  patchType?: PatchType;
  timeoutMs?: number;
}

/** Sends one request; resolves with the parsed JSON body, rejects with KubeApiError on >= 300. */
export async function kubeRequest<T = unknown>(kc: KubeConfig, spec: RequestSpec): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server + spec.path);
  const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
  const opts: RequestOptions = {
    method: spec.method,
    hostname: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    headers: {
      Accept: 'application/json',
      ...(payload !== undefined
        ? {
            'Content-Type': spec.patchType ? PATCH_CONTENT_TYPE[spec.patchType] : 'application/json',
            'Content-Length': Buffer.byteLength(payload),
          }
        : {}),
    },
    timeout: spec.timeoutMs ?? 15_000,
  };
  await kc.applyToHTTPSOptions(opts);
  return new Promise<T>((resolve, reject) => {
    const req = request(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status >= 300) {
          reject(new KubeApiError(status, text, `${spec.method} ${spec.path}`));
          return;
        }
        try {
          resolve((text ? JSON.parse(text) : {}) as T);
        } catch {
          resolve(text as T);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${spec.method} ${spec.path}: timed out`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.statusCode === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.statusCode === 409;
}
