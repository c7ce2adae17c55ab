// The operator's own Kubernetes access layer (operator/src/kube) against a real kube-apiserver
// (API-server tier): a ServiceAccount token kubeconfig is served natively and held to RBAC, and a
// kubeconfig whose user is an `exec` plugin goes through the lazily imported client-node fallback,
// both for plain requests and for the informer's list+watch.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { startControlPlane, type Cluster } from '../cluster/control-plane.js';
import { waitFor } from '../cluster/wait.js';
import { ResilientInformer } from '../../operator/src/controller/informer.js';
import { KubeApiError, RestKubeApi } from '../../operator/src/controller/kube-client.js';
import { connectToKube, type KubeConnection } from '../../operator/src/kube/connection.js';
import type { Pod } from '../../operator/src/api/types.js';

jest.setTimeout(240_000);

const NS = 'kube-access';
const SA = 'pod-reader';

interface KubeconfigDoc {
  clusters: Array<{ name: string; cluster: Record<string, unknown> }>;
  users: Array<{ name: string; user: Record<string, unknown> }>;
  contexts: unknown[];
  'current-context': string;
}

const pod = (name: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: 'probe' } },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
  });

describe('operator Kubernetes access on a real API server', () => {
  let cluster: Cluster;
  let dir: string;
  let saConfig: KubeconfigDoc;
  const conns: KubeConnection[] = [];
  const connect = async (kubeconfig: string) => {
    const c = await connectToKube({ kubeconfig });
    conns.push(c);
    return c;
  };

  /** A kubeconfig whose user runs `script` (an exec credential plugin). */
  const execKubeconfig = (name: string, script: string): string => {
    const doc = structuredClone(saConfig);
    doc.users = [
      {
        name: doc.users[0]!.name,
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: script,
            interactiveMode: 'Never',
          },
        },
      },
    ];
    const path = join(dir, name);
    writeFileSync(path, stringify(doc));
    return path;
  };

  /** A plugin that prints an ExecCredential with this token and logs each run to `<script>.runs`. */
  const execPlugin = (name: string, token: string): string => {
    const path = join(dir, name);
    const credential = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: { token },
    });
    writeFileSync(path, `#!/bin/sh\necho run >> '${path}.runs'\necho '${credential}'\n`);
    chmodSync(path, 0o755);
    return path;
  };
  const runs = (script: string): number => {
    try {
      return readFileSync(`${script}.runs`, 'utf8').trim().split('\n').length;
    } catch {
      return 0;
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kube-access-'));
    cluster = await startControlPlane({ tier: 'apiserver' });
    await cluster.kubectl(['create', 'namespace', NS]);
    await cluster.kubectl(['-n', NS, 'create', 'serviceaccount', SA]);
    await cluster.kubectl(['-n', NS, 'create', 'role', SA, '--verb=get,list,watch', '--resource=pods']);
    await cluster.kubectl([
      '-n',
      NS,
      'create',
      'rolebinding',
      SA,
      `--role=${SA}`,
      `--serviceaccount=${NS}:${SA}`,
    ]);
    await cluster.kubectl(['apply', '-f', '-'], { input: pod('first') });
    const path = await cluster.serviceAccountKubeconfig(NS, SA);
    saConfig = parseYaml(readFileSync(path, 'utf8')) as KubeconfigDoc;
  });

  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a token kubeconfig is served without client-node and held to the ServiceAccount RBAC', async () => {
    const path = join(dir, 'token-config');
    writeFileSync(path, stringify(saConfig));
    const conn = await connect(path);
    expect(conn.source).not.toContain('client-node');
    const api = new RestKubeApi(conn);
    const list = await api.list<Pod>(`/api/v1/namespaces/${NS}/pods`);
    expect(list.items.map((p) => p.metadata.name)).toContain('first');
    const denied = await api.list(`/api/v1/namespaces/${NS}/secrets`).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(KubeApiError);
    expect((denied as KubeApiError).statusCode).toBe(403);
    expect((denied as KubeApiError).message).toContain(`system:serviceaccount:${NS}:${SA}`);
  });

  test('an exec plugin user goes through client-node: its token lists pods and drives an informer', async () => {
    const token = String(saConfig.users[0]!.user.token);
    const script = execPlugin('get-token.sh', token);
    const conn = await connect(execKubeconfig('exec-config', script));
    expect(conn.source).toContain('through client-node (user exec)');
    const api = new RestKubeApi(conn);
    const list = await api.list<Pod>(`/api/v1/namespaces/${NS}/pods`);
    expect(list.items.map((p) => p.metadata.name)).toContain('first');
    expect(runs(script)).toBeGreaterThanOrEqual(1);

    const informer = new ResilientInformer<Pod>(api, {
      resource: 'pods',
      path: `/api/v1/namespaces/${NS}/pods`,
      labelSelector: 'app=probe',
    });
    const added: string[] = [];
    informer.on({ onAdd: (p) => added.push(p.metadata.name!) });
    try {
      await informer.start();
      expect(informer.hasSynced()).toBe(true);
      await cluster.kubectl(['apply', '-f', '-'], { input: pod('second') });
      await waitFor('the watch delivers the new pod', () => added.includes('second') || undefined, {
        timeoutMs: 30_000,
      });
      expect(added).toContain('first');
      // managedFields are stripped from cached objects.
      expect(informer.get('second', NS)?.metadata).not.toHaveProperty('managedFields');
    } finally {
      await informer.stop();
    }
  });

  test('the exec plugin is what authenticates: a plugin printing a bad token is refused', async () => {
    const script = execPlugin('bad-token.sh', 'not-a-valid-token');
    const conn = await connect(execKubeconfig('bad-exec-config', script));
    const err = await new RestKubeApi(conn).list(`/api/v1/namespaces/${NS}/pods`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).statusCode).toBe(401);
    expect(runs(script)).toBeGreaterThanOrEqual(1);
  });
});
