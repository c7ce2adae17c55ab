// The API-server tier: a real kube-apiserver serves CRDs, enforces their schemas, authorises
// ServiceAccount tokens by RBAC, survives a restart, and leaves nothing behind when stopped.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_DIR } from './bins.js';
import { startControlPlane, type Cluster } from './control-plane.js';
import { isAlive } from './processes.js';

jest.setTimeout(180_000);

const CRD = join(CLUSTER_DIR, 'fixtures', 'test-crd.yaml');

function widget(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'harness.disagg.dev/v1', kind: 'Widget', metadata: { name }, spec });
}

describe('control plane, apiserver tier', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startControlPlane({ tier: 'apiserver' });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test('kubectl is the built release and talks to the cluster', async () => {
    const { stdout } = await cluster.kubectl(['version', '-o', 'json']);
    const v = JSON.parse(stdout) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(v.clientVersion.gitVersion).toBe('v1.36.3');
    expect(v.serverVersion.gitVersion).toBe('v1.36.3');
  });

  test('a CRD applied with kubectl is served', async () => {
    await cluster.kubectl(['apply', '-f', CRD]);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/widgets.harness.disagg.dev',
    ]);
    await cluster.kubectl(['apply', '-f', '-'], { input: widget('ok', { replicas: 2, role: 'decode' }) });
    const { stdout } = await cluster.kubectl(['get', 'widgets', 'ok', '-o', 'json']);
    expect(JSON.parse(stdout).spec).toEqual({ replicas: 2, role: 'decode' });
  });

  test('an invalid object is refused by the API server with the schema message', async () => {
    const negative = await cluster.kubectl(['apply', '-f', '-'], {
      input: widget('bad-replicas', { replicas: -1, role: 'decode' }),
      allowFailure: true,
    });
    expect(negative.code).not.toBe(0);
    expect(negative.stderr).toContain('spec.replicas in body should be greater than or equal to 0');

    const badEnum = await cluster.kubectl(['apply', '-f', '-'], {
      input: widget('bad-role', { replicas: 1, role: 'router' }),
      allowFailure: true,
    });
    expect(badEnum.stderr).toContain('Unsupported value: "router"');

    const cel = await cluster.kubectl(['apply', '-f', '-'], {
      input: widget('bad-cel', { replicas: 9, role: 'prefill' }),
      allowFailure: true,
    });
    expect(cel.stderr).toContain('prefill widgets are limited to 8 replicas');

    const { stdout } = await cluster.kubectl(['get', 'widgets', '-o', 'name']);
    expect(stdout.trim().split('\n')).toEqual(['widget.harness.disagg.dev/ok']);
  });

  test('a ServiceAccount kubeconfig is held to its RBAC', async () => {
    await cluster.kubectl(['create', 'namespace', 'rbac-check']);
    await cluster.kubectl(['-n', 'rbac-check', 'create', 'serviceaccount', 'reader']);
    const saKubeconfig = await cluster.serviceAccountKubeconfig('rbac-check', 'reader');
    const asReader = (args: string[]) =>
      cluster.kubectl(['--kubeconfig', saKubeconfig, ...args], { allowFailure: true });

    const denied = await asReader(['-n', 'rbac-check', 'get', 'configmaps']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('system:serviceaccount:rbac-check:reader');
    expect(denied.stderr).toContain('forbidden');

    await cluster.kubectl([
      '-n',
      'rbac-check',
      'create',
      'role',
      'cm-reader',
      '--verb=get,list',
      '--resource=configmaps',
    ]);
    await cluster.kubectl([
      '-n',
      'rbac-check',
      'create',
      'rolebinding',
      'cm-reader',
      '--role=cm-reader',
      '--serviceaccount=rbac-check:reader',
    ]);
    const allowed = await asReader(['-n', 'rbac-check', 'get', 'configmaps', '-o', 'name']);
    expect(allowed.code).toBe(0);
    const elsewhere = await asReader(['-n', 'default', 'get', 'configmaps']);
    expect(elsewhere.code).not.toBe(0);
  });

  test('restartApiServer stops and starts kube-apiserver on the same URL, data intact', async () => {
    const before = cluster.processes().find((p) => p.name === 'kube-apiserver');
    await cluster.restartApiServer();
    const after = cluster.processes().find((p) => p.name === 'kube-apiserver');
    expect(after?.pid).not.toBe(before?.pid);
    expect(isAlive(before?.pid ?? 0)).toBe(false);
    const { stdout } = await cluster.kubectl(['get', 'widgets', 'ok', '-o', 'jsonpath={.spec.role}']);
    expect(stdout).toBe('decode');
  });

  test('stop() ends every process and removes the work dir', async () => {
    const pids = cluster.processes().map((p) => p.pid);
    expect(pids.length).toBe(2);
    await cluster.stop();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(cluster.workDir)).toBe(false);
  });
});
