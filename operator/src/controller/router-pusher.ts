// Keeps this replica's router fed: collects every cluster's entry, builds one RouterConfig, and
// PUTs it to the router's admin Unix socket whenever it changes (and on resync, so a restarted
// router gets its configuration back). The router's answer (the config hash) is the
// acknowledgement the planner turns into RouterConfigured.
import { Client } from 'undici';
import {
  canonicalJson,
  validateRouterConfig,
  type RouterConfigInput,
  type RouterPeer,
} from '../../../router/src/config/index.js';
import type { ClusterEntry } from '../plan/router-entry.js';
import type { RouterState } from '../plan/planner.js';

export interface RouterPusherOptions {
  socketPath: string;
  /** Per-request timeout against the router. */
  requestTimeoutMs?: number;
  /** Entry changes within this window go out in one push. */
  debounceMs?: number;
  /** Retry delays after a failed push (doubling). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Keys whose RouterState changed (the reconciler re-enqueues them). */
  onStateChanged?: (keys: string[]) => void;
  onPushed?: (
    result: 'success' | 'rejected' | 'unreachable' | 'unchanged',
    info: { hash?: string; error?: string },
  ) => void;
  /** The router's validator (tests inject a counting one). */
  validate?: typeof validateRouterConfig;
}

interface EntryRecord {
  entry: ClusterEntry;
  entryKey: string;
  /** creationTimestamp: the older cluster keeps a contested model name. */
  createdAt: string;
  /** The contract's verdict on this entry alone (errors or null), computed once per entryKey. */
  verdict?: string[] | null;
}

export interface BuiltConfig {
  config: RouterConfigInput;
  included: string[];
  /** Keys of config.clusters, in the document's order. */
  clusterKeys: string[];
  excluded: Map<string, NonNullable<RouterState['failure']>>;
}

/** Why the router contract refuses one cluster's entry on its own (errors), or undefined if it accepts it. */
export type EntryCheck = (key: string, entry: ClusterEntry) => string[] | undefined;

export const checkEntryAlone: EntryCheck = (_key, entry) => {
  const alone = validateRouterConfig({ clusters: [entry] });
  return alone.ok ? undefined : alone.errors;
};

/** Builds the document from the entries: model conflicts and entries the contract refuses are left out. */
export function buildRouterConfig(
  entries: ReadonlyMap<string, { entry: ClusterEntry; createdAt: string }>,
  peers: readonly RouterPeer[],
  generation: number,
  check: EntryCheck = checkEntryAlone,
): BuiltConfig {
  const excluded = new Map<string, NonNullable<RouterState['failure']>>();
  const ordered = [...entries.entries()].sort(([ka, a], [kb, b]) =>
    a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? -1 : 1) : ka < kb ? -1 : 1,
  );
  const modelOwner = new Map<string, string>();
  const kept: Array<[string, ClusterEntry]> = [];
  for (const [key, { entry }] of ordered) {
    const taken = entry.models
      .map((m) => [m, modelOwner.get(m)] as const)
      .find(([, owner]) => owner !== undefined);
    if (taken) {
      excluded.set(key, {
        reason: 'ModelConflict',
        message: `Model ${taken[0]} is already served by ${taken[1]} (created earlier); change spec.model.servedName`,
      });
      continue;
    }
    const errors = check(key, entry);
    if (errors) {
      excluded.set(key, {
        reason: 'ConfigRejected',
        message: `The router configuration contract refused this cluster: ${errors.join('; ')}`,
      });
      continue;
    }
    entry.models.forEach((m) => modelOwner.set(m, key));
    kept.push([key, entry]);
  }
  const included = kept.map(([key]) => key);
  // Stable sort: the document's order is a function of its content.
  kept.sort(([, a], [, b]) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    config: { generation, clusters: kept.map(([, e]) => e), peers: [...peers] },
    included,
    clusterKeys: kept.map(([key]) => key),
    excluded,
  };
}

export class RouterConfigPusher {
  private readonly entries = new Map<string, EntryRecord>();
  private peers: RouterPeer[] = [];
  private readonly acked = new Map<string, { entryKey: string; endpointIds: string[] }>();
  private readonly failures = new Map<string, NonNullable<RouterState['failure']>>();
  private ackedHash: string | undefined;
  private generation = 0;
  private lastPushedKey = '';
  private readonly client: Client;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private forceNext = false;
  private retries = 0;
  private stopped = false;

  private readonly validate: typeof validateRouterConfig;

  constructor(private readonly opts: RouterPusherOptions) {
    this.validate = opts.validate ?? validateRouterConfig;
    const timeout = opts.requestTimeoutMs ?? 5_000;
    this.client = new Client('http://router-admin', {
      socketPath: opts.socketPath,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connectTimeout: timeout,
    });
  }

  /** entryKey is canonicalJson(entry); callers that already have it (the planner) pass it in. */
  setEntry(key: string, entry: ClusterEntry, createdAt: string, entryKey = canonicalJson(entry)): void {
    const old = this.entries.get(key);
    if (old?.entryKey === entryKey && old.createdAt === createdAt) return;
    const rec: EntryRecord = { entry, entryKey, createdAt };
    if (old?.entryKey === entryKey) rec.verdict = old.verdict;
    this.entries.set(key, rec);
    this.schedule();
  }

  removeEntry(key: string): void {
    if (!this.entries.delete(key)) return;
    this.acked.delete(key);
    this.failures.delete(key);
    this.schedule();
  }

  hasEntry(key: string): boolean {
    return this.entries.has(key);
  }

  setPeers(peers: readonly RouterPeer[]): void {
    this.peers = [...peers];
    this.schedule();
  }

  /** What the router did with this cluster's entry, for the planner. */
  stateOf(key: string): RouterState {
    const acked = this.acked.get(key);
    const state: RouterState = {};
    if (acked) {
      state.ackedEntryKey = acked.entryKey;
      state.ackedEndpointIds = acked.endpointIds;
      if (this.ackedHash) state.ackedHash = this.ackedHash;
    }
    const failure = this.failures.get(key);
    if (failure) state.failure = failure;
    return state;
  }

  /** Re-checks the router even if nothing changed (resync): a restarted router gets its config back. */
  resync(): void {
    this.forceNext = true;
    this.schedule(0);
  }

  /** Resolves when no push is pending or running (tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running || this.timer) {
      await (this.running ?? new Promise((r) => setTimeout(r, 5)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.client.close().catch(() => undefined);
  }

  private schedule(delayMs = this.opts.debounceMs ?? 10): void {
    if (this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pushOnce().finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule();
        }
      });
    }, delayMs);
  }

  private async pushOnce(): Promise<void> {
    const force = this.forceNext;
    this.forceNext = false;
    const built = buildRouterConfig(this.entries, this.peers, this.generation + 1, this.checkEntry);
    // The entries' canonical JSON is already known (entryKey), so the document is never re-serialised.
    const contentKey = [
      canonicalJson(built.config.peers),
      ...built.clusterKeys.map((k) => this.entries.get(k)!.entryKey),
    ].join('\n');
    const before = this.snapshot();
    for (const [key, failure] of built.excluded) {
      this.failures.set(key, failure);
      this.acked.delete(key);
    }
    try {
      if (!force && contentKey === this.lastPushedKey) {
        this.opts.onPushed?.('unchanged', { hash: this.ackedHash });
        return;
      }
      const validated = this.validate(built.config);
      if (!validated.ok) throw new Error(`built an invalid router config: ${validated.errors.join('; ')}`);
      if (force && (await this.routerHash()) === validated.hash) {
        this.lastPushedKey = contentKey;
        this.opts.onPushed?.('unchanged', { hash: validated.hash });
        return;
      }
      this.generation++;
      const res = await this.client.request({
        path: '/admin/config',
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(built.config),
      });
      const text = await res.body.text();
      if (res.statusCode === 200) {
        const { hash } = JSON.parse(text) as { hash?: string };
        this.ackedHash = hash ?? validated.hash;
        this.lastPushedKey = contentKey;
        this.retries = 0;
        for (const key of built.included) {
          const rec = this.entries.get(key)!;
          this.acked.set(key, {
            entryKey: rec.entryKey,
            endpointIds: [...rec.entry.prefill.endpoints, ...rec.entry.decode.endpoints].map((e) => e.id),
          });
          this.failures.delete(key);
        }
        this.opts.onPushed?.('success', { hash: this.ackedHash });
        return;
      }
      // The router refused the document: it keeps routing with its previous one.
      const message = `The router rejected the configuration (HTTP ${res.statusCode}): ${rejectionText(text)}`;
      for (const key of built.included) this.failures.set(key, { reason: 'ConfigRejected', message });
      this.lastPushedKey = '';
      this.opts.onPushed?.('rejected', { error: message });
      this.retryLater();
    } catch (err) {
      const message = `Cannot reach the router admin socket ${this.opts.socketPath}: ${(err as Error).message}`;
      for (const key of built.included) this.failures.set(key, { reason: 'PushFailed', message });
      this.lastPushedKey = '';
      this.opts.onPushed?.('unreachable', { error: message });
      this.retryLater();
    } finally {
      const changed = this.changedSince(before);
      if (changed.length) this.opts.onStateChanged?.(changed);
    }
  }

  private async routerHash(): Promise<string | undefined> {
    try {
      const res = await this.client.request({ path: '/admin/config', method: 'GET' });
      const text = await res.body.text();
      if (res.statusCode !== 200) return undefined;
      return (JSON.parse(text) as { hash?: string }).hash;
    } catch {
      return undefined;
    }
  }

  /** Validates an entry alone only when its content changed since the last verdict. */
  private readonly checkEntry: EntryCheck = (key, entry) => {
    const rec = this.entries.get(key);
    if (rec?.verdict !== undefined) return rec.verdict ?? undefined;
    const alone = this.validate({ clusters: [entry] });
    const verdict = alone.ok ? null : alone.errors;
    if (rec) rec.verdict = verdict;
    return verdict ?? undefined;
  };

  private retryLater(): void {
    const base = this.opts.retryBaseMs ?? 200;
    const max = this.opts.retryMaxMs ?? 10_000;
    const delay = Math.min(max, base * 2 ** Math.min(this.retries, 20));
    this.retries++;
    this.forceNext = true;
    this.dirty = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    setTimeout(() => this.schedule(0), delay).unref();
  }

  /** The part of a key's state that matters to its plan (the whole-config hash alone does not). */
  private snapshot(): Map<string, KeyState> {
    const out = new Map<string, KeyState>();
    for (const key of this.entries.keys()) out.set(key, this.stateKey(key));
    return out;
  }

  private stateKey(key: string): KeyState {
    const f = this.failures.get(key);
    return { acked: this.acked.get(key)?.entryKey, reason: f?.reason, message: f?.message };
  }

  private changedSince(before: Map<string, KeyState>): string[] {
    return [...this.entries.keys()].filter((k) => {
      const a = before.get(k);
      const b = this.stateKey(k);
      return !a || a.acked !== b.acked || a.reason !== b.reason || a.message !== b.message;
    });
  }
}

interface KeyState {
  acked: string | undefined;
  reason: string | undefined;
  message: string | undefined;
}

function rejectionText(body: string): string {
  try {
    const err = (JSON.parse(body) as { error?: { message?: string; details?: string[] } }).error;
    return [err?.message, ...(err?.details ?? [])].filter(Boolean).join('; ') || body.slice(0, 500);
  } catch {
    return body.slice(0, 500);
  }
}
