// `npm run cluster -- up|status|down`: up detaches and ends with the two export lines, status
// lists the processes, down stops them all.
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLUSTER_DIR, REPO_ROOT, resolveBinDir } from './bins.js';
import { isAlive } from './processes.js';

jest.setTimeout(180_000);

// a private run dir, so the test neither sees nor stops a cluster someone keeps up
const cacheDir = mkdtempSync(join(tmpdir(), 'disagg-cli-test-'));
const env = { ...process.env, DISAGG_CACHE_DIR: cacheDir, DISAGG_K8S_BIN_DIR: resolveBinDir() };

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(CLUSTER_DIR, 'cli.ts'), ...args],
      { cwd: REPO_ROOT, env },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('cluster CLI', () => {
  afterAll(async () => {
    await cli('down');
    rmSync(cacheDir, { recursive: true, force: true });
  });

  test('up, status, down', async () => {
    const up = await cli('up', '--tier', 'apiserver');
    expect(up.code).toBe(0);
    const lines = up.stdout.trimEnd().split('\n');
    expect(lines.at(-2)).toBe(`export KUBECONFIG=${join(cacheDir, 'run', 'kubeconfig')}`);
    expect(lines.at(-1)).toBe(`export PATH=${resolveBinDir()}:$PATH`);
    expect(up.stdout).toMatch(/cluster ready in \d+\.\d s/);

    const kubectl = await new Promise<string>((resolve, reject) =>
      execFile(
        join(resolveBinDir(), 'kubectl'),
        ['get', 'namespace', 'kube-system', '-o', 'name'],
        { env: { ...env, KUBECONFIG: join(cacheDir, 'run', 'kubeconfig') } },
        (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
      ),
    );
    expect(kubectl).toBe('namespace/kube-system');

    const status = await cli('status');
    expect(status.code).toBe(0);
    const pids = [...status.stdout.matchAll(/^\s+(\d+)\s+running\s+(\S+)/gm)].map((m) => [
      Number(m[1]),
      m[2],
    ]);
    expect(pids.map(([, name]) => name)).toEqual(['etcd', 'kube-apiserver']);
    const state = JSON.parse(readFileSync(join(cacheDir, 'run', 'state.json'), 'utf8')) as {
      pid: number;
      workDir: string;
    };

    const down = await cli('down');
    expect(down.code).toBe(0);
    expect([state.pid, ...pids.map(([pid]) => pid as number)].filter(isAlive)).toEqual([]);
    expect(existsSync(state.workDir)).toBe(false);
    expect((await cli('status')).stdout).toContain('no cluster running');
  });
});
