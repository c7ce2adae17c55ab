// `helm install` of charts/disagg-operator into a real kube-apiserver (API-server tier): the CRD is
// served, the RBAC objects exist with exactly the operator's rules, and a token of the chart's
// ServiceAccount can do what those rules allow and nothing else (the API server enforces it);
// `helm upgrade` to a namespace list swaps the ClusterRole for Roles; `helm uninstall` leaves only
// what docs/install.md says it keeps (the CRD and the DisaggClusters, the namespace).
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { startControlPlane, type Cluster } from '../cluster/control-plane.js';
import { CHART_DIR, HelmSandbox, rulesFile } from '../integration/chart-helm.js';

jest.setTimeout(300_000);

const NS = 'disagg-system';
const RELEASE = 'disagg';
const SA = `${RELEASE}-disagg-operator`; // predictable: <release>-disagg-operator
const CRD = 'disaggclusters.disagg.dev';

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const sampleCluster = (namespace: string): string =>
  JSON.stringify({
    apiVersion: 'disagg.dev/v1alpha1',
    kind: 'DisaggCluster',
    metadata: { name: 'sample', namespace },
    spec: {
      model: { servedName: 'sample-model' },
      connector: { type: 'nixl' },
      prefill: {
        replicas: 1,
        template: { spec: { containers: [{ name: 'engine', image: 'vllm/vllm-openai' }] } },
      },
      decode: {
        replicas: 1,
        template: { spec: { containers: [{ name: 'engine', image: 'vllm/vllm-openai' }] } },
      },
    },
  });

describe('helm install on a real API server', () => {
  let cluster: Cluster;
  const helm = new HelmSandbox();
  let saKubeconfig: string;
  let installOutput = '';

  const helmKube = (args: string[]) => helm.run([...args, '--kubeconfig', cluster.kubeconfigPath]);
  /** `kubectl auth can-i` with the ServiceAccount's own token: yes/no from the API server's RBAC. */
  const saCan = async (verb: string, resource: string, namespace?: string): Promise<boolean> => {
    const [res, subresource] = resource.split('/') as [string, string | undefined];
    const r = await cluster.kubectl(
      [
        '--kubeconfig',
        saKubeconfig,
        'auth',
        'can-i',
        verb,
        res,
        ...(subresource ? [`--subresource=${subresource}`] : []),
        ...(namespace ? ['-n', namespace] : ['-A']),
      ],
      { allowFailure: true },
    );
    return r.stdout.trim() === 'yes';
  };
  /** pods, deployments.apps, disaggclusters.disagg.dev/status (the form saCan splits). */
  const resourceOf = (group: string, resource: string): string => {
    const [res, sub] = resource.split('/');
    return `${group ? `${res}.${group}` : res}${sub ? `/${sub}` : ''}`;
  };

  beforeAll(async () => {
    cluster = await startControlPlane({ tier: 'apiserver' });
    const r = await helmKube(['install', RELEASE, CHART_DIR, '--namespace', NS, '--create-namespace']);
    if (r.code !== 0) throw new Error(`helm install failed: ${r.stderr}`);
    installOutput = r.stdout;
    saKubeconfig = await cluster.serviceAccountKubeconfig(NS, SA);
  });
  afterAll(async () => {
    await cluster?.stop();
    helm.dispose();
  });

  test('NOTES tell the user the next commands', () => {
    expect(installOutput).toContain('STATUS: deployed');
    expect(installOutput).toContain('kubectl get disaggclusters -A -w');
    expect(installOutput).toContain(`helm test ${RELEASE} -n ${NS}`);
    expect(installOutput).toContain(`port-forward service/${SA} 8000:8000`);
  });

  test('NOTES warn about a PodDisruptionBudget that would block node drains', async () => {
    const dry = (sets: string[]) =>
      helmKube([
        'install',
        'dry',
        CHART_DIR,
        '--namespace',
        NS,
        '--dry-run=client',
        ...sets.flatMap((v) => ['--set', v]),
      ]);
    const single = await dry(['podDisruptionBudget.enabled=true']);
    expect(single.code).toBe(0);
    expect(single.stdout).toContain('WARNING: podDisruptionBudget is enabled with replicaCount=1');
    const ha = await dry(['podDisruptionBudget.enabled=true', 'replicaCount=2']);
    expect(ha.code).toBe(0);
    expect(ha.stdout).not.toContain('WARNING');
  });

  test('the CRD is installed, established and served', async () => {
    await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${CRD}`]);
    await cluster.kubectl(['create', 'namespace', 'serving']);
    const created = await cluster.kubectl(['apply', '-f', '-'], { input: sampleCluster('serving') });
    expect(created.stdout).toContain('disaggcluster.disagg.dev/sample created');
    const got = await cluster.kubectl([
      'get',
      'disagg',
      '-n',
      'serving',
      'sample',
      '-o',
      'jsonpath={.spec.routing.threshold}',
    ]);
    expect(got.stdout).toBe('0'); // the CRD's default: the API server really serves this schema
  });

  test('the workload objects exist with the predictable names', async () => {
    const r = await cluster.kubectl(['get', 'deployment,service,serviceaccount', '-n', NS, '-o', 'name']);
    expect(r.stdout.trim().split('\n').sort()).toEqual(
      [`deployment.apps/${SA}`, `service/${SA}`, `service/${SA}-metrics`, `serviceaccount/${SA}`].sort(),
    );
  });

  test('the ClusterRole holds exactly files/clusterrole-rules.yaml and is bound to the ServiceAccount', async () => {
    const role = JSON.parse((await cluster.kubectl(['get', 'clusterrole', SA, '-o', 'json'])).stdout) as {
      rules: PolicyRule[];
    };
    expect(role.rules).toEqual(rulesFile());
    const binding = JSON.parse(
      (await cluster.kubectl(['get', 'clusterrolebinding', SA, '-o', 'json'])).stdout,
    ) as {
      roleRef: { name: string };
      subjects: unknown[];
    };
    expect(binding.roleRef.name).toBe(SA);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: SA, namespace: NS }]);
  });

  test("the ServiceAccount's token may do what the rules grant, in every namespace", async () => {
    for (const rule of rulesFile() as PolicyRule[]) {
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs) {
            const res = resourceOf(group, resource);
            expect({ verb, res, allowed: await saCan(verb, res) }).toEqual({ verb, res, allowed: true });
          }
    }
    // a real request too, not only the access review
    const listed = await cluster.kubectl([
      '--kubeconfig',
      saKubeconfig,
      'get',
      'disaggclusters',
      '-A',
      '-o',
      'name',
    ]);
    expect(listed.stdout.trim()).toBe('disaggcluster.disagg.dev/sample');
  });

  test('and nothing more', async () => {
    const denied: Array<[string, string]> = [
      ['get', 'secrets'],
      ['list', 'configmaps'],
      ['create', 'disaggclusters.disagg.dev'],
      ['delete', 'disaggclusters.disagg.dev'],
      ['update', 'disaggclusters.disagg.dev'],
      ['update', 'deployments.apps'],
      ['delete', 'pods'],
      ['create', 'pods'],
      ['create', 'clusterroles.rbac.authorization.k8s.io'],
      ['create', 'serviceaccounts/token'],
      ['escalate', 'roles.rbac.authorization.k8s.io'],
      ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
    ];
    for (const [verb, res] of denied) {
      expect({ verb, res, allowed: await saCan(verb, res) }).toEqual({ verb, res, allowed: false });
    }
    const secrets = await cluster.kubectl(['--kubeconfig', saKubeconfig, 'get', 'secrets', '-n', NS], {
      allowFailure: true,
    });
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain('forbidden');
  });

  test('helm upgrade to a namespace list swaps the ClusterRole for Roles', async () => {
    await cluster.kubectl(['create', 'namespace', 'team-a']);
    await cluster.kubectl(['create', 'namespace', 'team-b']);
    const r = await helmKube([
      'upgrade',
      RELEASE,
      CHART_DIR,
      '--namespace',
      NS,
      '--set',
      'watchNamespaces={team-a}',
    ]);
    if (r.code !== 0) throw new Error(`helm upgrade failed: ${r.stderr}`);
    const gone = await cluster.kubectl(['get', 'clusterrole', SA], { allowFailure: true });
    expect(gone.stderr).toContain('NotFound');
    expect(await saCan('list', 'disaggclusters.disagg.dev', 'team-a')).toBe(true);
    expect(await saCan('patch', 'deployments.apps', 'team-a')).toBe(true);
    expect(await saCan('list', 'disaggclusters.disagg.dev', 'team-b')).toBe(false);
    expect(await saCan('list', 'disaggclusters.disagg.dev')).toBe(false); // not cluster-wide
    // Leases (leader election, router membership) only in the release namespace
    expect(await saCan('create', 'leases.coordination.k8s.io', NS)).toBe(true);
    expect(await saCan('create', 'leases.coordination.k8s.io', 'team-a')).toBe(false);
  });

  test('helm uninstall leaves only the CRD, its DisaggClusters and the namespace', async () => {
    const kinds = (await cluster.kubectl(['api-resources', '--verbs=list', '-o', 'name'])).stdout
      .trim()
      .split('\n')
      .filter((k) => k !== 'componentstatuses'); // deprecated, and always empty
    expect(kinds).toContain('clusterroles.rbac.authorization.k8s.io');
    const released = async (): Promise<string[]> => {
      const r = await cluster.kubectl(
        ['get', kinds.join(','), '-A', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name'],
        { allowFailure: true },
      );
      // deprecation warnings (Endpoints...) are fine; an error would hide leftovers
      expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Warning:'))).toEqual([]);
      return r.stdout.trim().split('\n').filter(Boolean);
    };
    // the query sees the release's objects while it is installed...
    expect(await released()).toEqual(
      expect.arrayContaining([
        `deployment.apps/${SA}`,
        `role.rbac.authorization.k8s.io/${SA}`,
        `serviceaccount/${SA}`,
      ]),
    );
    const r = await helmKube(['uninstall', RELEASE, '--namespace', NS]);
    if (r.code !== 0) throw new Error(`helm uninstall failed: ${r.stderr}`);
    // ...and none after
    expect(await released()).toEqual([]);
    // nothing by name either (e.g. an object the labels missed)
    const all = await cluster.kubectl(['get', kinds.join(','), '-A', '-o', 'name'], { allowFailure: true });
    expect(all.stdout.split('\n').filter((n) => n.includes(SA))).toEqual([]);
    // helm's own release record is gone
    const releases = await cluster.kubectl([
      'get',
      'secrets',
      '-n',
      NS,
      '-l',
      `owner=helm,name=${RELEASE}`,
      '-o',
      'name',
    ]);
    expect(releases.stdout.trim()).toBe('');
    // kept, as docs/install.md says: the CRD (Helm never deletes crds/), its objects, the namespace
    await cluster.kubectl(['get', 'crd', CRD]);
    await cluster.kubectl(['get', 'disagg', '-n', 'serving', 'sample']);
    await cluster.kubectl(['get', 'namespace', NS]);
  });

  test('a second install next to the kept CRD works (Helm skips an existing crds/ CRD)', async () => {
    const r = await helmKube(['install', RELEASE, CHART_DIR, '--namespace', NS]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const st = await helmKube(['status', RELEASE, '--namespace', NS]);
    expect(st.stdout).toContain('STATUS: deployed');
  });
});
