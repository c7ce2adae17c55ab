import { createHash } from 'node:crypto';
import { routerConfigSchema, type RouterConfig } from './schema.js';

export type ValidationResult =
  { ok: true; config: RouterConfig; hash: string } | { ok: false; errors: string[] };

/** Validates an untrusted document; errors read like `clusters[0].routingThreshold: routingThreshold is a token count >= 0`. */
export function validateRouterConfig(doc: unknown): ValidationResult {
  const parsed = routerConfigSchema.safeParse(doc);
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map((i) => `${formatPath(i.path) || '(document)'}: ${i.message}`),
    };
  }
  return { ok: true, config: parsed.data, hash: configHash(parsed.data) };
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/**
 * Content hash of a validated config (generation excluded, so re-pushing the same content
 * with a new generation keeps the hash). Keys are sorted, so key order never matters.
 */
export function configHash(config: RouterConfig): string {
  const { generation: _generation, ...content } = config;
  return createHash('sha256').update(canonicalJson(content)).digest('hex').slice(0, 16);
}

/** Key-order-independent JSON, to compare documents by content (the operator uses it too). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
