// The harness starts real engine processes and never leaves them behind: stop(), stopAll(), and a
// harness that is SIGKILLed (its engines see stdin close and exit).
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { engineArgs, startEngine, stopAll } from '../sim/harness.js';
import { waitFor } from '../sim/http-client.js';

jest.setTimeout(120_000);

afterAll(async () => {
  await stopAll();
});

// A zombie (exited, not yet reaped by a container's PID 1) counts as gone.
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return process.platform !== 'linux';
  }
}

describe('engine harness', () => {
  test('maps options to the CLI flags of CONTRACTS.md', () => {
    const args = engineArgs({ connector: 'nixl', role: 'prefill', model: 'm', kvLeaseMs: 5, hang: true });
    expect(args.join(' ')).toContain('--connector nixl');
    expect(args.join(' ')).toContain('--role prefill');
    expect(args.join(' ')).toContain('--kv-lease-ms 5');
    expect(args.join(' ')).toContain('--nixl-side-channel-port 0');
    expect(args).toContain('--hang');
    const lm = engineArgs({ connector: 'lmcache', role: 'decode', tpSize: 2 });
    expect(lm.join(' ')).toContain('--lmcache-init-ports 0,0');
  });

  test('stop() ends the child process', async () => {
    const e = await startEngine({});
    expect(alive(e.pid)).toBe(true);
    expect((await fetch(`${e.url}/health`)).status).toBe(200);
    await e.stop();
    expect(alive(e.pid)).toBe(false);
  });

  test('stopAll() ends every child; kill() works too', async () => {
    const [a, b] = await Promise.all([startEngine({}), startEngine({})]);
    a.kill('SIGKILL');
    await waitFor(async () => !alive(a.pid));
    await stopAll();
    expect(alive(b.pid)).toBe(false);
  });

  test('a harness process killed with SIGKILL leaves no orphan engine', async () => {
    const fixture = fileURLToPath(new URL('../sim/harness-child.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`fixture exited ${code}`)));
    });
    const { enginePid } = JSON.parse(line) as { enginePid: number };
    expect(alive(enginePid)).toBe(true);
    child.kill('SIGKILL');
    await waitFor(async () => !alive(enginePid), 20_000);
  });

  test('a bad flag makes startEngine reject with the CLI message', async () => {
    await expect(startEngine({ extraArgs: ['--no-such-flag'] })).rejects.toThrow(
      /unknown flag --no-such-flag/,
    );
  });
});
