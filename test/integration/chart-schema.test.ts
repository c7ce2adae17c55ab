// A wrong value fails `helm template` (and so `helm install`) with a message naming the value and
// what is wrong: values.schema.json for types, ranges, enums and unknown keys; the templates for
// rules across values (distinct ports, leader election timings, replicas without a leader).
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { HelmSandbox } from './chart-helm.js';

jest.setTimeout(120_000);

const helm = new HelmSandbox();
afterAll(() => helm.dispose());

const SCHEMA = "values don't meet the specifications of the schema(s)";

// [what, values, the messages helm must print]
const SCHEMA_CASES: Array<[string, object, string[]]> = [
  ['replicaCount as a string', { replicaCount: 'two' }, ["at '/replicaCount'", 'got string, want integer']],
  ['negative replicaCount', { replicaCount: -1 }, ["at '/replicaCount'", 'minimum']],
  ['an unknown top-level key', { replicas: 2 }, ["additional properties 'replicas' not allowed"]],
  [
    'a misspelt nested key',
    { router: { prot: 8000 } },
    ["at '/router'", "additional properties 'prot' not allowed"],
  ],
  ['a port above 65535', { router: { port: 70000 } }, ["at '/router/port'", 'maximum']],
  ['port 0', { operator: { metricsPort: 0 } }, ["at '/operator/metricsPort'", 'minimum']],
  [
    'an unknown Service type',
    { service: { type: 'Ingress' } },
    ["at '/service/type'", "'ClusterIP', 'NodePort', 'LoadBalancer'"],
  ],
  [
    'an invalid namespace name',
    { watchNamespaces: ['Team_A'] },
    ["at '/watchNamespaces/0'", "'Team_A' does not match pattern"],
  ],
  ['watchNamespaces as a string', { watchNamespaces: 'team-a' }, ["at '/watchNamespaces'", 'want array']],
  [
    'a duplicated namespace',
    { watchNamespaces: ['a', 'a'] },
    ["at '/watchNamespaces'", 'items at 0 and 1 are equal'],
  ],
  [
    'an unknown log level',
    { operator: { logLevel: 'verbose' } },
    ["at '/operator/logLevel'", "'error', 'warn', 'info', 'debug', 'silent'"],
  ],
  [
    'a duration without a unit',
    { operator: { resyncPeriod: '30' } },
    ["at '/operator/resyncPeriod'", 'does not match pattern'],
  ],
  [
    'a compound duration the operator cannot parse',
    { operator: { leaderElection: { leaseDuration: '1m30s' } } },
    ["at '/operator/leaderElection/leaseDuration'", 'does not match pattern'],
  ],
  ['zero workers', { operator: { workers: 0 } }, ["at '/operator/workers'", 'minimum']],
  [
    'a relative admin socket dir',
    { adminSocketDir: 'var/run/disagg' },
    ["at '/adminSocketDir'", 'does not match pattern'],
  ],
  [
    'an admin socket dir too long for a Unix socket path',
    { adminSocketDir: `/${'d'.repeat(90)}` },
    ["at '/adminSocketDir'", 'maxLength'],
  ],
  [
    'a bad image digest',
    { image: { digest: 'sha256:xyz' } },
    ["at '/image/digest'", 'does not match pattern'],
  ],
  [
    'an unknown pull policy',
    { image: { pullPolicy: 'Sometimes' } },
    ["at '/image/pullPolicy'", "'Always', 'IfNotPresent', 'Never'"],
  ],
  ['an empty image repository', { image: { repository: '' } }, ["at '/image/repository'", 'minLength']],
  [
    'a probe overriding the chart-owned httpGet',
    { operator: { livenessProbe: { httpGet: { path: '/x' } } } },
    ["additional properties 'httpGet' not allowed"],
  ],
  [
    'an unknown router readiness path',
    { router: { readinessProbe: { path: '/metrics' } } },
    ["at '/router/readinessProbe/path'", "'/ready', '/health'"],
  ],
  [
    'a fullnameOverride too long for the suffixed names',
    { fullnameOverride: 'x'.repeat(51) },
    ["at '/fullnameOverride'", 'maxLength'],
  ],
  [
    'an invalid PodDisruptionBudget minAvailable',
    { podDisruptionBudget: { enabled: true, minAvailable: 'half' } },
    ["at '/podDisruptionBudget/minAvailable'"],
  ],
  [
    'a bad ServiceMonitor interval',
    { serviceMonitor: { interval: '30 seconds' } },
    ["at '/serviceMonitor/interval'", 'does not match pattern'],
  ],
  ['a non-string pod label', { podLabels: { team: 1 } }, ["at '/podLabels/team'", 'want string']],
  ['extraArgs as a string', { router: { extraArgs: '--foo' } }, ["at '/router/extraArgs'", 'want array']],
  [
    'an env var without a name',
    { operator: { extraEnv: [{ value: 'x' }] } },
    ["at '/operator/extraEnv/0'", "missing property 'name'"],
  ],
  ['tests.enabled as a string', { tests: { enabled: 'on please' } }, ["at '/tests/enabled'", 'want boolean']],
];

describe('values.schema.json refuses bad values', () => {
  test.each(SCHEMA_CASES)('%s', async (_what, values, messages) => {
    const r = await helm.templateRaw(values);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(SCHEMA);
    for (const m of messages) expect(r.stderr).toContain(m);
  });

  test('accepts the documented forms of the same values', async () => {
    const r = await helm.templateRaw({
      replicaCount: 2,
      watchNamespaces: ['team-a'],
      operator: { resyncPeriod: '1.5m', logLevel: 'silent', leaderElection: { leaseDuration: '20s' } },
      podDisruptionBudget: { enabled: true, minAvailable: '50%' },
      image: { digest: `sha256:${'a'.repeat(64)}` },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`image: disagg-operator@sha256:${'a'.repeat(64)}`);
  });
});

// Rules across several values, checked by the templates.
const TEMPLATE_CASES: Array<[string, object, string]> = [
  [
    'two replicas without leader election',
    { replicaCount: 2, operator: { leaderElection: { enabled: false } } },
    'replicaCount > 1 needs operator.leaderElection.enabled=true',
  ],
  [
    'the operator health port on the router port',
    { operator: { healthPort: 8000 } },
    'operator.metricsPort, operator.healthPort, router.port and router.kvNotifyPort must differ',
  ],
  [
    'a renew deadline not shorter than the lease',
    { operator: { leaderElection: { leaseDuration: '10s', renewDeadline: '10s' } } },
    'operator.leaderElection needs retryPeriod < renewDeadline < leaseDuration: got retryPeriod=2s renewDeadline=10s leaseDuration=10s',
  ],
  [
    'a retry period (in other units) longer than the renew deadline',
    { operator: { leaderElection: { retryPeriod: '0.5m' } } },
    'operator.leaderElection needs retryPeriod < renewDeadline < leaseDuration',
  ],
  [
    'an existing ServiceAccount without its name',
    { serviceAccount: { create: false } },
    'serviceAccount.name is required when serviceAccount.create is false',
  ],
];

describe('templates refuse inconsistent values', () => {
  test.each(TEMPLATE_CASES)('%s', async (_what, values, message) => {
    const r = await helm.templateRaw(values);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });
});
