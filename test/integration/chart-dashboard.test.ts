// The Grafana dashboard (charts/disagg-operator/dashboards/disagg.json) queries only metrics and
// labels the router and operator really export, covers what the issue lists, and ships unchanged in
// the optional ConfigMap.
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { createOperatorMetrics } from '../../operator/src/observability/metrics.js';
import { createMetrics } from '../../router/src/metrics.js';
import { CHART_DIR, HelmSandbox, findObject } from './chart-helm.js';

jest.setTimeout(120_000);

const helm = new HelmSandbox();
afterAll(() => helm.dispose());

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string }>;
}
const dashboardText = readFileSync(join(CHART_DIR, 'dashboards', 'disagg.json'), 'utf8');
const dashboard = JSON.parse(dashboardText) as { uid: string; title: string; panels: Panel[] };
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');
const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

// Labels Prometheus adds when it scrapes through the ServiceMonitor (and `le` of histogram buckets).
const TARGET_LABELS = [
  'namespace',
  'pod',
  'service',
  'container',
  'endpoint',
  'job',
  'instance',
  'le',
  'exported_namespace',
];

/** name -> label names, for every series the two registries can export (histograms as _bucket/_sum/_count). */
function exported(...registries: Registry[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const registry of registries) {
    for (const m of registry.getMetricsAsArray()) {
      const { name, labelNames = [] } = m as unknown as { name: string; labelNames?: string[] };
      const type = (m as unknown as { type: string }).type;
      const names = type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
      for (const n of names) out.set(n, [...labelNames]);
    }
  }
  return out;
}
const metrics = exported(createMetrics().registry, createOperatorMetrics({ defaultMetrics: false }).registry);
const OUR_PREFIX = /\b(router_|disagg_|controller_runtime_|workqueue_|leader_election_)[a-z0-9_]*/g;

describe('Grafana dashboard', () => {
  test('is a dashboard with a stable uid whose panels use the datasource variable', () => {
    expect(dashboard.uid).toBe('disagg-operator');
    expect(queryPanels.length).toBeGreaterThan(0);
    for (const p of queryPanels) {
      expect({ panel: p.title, uid: p.datasource?.uid }).toEqual({ panel: p.title, uid: '${datasource}' });
      expect(p.targets?.length).toBeGreaterThan(0);
    }
  });

  test('queries only metrics the router and operator export', () => {
    for (const { panel, expr } of exprs) {
      const used = expr.match(OUR_PREFIX) ?? [];
      expect({ panel, used: used.length > 0 }).toEqual({ panel, used: true });
      for (const name of used)
        expect({ panel, name, exported: metrics.has(name) }).toEqual({ panel, name, exported: true });
    }
  });

  test('filters and groups only by labels those metrics carry', () => {
    for (const { panel, expr } of exprs) {
      const names = expr.match(OUR_PREFIX) ?? [];
      for (const m of expr.matchAll(/([a-z_:][a-z0-9_:]*)\{([^}]*)\}/g)) {
        const allowed = [...(metrics.get(m[1]!) ?? []), ...TARGET_LABELS];
        for (const [, label] of m[2]!.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)) {
          expect({ panel, metric: m[1], label, ok: allowed.includes(label!) }).toEqual({
            panel,
            metric: m[1],
            label,
            ok: true,
          });
        }
      }
      const anyLabels = [...names.flatMap((n) => metrics.get(n) ?? []), ...TARGET_LABELS];
      for (const by of expr.matchAll(/\bby \(([^)]*)\)/g)) {
        for (const label of by[1]!.split(',').map((s) => s.trim())) {
          expect({ panel, label, ok: anyLabels.includes(label) }).toEqual({ panel, label, ok: true });
        }
      }
    }
  });

  test.each([
    ['requests by path', /sum by \([^)]*\bpath\b[^)]*\) \(rate\(router_requests_total/],
    [
      'DPD share',
      /router_routing_decisions_total\{[^}]*decision="dpd"[^}]*\}.*\/ sum\(rate\(router_routing_decisions_total/,
    ],
    ['TTFT', /histogram_quantile\(0\.95, sum by \([^)]*\) \(rate\(router_time_to_first_token_seconds_bucket/],
    [
      'prefill latency',
      /histogram_quantile\(0\.95, sum by \([^)]*\) \(rate\(router_prefill_duration_seconds_bucket/,
    ],
    ['fallbacks', /sum by \([^)]*\breason\b[^)]*\) \(rate\(router_fallbacks_total/],
    ['errors', /rate\(router_upstream_errors_total/],
    ['in-flight per endpoint', /sum by \([^)]*\bendpoint\b[^)]*\) \(router_in_flight_requests/],
    ['config generation', /^router_config_generation\{/],
  ])('has a panel for %s', (_topic, pattern) => {
    expect(exprs.filter((e) => pattern.test(e.expr)).map((e) => e.panel)).not.toHaveLength(0);
  });

  test('ships unchanged in the ConfigMap Grafana sidecars load', async () => {
    expect((await helm.template()).some((o) => o.kind === 'ConfigMap')).toBe(false);
    const objects = await helm.template({ grafanaDashboard: { enabled: true } });
    const cm = findObject(objects, 'ConfigMap', 'rel-disagg-operator-dashboard') as ReturnType<
      typeof findObject
    > & {
      data: Record<string, string>;
    };
    expect(cm.metadata.labels).toEqual(expect.objectContaining({ grafana_dashboard: '1' }));
    expect(cm.metadata.namespace).toBe('disagg-system');
    expect(JSON.parse(cm.data['disagg.json']!)).toEqual(dashboard);
  });
});
