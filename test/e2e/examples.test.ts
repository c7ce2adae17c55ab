// docs/examples/ against a real kube-apiserver (API-server tier): every example passes
// `kubectl apply --dry-run=server` (the CRD's schema and CEL rules, strict field validation), and so
// do the Deployments the operator would run from the vLLM templates (a PodSpec typo fails here,
// not on a GPU node). The vLLM examples are also checked for the wiring the docs promise: NIXL side
// channel = pod IP + sideChannelPort, LMCache sender/receiver with the proxy address at the routers'
// KV-notify Service port, and every example pod becoming a router endpoint in the operator's discovery.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { Container, Deployment, DisaggCluster, Pod, PoolRole } from '../../operator/src/api/types.js';
import { discoverEndpoints } from '../../operator/src/discovery/pod-endpoints.js';
import { matchesSelector } from '../../operator/src/discovery/label-selector.js';
import { connectorEnv, desiredDeployment } from '../../operator/src/plan/deployments.js';
import { REPO_ROOT } from '../cluster/bins.js';
import { startControlPlane, type Cluster } from '../cluster/control-plane.js';

jest.setTimeout(300_000);

const NS = 'examples';
const EXAMPLES = join(REPO_ROOT, 'docs', 'examples');
const CRD = join(REPO_ROOT, 'crds', 'disagg.dev_disaggclusters.yaml');
const FILES = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const VLLM_FILES = FILES.filter((f) => f.startsWith('vllm-'));
const ROLES: PoolRole[] = ['prefill', 'decode'];

type Doc = Record<string, unknown> & { kind: string; metadata: { name: string } };
const docsOf = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(join(EXAMPLES, file), 'utf8'))
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
const disaggOf = (file: string): DisaggCluster => {
  const d = docsOf(file).find((x) => x.kind === 'DisaggCluster');
  if (!d) throw new Error(`${file} has no DisaggCluster`);
  return {
    ...(d as unknown as DisaggCluster),
    metadata: { ...d.metadata, namespace: NS, uid: 'uid-example' },
  };
};
const engineOf = (d: { spec: { template: { spec: { containers: Container[] } } } }): Container =>
  d.spec.template.spec.containers[0]!;

/** The value after a flag in an args list (`--flag value` or `--flag=value`). */
function argValue(args: string[] | undefined, flag: string): string | undefined {
  const list = args ?? [];
  const i = list.indexOf(flag);
  if (i >= 0) return list[i + 1];
  return list.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

const envValue = (c: Container, name: string): string | undefined =>
  c.env?.find((e) => e.name === name)?.value;

/** Ready pods with loopback IPs made from each pool's pod template (planned or adopted). */
function podsFor(file: string): Pod[] {
  const dc = disaggOf(file);
  const pods: Pod[] = [];
  let ip = 1;
  const addPods = (n: number, prefix: string, tpl: Deployment['spec']['template']) => {
    for (let i = 0; i < n; i++) {
      pods.push({
        metadata: {
          name: `${prefix}-${i}`,
          namespace: NS,
          labels: tpl.metadata?.labels,
          annotations: tpl.metadata?.annotations,
        },
        spec: tpl.spec,
        status: {
          phase: 'Running',
          podIP: `10.1.0.${ip++}`,
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      });
    }
  };
  for (const role of ROLES) {
    const pool = dc.spec[role];
    if (pool.template)
      addPods(
        pool.replicas,
        `${dc.metadata.name}-${role}`,
        desiredDeployment(dc, role, pool.replicas).spec.template,
      );
  }
  for (const d of docsOf(file).filter((x) => x.kind === 'Deployment')) {
    const dep = d as unknown as Deployment;
    addPods(dep.spec.replicas, dep.metadata.name!, dep.spec.template);
  }
  return pods;
}

describe('docs/examples against the API server', () => {
  let cluster: Cluster;

  const dryRun = (input: string) =>
    cluster.kubectl(['apply', '--dry-run=server', '-n', NS, '-f', '-'], { input, allowFailure: true });

  beforeAll(async () => {
    cluster = await startControlPlane({ tier: 'apiserver' });
    await cluster.kubectl(['apply', '--server-side', '-f', CRD]);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/disaggclusters.disagg.dev',
    ]);
    await cluster.kubectl(['create', 'namespace', NS]);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test('there are real vLLM examples for NIXL, LMCache and adopted pods', () => {
    expect(VLLM_FILES).toEqual(['vllm-adopted.yaml', 'vllm-lmcache-1p2d.yaml', 'vllm-nixl-2p1d.yaml']);
  });

  test.each(FILES)('%s passes kubectl apply --dry-run=server', async (file) => {
    const r = await cluster.kubectl(['apply', '--dry-run=server', '-n', NS, '-f', join(EXAMPLES, file)], {
      allowFailure: true,
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const names = docsOf(file).map((d) => d.metadata.name);
    for (const name of names)
      expect(r.stdout).toMatch(new RegExp(`/${name} (created|configured) \\(server dry run\\)`));
  });

  test.each(VLLM_FILES.filter((f) => f !== 'vllm-adopted.yaml'))(
    '%s: the Deployments the operator runs from its templates pass --dry-run=server',
    async (file) => {
      const dc = disaggOf(file);
      for (const role of ROLES) {
        const dep = desiredDeployment(dc, role, dc.spec[role].replicas);
        const r = await dryRun(JSON.stringify(dep));
        expect({ role, code: r.code, stderr: r.stderr }).toEqual({ role, code: 0, stderr: '' });
        expect(r.stdout).toContain(`deployment.apps/${dc.metadata.name}-${role} created (server dry run)`);
      }
    },
  );

  test('the dry run is strict: a misspelt field in an example or in its pod template is refused', async () => {
    const [dc] = docsOf('vllm-nixl-2p1d.yaml') as unknown as DisaggCluster[];
    const typo = structuredClone(dc!);
    (typo.spec.prefill as unknown as Record<string, unknown>)['replica'] = 2;
    const r1 = await dryRun(JSON.stringify(typo));
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toContain('unknown field "spec.prefill.replica"');

    const dep = desiredDeployment(disaggOf('vllm-nixl-2p1d.yaml'), 'decode', 1);
    (engineOf(dep) as Record<string, unknown>)['imagePullPolcy'] = 'Always';
    const r2 = await dryRun(JSON.stringify(dep));
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toContain('unknown field "spec.template.spec.containers[0].imagePullPolcy"');
  });
});

describe('the vLLM examples are wired the way the docs say', () => {
  test('NIXL 2P1D: NixlConnector kv_producer prefillers, kv_consumer decoders, side channel at the pod IP and sideChannelPort', () => {
    const dc = disaggOf('vllm-nixl-2p1d.yaml');
    expect(dc.spec.connector.type).toBe('nixl');
    expect([dc.spec.prefill.replicas, dc.spec.decode.replicas]).toEqual([2, 1]);
    const port = String(dc.spec.connector.nixl!.sideChannelPort);
    for (const role of ROLES) {
      const planned = engineOf(desiredDeployment(dc, role, 1));
      expect(JSON.parse(argValue(planned.args, '--kv-transfer-config')!)).toEqual({
        kv_connector: 'NixlConnector',
        kv_role: role === 'prefill' ? 'kv_producer' : 'kv_consumer',
      });
      expect(argValue(planned.args, '--port')).toBe(String(dc.spec[role].httpPort));
      expect(argValue(planned.args, '--served-model-name')).toBe(dc.spec.model.servedName);
      expect(planned.env).toEqual(
        expect.arrayContaining([
          { name: 'VLLM_NIXL_SIDE_CHANNEL_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'VLLM_NIXL_SIDE_CHANNEL_PORT', value: port },
        ]),
      );
      // The env written out in the template says the same as what the operator injects.
      const written = dc.spec[role].template!.spec.containers[0]!.env!.filter((e) =>
        e.name.startsWith('VLLM_NIXL_'),
      );
      expect(written).toEqual(connectorEnv(dc, role));
      expect(planned.ports).toEqual(expect.arrayContaining([{ name: 'nixl', containerPort: Number(port) }]));
    }
  });

  test("LMCache 1P2D: sender and receiver config; the proxy address is the routers' KV-notify Service port", () => {
    const dc = disaggOf('vllm-lmcache-1p2d.yaml');
    const lm = dc.spec.connector.lmcache!;
    expect([dc.spec.prefill.replicas, dc.spec.decode.replicas]).toEqual([1, 2]);
    // The chart's Service: <release>-disagg-operator.<namespace>.svc, port kv-notify.
    const values = parseYaml(
      readFileSync(join(REPO_ROOT, 'charts', 'disagg-operator', 'values.yaml'), 'utf8'),
    ) as {
      router: { kvNotifyPort: number };
      service: { kvNotifyPort: number };
    };
    expect(lm.kvNotifyHost).toMatch(/^[a-z0-9-]+-disagg-operator\.[a-z0-9-]+\.svc$/);
    expect(lm.kvNotifyPort).toBe(values.service.kvNotifyPort);
    expect(lm.kvNotifyPort).toBe(values.router.kvNotifyPort);

    const prefill = engineOf(desiredDeployment(dc, 'prefill', 1));
    const decode = engineOf(desiredDeployment(dc, 'decode', 1));
    expect(envValue(prefill, 'LMCACHE_PD_PROXY_HOST')).toBe(lm.kvNotifyHost);
    expect(envValue(prefill, 'LMCACHE_PD_PROXY_PORT')).toBe(String(lm.kvNotifyPort));
    expect(envValue(prefill, 'LMCACHE_PD_ROLE')).toBe('sender');
    expect(envValue(decode, 'LMCACHE_PD_ROLE')).toBe('receiver');
    expect(decode.env).toEqual(
      expect.arrayContaining([
        { name: 'LMCACHE_PD_PEER_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      ]),
    );
    expect(envValue(decode, 'LMCACHE_PD_PEER_INIT_PORT')).toBe(lm.initPorts.join(','));
    expect(envValue(decode, 'LMCACHE_PD_PEER_ALLOC_PORT')).toBe(lm.allocPorts.join(','));
    for (const [c, role] of [
      [prefill, 'kv_producer'],
      [decode, 'kv_consumer'],
    ] as const) {
      for (const name of ['PYTHONHASHSEED', 'LMCACHE_ENABLE_PD', 'LMCACHE_TRANSFER_CHANNEL']) {
        expect(envValue(c, name)).toBeDefined();
      }
      expect(c.env!.map((e) => e.name)).not.toContain('LMCACHE_CONFIG_FILE'); // it would disable every LMCACHE_* env
      const kv = JSON.parse(argValue(c.args, '--kv-transfer-config')!) as Record<string, unknown>;
      expect(kv).toMatchObject({ kv_connector: 'LMCacheConnectorV1', kv_role: role });
      expect(argValue(c.args, '--served-model-name')).toBe(dc.spec.model.servedName);
    }
    // Receiver ports are declared as the named ports the pod contract falls back to, per TP rank.
    expect(decode.ports).toEqual(
      expect.arrayContaining(
        lm.initPorts.flatMap((p, rank) => [
          { name: `lmcache-init-${rank}`, containerPort: p },
          { name: `lmcache-alloc-${rank}`, containerPort: lm.allocPorts[rank] },
        ]),
      ),
    );
    // The explicit env in the templates agrees with what the operator injects.
    for (const role of ROLES) {
      const written = dc.spec[role].template!.spec.containers[0]!.env!;
      for (const e of connectorEnv(dc, role)) expect(written).toContainEqual(e);
    }
  });

  test('adopted pods: labelled for the cluster, each matching exactly one pool, side channel env set', () => {
    const dc = disaggOf('vllm-adopted.yaml');
    const deployments = docsOf('vllm-adopted.yaml').filter(
      (d) => d.kind === 'Deployment',
    ) as unknown as Deployment[];
    expect(deployments).toHaveLength(2);
    for (const d of deployments) {
      const labels = d.spec.template.metadata!.labels!;
      expect(labels['disagg.dev/cluster']).toBe(dc.metadata.name);
      const pools = ROLES.filter((r) => matchesSelector(labels, dc.spec[r].selector!));
      expect(pools).toHaveLength(1);
      expect(d.spec.replicas).toBe(dc.spec[pools[0]!].replicas);
      const engine = engineOf(d);
      expect(engine.env).toContainEqual({
        name: 'VLLM_NIXL_SIDE_CHANNEL_HOST',
        valueFrom: { fieldRef: { fieldPath: 'status.podIP' } },
      });
      expect(JSON.parse(argValue(engine.args, '--kv-transfer-config')!)).toMatchObject({
        kv_connector: 'NixlConnector',
      });
    }
  });

  test.each(FILES)(
    "%s: every pod it describes becomes a router endpoint in the operator's discovery",
    (file) => {
      const dc = disaggOf(file);
      const found = discoverEndpoints(dc, podsFor(file));
      expect(found.problems).toEqual([]);
      for (const role of ROLES) {
        expect(found[role].pods.filter((p) => p.routable)).toHaveLength(dc.spec[role].replicas);
      }
      for (const d of found.decode.pods) {
        if (dc.spec.connector.type === 'nixl') expect(d.endpoint?.nixl?.sideChannelPort).toBeGreaterThan(0);
        else expect(d.endpoint?.lmcache?.initPorts).toEqual(dc.spec.connector.lmcache!.initPorts);
      }
    },
  );
});
