// An in-memory KubeApi: objects by path, resourceVersion conflicts like the API server, and a log
// of every write so tests can assert what the controller sent.
import { KubeApiError, type KubeApi, type ListResult } from '../src/controller/kube-client.js';

interface Stored {
  metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

export interface Write {
  verb: 'create' | 'replace' | 'apply' | 'mergePatch' | 'delete';
  path: string;
  body?: unknown;
}

export class FakeKube implements KubeApi {
  readonly objects = new Map<string, Stored>();
  readonly writes: Write[] = [];
  private rv = 1;
  /** When set, every call throws it (an unreachable API server). */
  failWith: Error | undefined;

  async get<T>(path: string): Promise<T> {
    this.check();
    const o = this.objects.get(path);
    if (!o) throw new KubeApiError(404, 'NotFound', `${path} not found`);
    return structuredClone(o) as T;
  }

  async list<T>(
    path: string,
    query?: Record<string, string | number | boolean | undefined>,
  ): Promise<ListResult<T>> {
    this.check();
    const selector = typeof query?.labelSelector === 'string' ? query.labelSelector : undefined;
    const items = [...this.objects.entries()]
      .filter(([p]) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes('/'))
      .map(([, o]) => o)
      .filter((o) => {
        if (!selector) return true;
        const [k, v] = selector.split('=');
        return o.metadata?.labels?.[k!] === v;
      });
    return { items: structuredClone(items) as T[], metadata: { resourceVersion: String(this.rv) } };
  }

  async create<T>(path: string, body: unknown): Promise<T> {
    this.check();
    const b = structuredClone(body) as Stored;
    const full = `${path}/${b.metadata?.name}`;
    if (this.objects.has(full)) throw new KubeApiError(409, 'AlreadyExists', `${full} exists`);
    this.writes.push({ verb: 'create', path: full, body });
    return this.store(full, b) as T;
  }

  async replace<T>(path: string, body: unknown): Promise<T> {
    this.check();
    const b = structuredClone(body) as Stored;
    const cur = this.objects.get(path);
    if (!cur) throw new KubeApiError(404, 'NotFound', `${path} not found`);
    if (b.metadata?.resourceVersion && b.metadata.resourceVersion !== cur.metadata?.resourceVersion) {
      throw new KubeApiError(409, 'Conflict', `${path}: the object has been modified`);
    }
    this.writes.push({ verb: 'replace', path, body });
    return this.store(path, b) as T;
  }

  async apply<T>(path: string, body: unknown): Promise<T> {
    this.check();
    this.writes.push({ verb: 'apply', path, body });
    const b = structuredClone(body) as Stored & { metadata: { generation?: number } };
    const cur = this.objects.get(path) as (Stored & { metadata: { generation?: number } }) | undefined;
    b.metadata.generation = (cur?.metadata.generation ?? 0) + 1;
    return this.store(path, b) as T;
  }

  async mergePatch<T>(path: string, body: unknown): Promise<T> {
    this.check();
    this.writes.push({ verb: 'mergePatch', path, body });
    const target = path.endsWith('/status') ? path.slice(0, -'/status'.length) : path;
    const cur = this.objects.get(target) ?? {};
    return this.store(target, mergePatch(cur, body) as Stored) as T;
  }

  async delete(path: string): Promise<void> {
    this.check();
    if (!this.objects.delete(path)) throw new KubeApiError(404, 'NotFound', `${path} not found`);
    this.writes.push({ verb: 'delete', path });
  }

  put(path: string, obj: Stored): void {
    this.store(path, structuredClone(obj));
  }

  writesTo(verb: Write['verb'], pathPart = ''): Write[] {
    return this.writes.filter((w) => w.verb === verb && w.path.includes(pathPart));
  }

  private store(path: string, obj: Stored): Stored {
    obj.metadata = { ...(obj.metadata ?? {}), resourceVersion: String(++this.rv) };
    this.objects.set(path, obj);
    return structuredClone(obj);
  }

  private check(): void {
    if (this.failWith) throw this.failWith;
  }
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
