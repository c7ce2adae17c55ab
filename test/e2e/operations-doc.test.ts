// docs/operations.md stays true to the code: every metric it names is one the router or the
// operator registers (and every one they register is documented), every condition reason and event
// of operator/src/api/conditions.ts has a row, every LMCache notification outcome the router counts
// is explained, the dashboard's metrics are all described, and the threshold table has the header
// test/demo/threshold-sweep.ts prints.
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT, REASON } from '../../operator/src/api/conditions.js';
import { createOperatorMetrics } from '../../operator/src/observability/metrics.js';
import { createMetrics } from '../../router/src/metrics.js';
import { REPO_ROOT } from '../cluster/bins.js';

const doc = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
const OWN_PREFIX = /^(router|disagg|controller_runtime|workqueue|leader_election)_/;

/** Names the project registers itself (prom-client's default process metrics left out). */
function registered(): Set<string> {
  const names = new Set<string>();
  for (const registry of [
    createMetrics().registry,
    createOperatorMetrics({ defaultMetrics: false }).registry,
  ]) {
    for (const m of registry.getMetricsAsArray()) if (OWN_PREFIX.test(m.name)) names.add(m.name);
  }
  return names;
}

const baseName = (n: string): string => n.replace(/_(bucket|sum|count)$/, '');
// Identifiers with a metric-like prefix that are not metrics (LMCache's kv_transfer_params field).
const NOT_METRICS = new Set(['disagg_spec']);

describe('docs/operations.md', () => {
  const metrics = registered();

  test('names only metrics that exist, and documents every metric the router and the operator register', () => {
    const mentioned = new Set(
      [...doc.matchAll(/\b((?:router|disagg|controller_runtime|workqueue|leader_election)_[a-z_]+)\b/g)].map(
        (m) => baseName(m[1]!),
      ),
    );
    expect([...mentioned].filter((n) => !metrics.has(n) && !NOT_METRICS.has(n)).sort()).toEqual([]);
    expect([...metrics].filter((n) => !doc.includes(`\`${n}\``)).sort()).toEqual([]);
  });

  test('every condition reason and event has its row', () => {
    const rows = doc
      .split('\n')
      .filter(
        (l) =>
          l.startsWith('| `Ready') ||
          l.startsWith('| `Progressing') ||
          l.startsWith('| `Degraded') ||
          l.startsWith('| `RouterConfigured'),
      );
    const reasonsInTable = new Set(
      rows.flatMap((r) => [...r.split('|')[2]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!)),
    );
    expect(Object.values(REASON).filter((r) => !reasonsInTable.has(r))).toEqual([]);
    expect([...reasonsInTable].filter((r) => !(Object.values(REASON) as string[]).includes(r))).toEqual([]);
    for (const e of Object.values(EVENT)) expect(doc).toContain(`\`${e}\``);
  });

  test('every LMCache notification outcome the router counts is explained', () => {
    const source = readFileSync(join(REPO_ROOT, 'router', 'src', 'kv-notify.ts'), 'utf8');
    const outcomes = new Set([...source.matchAll(/count\('(\w+)'\)/g)].map((m) => m[1]!));
    expect(outcomes.size).toBeGreaterThanOrEqual(6);
    for (const o of outcomes) expect(doc).toMatch(new RegExp(`^\\| \`${o}\` \\|`, 'm'));
  });

  test("the dashboard's metrics are all described", () => {
    const dashboard = readFileSync(
      join(REPO_ROOT, 'charts', 'disagg-operator', 'dashboards', 'disagg.json'),
      'utf8',
    );
    const used = new Set(
      [
        ...dashboard.matchAll(
          /\b((?:router|disagg|controller_runtime|workqueue|leader_election)_[a-z_]+)\b/g,
        ),
      ].map((m) => baseName(m[1]!)),
    );
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !doc.includes(`\`${n}\``))).toEqual([]);
  });

  test('the threshold table has the columns threshold-sweep.ts prints', () => {
    const script = readFileSync(join(REPO_ROOT, 'test', 'demo', 'threshold-sweep.ts'), 'utf8');
    const header = /'(\| prompt tokens [^']*)'/.exec(script)?.[1];
    expect(header).toBeDefined();
    expect(doc).toContain(header!);
    expect(doc).toContain('node --import tsx test/demo/threshold-sweep.ts');
  });
});
