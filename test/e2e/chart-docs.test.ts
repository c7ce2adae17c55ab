// Every command docs/install.md marks `doc-test: run` works, in order, against a real kube-apiserver
// (API-server tier): install, checks, DisaggCluster manifests (`doc-test: file NAME` blocks are saved
// under NAME first), CRD upgrade, helm upgrade, namespace list, uninstall. Commands that need running
// pods (docker, port-forward, curl, helm test, watches) are not marked and not run here.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type Cluster } from '../cluster/control-plane.js';
import { REPO_ROOT } from '../integration/chart-helm.js';

jest.setTimeout(300_000);

type Step =
  { kind: 'run'; script: string; line: number } | { kind: 'file'; name: string; text: string; line: number };

/** The marked fenced blocks of a Markdown file, in document order. */
function docSteps(markdown: string): Step[] {
  const steps: Step[] = [];
  const re = /<!-- doc-test: (run|file (\S+)) -->\n```\w*\n([\s\S]*?)```/g;
  for (const m of markdown.matchAll(re)) {
    const line = markdown.slice(0, m.index).split('\n').length;
    steps.push(
      m[1] === 'run'
        ? { kind: 'run', script: m[3]!, line }
        : { kind: 'file', name: m[2]!, text: m[3]!, line },
    );
  }
  return steps;
}

describe('docs/install.md commands on a real API server', () => {
  let cluster: Cluster;
  const work = mkdtempSync(join(tmpdir(), 'disagg-docs-'));
  const steps = docSteps(readFileSync(join(REPO_ROOT, 'docs', 'install.md'), 'utf8'));

  beforeAll(async () => {
    cluster = await startControlPlane({ tier: 'apiserver' });
    // the guide runs from a clone: charts/ and crds/ relative to the working directory
    symlinkSync(join(REPO_ROOT, 'charts'), join(work, 'charts'));
    symlinkSync(join(REPO_ROOT, 'crds'), join(work, 'crds'));
  });
  afterAll(async () => {
    await cluster?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const bash = (script: string): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      execFile(
        'bash',
        ['-e', '-o', 'pipefail', '-c', script],
        {
          cwd: work,
          maxBuffer: 16 * 1024 * 1024,
          env: {
            PATH: `${cluster.binDir}:${process.env.PATH ?? ''}`,
            HOME: work,
            KUBECONFIG: cluster.kubeconfigPath,
            HELM_CACHE_HOME: join(work, '.helm', 'cache'),
            HELM_CONFIG_HOME: join(work, '.helm', 'config'),
            HELM_DATA_HOME: join(work, '.helm', 'data'),
          },
        },
        (err, stdout, stderr) =>
          resolve({
            code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
            out: `${stdout}${stderr}`,
          }),
      );
    });

  test('the guide marks its install, upgrade and uninstall commands for this test', () => {
    const scripts = steps.filter((s) => s.kind === 'run').map((s) => (s as { script: string }).script);
    for (const cmd of [
      'helm install disagg',
      'helm show crds',
      'helm upgrade disagg',
      'helm uninstall disagg',
      'kubectl apply -f llama-nixl.yaml',
    ]) {
      expect({ cmd, marked: scripts.some((s) => s.includes(cmd)) }).toEqual({ cmd, marked: true });
    }
  });

  test('every marked command succeeds, in order', async () => {
    for (const step of steps) {
      if (step.kind === 'file') {
        writeFileSync(join(work, step.name), step.text);
        continue;
      }
      const r = await bash(step.script);
      expect({ line: step.line, script: step.script, code: r.code, out: r.code === 0 ? '' : r.out }).toEqual({
        line: step.line,
        script: step.script,
        code: 0,
        out: '',
      });
    }
    // and they did what the guide says
    const after = await cluster.kubectl(['get', 'crd', 'disaggclusters.disagg.dev']); // kept by uninstall
    expect(after.code).toBe(0);
    const leftovers = await cluster.kubectl([
      'get',
      'deployment,service,serviceaccount,role,rolebinding',
      '-A',
      '-l',
      'app.kubernetes.io/instance=disagg',
      '-o',
      'name',
    ]);
    expect(leftovers.stdout.trim()).toBe('');
    const clusters = await cluster.kubectl(['get', 'disaggclusters', '-A', '-o', 'name']);
    expect(clusters.stdout.trim()).toBe(''); // deleted before the uninstall
  });
});
