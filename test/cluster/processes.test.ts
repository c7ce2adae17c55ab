// Process groups and cleanup: stopping a process reaches its children, and a cluster owner that
// dies without cleaning up (SIGKILL) still leaves nothing behind thanks to the reaper.
import { describe, expect, jest, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLUSTER_DIR, REPO_ROOT } from './bins.js';
import { isAlive, ProcessRegistry } from './processes.js';
import { waitFor } from './wait.js';

jest.setTimeout(60_000);

describe('ProcessRegistry', () => {
  test('close() stops each process with its whole group and removes the work dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'registry-test-'));
    const registry = new ProcessRegistry(dir);
    const pidFile = join(dir, 'grandchild.pid');
    // the shell ignores SIGTERM only to show that its child is reached through the group
    const shell = registry.spawn('shell', 'bash', {
      args: ['-c', `trap '' TERM; sleep 300 & echo $! > ${pidFile}; wait`],
      logPath: join(dir, 'shell.log'),
    });
    const grandchild = await waitFor(
      'the grandchild pid',
      () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined),
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(JSON.parse(readFileSync(join(dir, 'processes.json'), 'utf8'))).toEqual([
      { name: 'shell', pid: shell.pid },
    ]);
    await registry.close(1000);
    expect(isAlive(shell.pid)).toBe(false);
    await waitFor('the grandchild to die', () => !isAlive(grandchild), { timeoutMs: 5000 });
    expect(existsSync(dir)).toBe(false);
  });

  test('the reaper kills the groups and removes the dir of an owner killed with SIGKILL', async () => {
    const owner = spawn(
      process.execPath,
      ['--import', 'tsx', join(CLUSTER_DIR, 'fixtures', 'registry-owner.ts')],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const first = await new Promise<string>((resolve) => createInterface(owner.stdout).once('line', resolve));
    const { sleepPid, workDir } = JSON.parse(first) as { sleepPid: number; workDir: string };
    expect(isAlive(sleepPid)).toBe(true);
    const exited = new Promise((r) => owner.once('exit', r));
    owner.kill('SIGKILL');
    await exited;
    await waitFor('the reaper to clean up', () => !isAlive(sleepPid) && !existsSync(workDir), {
      timeoutMs: 10_000,
    });
  });
});
