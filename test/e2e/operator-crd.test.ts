// The DisaggCluster API against a real kube-apiserver (API-server tier): the schema and its CEL
// rules refuse bad input with the messages docs/api.md promises, defaults are filled in, status
// is a subresource, and `kubectl get disagg` shows the printer columns.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { join } from 'node:path';
import { REPO_ROOT } from '../cluster/bins.js';
import { startControlPlane, type Cluster } from '../cluster/control-plane.js';

jest.setTimeout(240_000);

const CRD = join(REPO_ROOT, 'crds', 'disagg.dev_disaggclusters.yaml');

type Obj = Record<string, unknown>;
const template = { spec: { containers: [{ name: 'engine', image: 'vllm/vllm-openai' }] } };

function manifest(name: string, patch: (spec: Obj) => void = () => undefined): string {
  const spec: Obj = {
    model: { servedName: `model-${name}` },
    connector: { type: 'nixl' },
    routing: { threshold: 256 },
    prefill: { replicas: 1, template },
    decode: { replicas: 1, template },
  };
  patch(spec);
  return JSON.stringify({
    apiVersion: 'disagg.dev/v1alpha1',
    kind: 'DisaggCluster',
    metadata: { name, namespace: 'default' },
    spec,
  });
}

describe('DisaggCluster CRD on a real API server', () => {
  let cluster: Cluster;
  const apply = (input: string, dryRun = false) =>
    cluster.kubectl(['apply', ...(dryRun ? ['--dry-run=server'] : []), '-f', '-'], {
      input,
      allowFailure: true,
    });

  beforeAll(async () => {
    cluster = await startControlPlane({ tier: 'apiserver' });
    await cluster.kubectl(['apply', '-f', CRD]);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/disaggclusters.disagg.dev',
    ]);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test('a valid cluster is accepted with defaults filled in', async () => {
    const r = await apply(manifest('ok', (s) => ((s.connector as Obj).nixl = {})));
    expect(r.stderr).toBe('');
    const got = JSON.parse((await cluster.kubectl(['get', 'disagg', 'ok', '-o', 'json'])).stdout) as {
      spec: Obj;
    };
    expect(got.spec).toMatchObject({
      connector: { type: 'nixl', nixl: { sideChannelPort: 5600 } },
      routing: { threshold: 256, loadBalancing: 'round_robin', prefillFailurePolicy: 'fallback' },
      prefill: { replicas: 1, httpPort: 8000, drainSeconds: 30 },
    });
  });

  // Each row: what is wrong, how the manifest is broken, a message the user must see.
  const refused: Array<[string, (s: Obj) => void, string]> = [
    [
      'negative threshold',
      (s) => ((s.routing as Obj).threshold = -1),
      'spec.routing.threshold in body should be greater than or equal to 0',
    ],
    [
      'unknown connector',
      (s) => ((s.connector as Obj).type = 'mooncake'),
      'spec.connector.type: Unsupported value: "mooncake": supported values: "nixl", "lmcache"',
    ],
    [
      'both template and selector',
      (s) => ((s.decode as Obj).selector = { matchLabels: { app: 'd' } }),
      'spec.decode: Invalid value: set only one of template (the operator runs a Deployment from it) or selector (adopt pods someone else runs), not both',
    ],
    [
      'neither template nor selector',
      (s) => (s.prefill = { replicas: 1 }),
      'spec.prefill: Invalid value: set one of template (the operator runs a Deployment from it) or selector',
    ],
    [
      'prefill without decode',
      (s) => ((s.decode as Obj).replicas = 0),
      'spec.prefill.replicas > 0 needs spec.decode.replicas > 0',
    ],
    [
      'negative replicas',
      (s) => ((s.decode as Obj).replicas = -1),
      'spec.decode.replicas in body should be greater than or equal to 0',
    ],
    [
      'port 0',
      (s) => ((s.connector as Obj).nixl = { sideChannelPort: 0 }),
      'spec.connector.nixl.sideChannelPort in body should be greater than or equal to 1',
    ],
    [
      'port above 65535',
      (s) => ((s.prefill as Obj).httpPort = 70000),
      'spec.prefill.httpPort in body should be less than or equal to 65535',
    ],
    [
      'lmcache without its settings',
      (s) => (s.connector = { type: 'lmcache' }),
      'connector.type lmcache needs connector.lmcache (initPorts, allocPorts and kvNotifyHost)',
    ],
    [
      'lmcache init/alloc lists of different lengths',
      (s) =>
        (s.connector = {
          type: 'lmcache',
          lmcache: { initPorts: [7300, 7301], allocPorts: [7400], kvNotifyHost: 'r' },
        }),
      'initPorts and allocPorts need one entry per decoder TP rank each',
    ],
    [
      'nixl settings on an lmcache cluster',
      (s) =>
        (s.connector = {
          type: 'lmcache',
          nixl: {},
          lmcache: { initPorts: [1], allocPorts: [2], kvNotifyHost: 'r' },
        }),
      'connector.nixl is only allowed when connector.type is nixl',
    ],
    ['unknown field', (s) => ((s.model as Obj).bogus = true), 'unknown field "spec.model.bogus"'],
    [
      'empty selector',
      (s) => (s.decode = { replicas: 1, selector: {} }),
      'selector needs matchLabels or matchExpressions',
    ],
    ['missing model', (s) => delete s.model, 'spec.model: Required value'],
  ];

  test.each(refused)('refused: %s', async (_what, breakIt, message) => {
    const r = await apply(manifest('bad', breakIt));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  test('refused: a name too long for the generated Deployment names', async () => {
    const r = await apply(manifest('a'.repeat(39)));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('metadata.name must be at most 38 characters');
    expect((await apply(manifest('b'.repeat(38)), true)).code).toBe(0);
  });

  test('refused: changing the connector type on update, and nothing else changes', async () => {
    await apply(manifest('immutable'));
    const r = await apply(
      manifest('immutable', (s) => {
        s.connector = {
          type: 'lmcache',
          lmcache: { initPorts: [7300], allocPorts: [7400], kvNotifyHost: 'router' },
        };
        (s.routing as Obj).threshold = 1;
      }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('connector.type is immutable');
    const got = JSON.parse((await cluster.kubectl(['get', 'disagg', 'immutable', '-o', 'json'])).stdout) as {
      spec: Obj;
    };
    expect(got.spec).toMatchObject({ connector: { type: 'nixl' }, routing: { threshold: 256 } });
    // Other fields stay editable.
    expect((await apply(manifest('immutable', (s) => ((s.routing as Obj).threshold = 1)))).code).toBe(0);
  });

  test('status is a subresource and kubectl get shows the printer columns', async () => {
    await apply(manifest('columns'));
    const status = {
      status: {
        topology: '2P1D',
        prefill: { replicas: 2, readyReplicas: 2, routableEndpoints: 2 },
        decode: { replicas: 1, readyReplicas: 1, routableEndpoints: 1 },
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'AllEndpointsRoutable',
            message: 'ok',
            lastTransitionTime: '2026-01-01T00:00:00Z',
          },
        ],
      },
    };
    // A status in a spec update is ignored; through /status it sticks.
    await cluster.kubectl(['patch', 'disagg', 'columns', '--type=merge', '-p', JSON.stringify(status)]);
    let got = JSON.parse((await cluster.kubectl(['get', 'disagg', 'columns', '-o', 'json'])).stdout) as Obj;
    expect(got.status).toBeUndefined();
    await cluster.kubectl([
      'patch',
      'disagg',
      'columns',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(status),
    ]);
    got = JSON.parse((await cluster.kubectl(['get', 'disagg', 'columns', '-o', 'json'])).stdout) as Obj;
    expect((got.status as Obj).topology).toBe('2P1D');
    const table = (await cluster.kubectl(['get', 'disagg', 'columns'])).stdout.trim().split('\n');
    expect(table[0]!.split(/\s{2,}/)).toEqual([
      'NAME',
      'TOPOLOGY',
      'PREFILL READY',
      'DECODE READY',
      'THRESHOLD',
      'CONNECTOR',
      'READY',
      'AGE',
    ]);
    expect(table[1]!.split(/\s+/).slice(0, 7)).toEqual(['columns', '2P1D', '2', '1', '256', 'nixl', 'True']);
  });

  test('the short name works', async () => {
    const names = (await cluster.kubectl(['get', 'disagg', '-o', 'name'])).stdout;
    expect(names).toContain('disaggcluster.disagg.dev/ok');
  });
});
