// Runs the built helm binary against charts/disagg-operator for the chart tests: isolated helm
// home dirs (no user repos or plugins leak in), rendered manifests parsed into objects.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { REPO_ROOT, resolveBinDir } from '../cluster/bins.js';

export { REPO_ROOT };
export const CHART_DIR = join(REPO_ROOT, 'charts', 'disagg-operator');

/** The Kubernetes version the harness builds: templates render against it (--kube-version). */
export const KUBE_VERSION = /^K8S_VERSION="([^"]+)"/m.exec(
  readFileSync(join(REPO_ROOT, 'test', 'cluster', 'build-bins.sh'), 'utf8'),
)![1]!;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export function helmPath(): string {
  const helm = join(resolveBinDir(), 'helm');
  if (!existsSync(helm)) throw new Error(`no helm in ${resolveBinDir()}: run \`make cluster-bins\` first`);
  return helm;
}

/** A scratch dir for values files and helm's cache/config/data; remove with dispose(). */
export class HelmSandbox {
  readonly dir = mkdtempSync(join(tmpdir(), 'disagg-chart-'));
  private valuesCount = 0;

  /** Runs helm; never throws on a non-zero exit (callers assert on code and stderr). */
  run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      execFile(
        helmPath(),
        args,
        {
          cwd: REPO_ROOT,
          maxBuffer: 64 * 1024 * 1024,
          env: {
            PATH: process.env.PATH,
            HOME: this.dir,
            HELM_CACHE_HOME: join(this.dir, 'cache'),
            HELM_CONFIG_HOME: join(this.dir, 'config'),
            HELM_DATA_HOME: join(this.dir, 'data'),
            ...env,
          },
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
        },
      );
    });
  }

  /** Writes values to a file and returns its path (for -f). */
  valuesFile(values: object): string {
    const path = join(this.dir, `values-${++this.valuesCount}.yaml`);
    writeFileSync(path, stringify(values));
    return path;
  }

  /** `helm template` with the given values; throws with helm's message when rendering fails. */
  async template(
    values: object = {},
    opts: { release?: string; namespace?: string } = {},
  ): Promise<K8sObject[]> {
    const r = await this.templateRaw(values, opts);
    if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
    return parseManifests(r.stdout);
  }

  templateRaw(values: object = {}, opts: { release?: string; namespace?: string } = {}): Promise<RunResult> {
    return this.run([
      'template',
      opts.release ?? 'rel',
      CHART_DIR,
      '--namespace',
      opts.namespace ?? 'disagg-system',
      '--kube-version',
      KUBE_VERSION,
      '-f',
      this.valuesFile(values),
    ]);
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

export function findObject(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) {
    const have = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
    throw new Error(`no ${kind}${name ? `/${name}` : ''} in the rendered chart (have: ${have})`);
  }
  return found;
}

/** The operator's RBAC rules as the chart reads them (a YAML list of PolicyRules). */
export function rulesFile(): unknown[] {
  const docs = parseAllDocuments(
    readFileSync(join(CHART_DIR, 'files', 'clusterrole-rules.yaml'), 'utf8'),
  ).map((d) => d.toJS() as unknown);
  const rules = docs.find((d) => Array.isArray(d));
  if (!Array.isArray(rules)) throw new Error('files/clusterrole-rules.yaml is not a YAML list of rules');
  return rules;
}

/** Every option on: all optional objects rendered, non-default values in every section. */
export const ALL_OPTIONS_VALUES = {
  fullnameOverride: 'disagg-all',
  image: { repository: 'registry.example.com/disagg-operator', tag: '1.2.3', pullPolicy: 'Always' },
  imagePullSecrets: [{ name: 'regcred' }],
  replicaCount: 3,
  watchNamespaces: ['team-a', 'team-b'],
  serviceAccount: { create: true, name: 'disagg-sa', annotations: { 'example.com/role': 'x' } },
  adminSocketDir: '/run/disagg-admin',
  operator: {
    logLevel: 'debug',
    resyncPeriod: '5m',
    workers: 4,
    leaderElection: { enabled: true, leaseDuration: '30s', renewDeadline: '20s', retryPeriod: '5s' },
    metricsPort: 9090,
    healthPort: 9091,
    extraArgs: ['--bind-address=0.0.0.0'],
    extraEnv: [{ name: 'EXTRA', value: '1' }],
  },
  router: {
    port: 9000,
    kvNotifyPort: 9500,
    logLevel: 'warn',
    engineStatsIntervalMs: 1000,
    extraArgs: ['--max-body-bytes=1048576'],
    extraEnv: [{ name: 'EXTRA', value: '2' }],
    readinessProbe: { path: '/health', periodSeconds: 3 },
  },
  service: {
    type: 'LoadBalancer',
    port: 80,
    kvNotifyPort: 7600,
    annotations: { 'example.com/lb': 'internal' },
  },
  podLabels: { team: 'ml' },
  podAnnotations: { 'example.com/scrape': 'true' },
  terminationGracePeriodSeconds: 120,
  priorityClassName: 'system-cluster-critical',
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'inference', effect: 'NoSchedule' }],
  affinity: {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: {
            topologyKey: 'kubernetes.io/hostname',
            labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'disagg-operator' } },
          },
        },
      ],
    },
  },
  topologySpreadConstraints: [
    {
      maxSkew: 1,
      topologyKey: 'topology.kubernetes.io/zone',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'disagg-operator' } },
    },
  ],
  podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
  networkPolicy: {
    enabled: true,
    httpFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'clients' } } }],
    kvNotifyFrom: [{ podSelector: { matchLabels: { 'disagg.dev/role': 'prefill' } } }],
    metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
  },
  serviceMonitor: { enabled: true, interval: '15s', scrapeTimeout: '5s', labels: { release: 'prometheus' } },
  grafanaDashboard: {
    enabled: true,
    namespace: 'monitoring',
    labels: { grafana_dashboard: '1' },
    annotations: { folder: 'LLM' },
  },
  tests: { enabled: true },
};

export interface ValueDoc {
  /** Dotted path, e.g. operator.leaderElection.enabled. */
  key: string;
  /** The default from values.yaml, as compact JSON (strings bare, "" for empty). */
  default: string;
  description: string;
}

/**
 * The documented keys of values.yaml: a key is documented by the `# --` comment (plus its `# `
 * continuation lines) right above it; a documented map (e.g. resources) is one entry.
 */
export function valuesReference(valuesYaml: string): ValueDoc[] {
  const values = parseAllDocuments(valuesYaml)[0]!.toJS() as Record<string, unknown>;
  const out: ValueDoc[] = [];
  const stack: Array<{ indent: number; key: string }> = [];
  let doc: string[] | null = null;
  for (const line of valuesYaml.split('\n')) {
    const start = /^\s*# -- (.*)$/.exec(line);
    const more = /^\s*#\s?(.*)$/.exec(line);
    const key = /^(\s*)([A-Za-z0-9_]+):/.exec(line);
    if (start) doc = [start[1]!];
    else if (more) {
      if (doc) doc.push(more[1]!);
    } else if (key) {
      const indent = key[1]!.length;
      while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
      const path = [...stack.map((s) => s.key), key[2]!];
      if (doc) {
        const value = path.reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], values);
        const shown = typeof value === 'string' ? (value === '' ? '""' : value) : JSON.stringify(value);
        out.push({ key: path.join('.'), default: shown, description: doc.join(' ').trim() });
      }
      doc = null;
      stack.push({ indent, key: key[2]! });
    } else if (line.trim() !== '' && !line.trim().startsWith('-')) doc = null;
  }
  return out;
}

/** Leaf paths of values.yaml no `# --` comment documents (a documented map counts as a leaf). */
export function undocumentedValues(valuesYaml: string): string[] {
  const documented = new Set(valuesReference(valuesYaml).map((d) => d.key));
  const values = parseAllDocuments(valuesYaml)[0]!.toJS() as Record<string, unknown>;
  const missing: string[] = [];
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (documented.has(path)) continue;
      if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
        walk(v as Record<string, unknown>, path);
      } else missing.push(path);
    }
  };
  walk(values, '');
  return missing;
}

/** The Markdown table docs/install.md carries between its values-table markers. */
export function valuesTableMarkdown(valuesYaml: string): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/</g, '&lt;');
  const rows = valuesReference(valuesYaml).map(
    (d) => `| \`${cell(d.key)}\` | \`${cell(d.default)}\` | ${cell(d.description)} |`,
  );
  return ['| Key | Default | Description |', '| --- | --- | --- |', ...rows].join('\n');
}
