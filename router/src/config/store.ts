// Holds the config in force. A swap replaces one immutable snapshot object: a request reads the
// snapshot once when it arrives and keeps it to the end, so in-flight requests never see a mix.
import type { ClusterConfig, RouterConfig } from './schema.js';
import { validateRouterConfig, type ValidationResult } from './validate.js';

export type ConfigSource = 'initial' | 'flags' | 'file' | 'admin';

export interface ConfigSnapshot {
  readonly config: RouterConfig;
  readonly hash: string;
  readonly generation: number;
  readonly appliedAt: Date;
  readonly source: ConfigSource;
  readonly clusterByModel: ReadonlyMap<string, ClusterConfig>;
}

export type ApplyListener = (next: ConfigSnapshot, previous: ConfigSnapshot) => void;

export class ConfigStore {
  private snapshot: ConfigSnapshot;
  private readonly listeners: ApplyListener[] = [];

  constructor() {
    const empty = validateRouterConfig({ generation: 0, clusters: [] });
    if (!empty.ok) throw new Error('empty config must validate');
    this.snapshot = makeSnapshot(empty.config, empty.hash, 'initial');
  }

  current(): ConfigSnapshot {
    return this.snapshot;
  }

  /** Validates and, when valid, swaps atomically; an invalid document changes nothing. */
  apply(doc: unknown, source: ConfigSource): ValidationResult {
    const result = validateRouterConfig(doc);
    if (!result.ok) return result;
    const previous = this.snapshot;
    this.snapshot = makeSnapshot(result.config, result.hash, source);
    for (const l of this.listeners) l(this.snapshot, previous);
    return result;
  }

  onApplied(listener: ApplyListener): void {
    this.listeners.push(listener);
  }
}

function makeSnapshot(config: RouterConfig, hash: string, source: ConfigSource): ConfigSnapshot {
  const clusterByModel = new Map<string, ClusterConfig>();
  for (const c of config.clusters) for (const m of c.models) clusterByModel.set(m, c);
  return Object.freeze({
    config,
    hash,
    generation: config.generation,
    appliedAt: new Date(),
    source,
    clusterByModel,
  });
}
