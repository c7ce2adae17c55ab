// `npm run demo` end to end: it names the path each request took, and leaves no process behind,
// whether it finishes or is interrupted.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../bench/router-process.js';

jest.setTimeout(240_000);

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEMO = path.join(REPO_ROOT, 'test', 'demo', 'router-demo.ts');

interface DemoRun {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<void>;
}

let current: DemoRun | undefined;

function runDemo(args: string[]): DemoRun {
  const child = spawn(process.execPath, ['--import', 'tsx', DEMO, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer): void => {
    out += d.toString('utf8');
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = (pattern: RegExp, timeoutMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo never printed ${pattern}\n${out}`)), timeoutMs);
      const check = (): void => {
        if (pattern.test(out)) {
          clearTimeout(timer);
          resolve();
        } else if (child.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`demo exited before printing ${pattern}\n${out}`));
        } else waiters.push(check);
      };
      check();
    });
  current = { child, output: () => out, exit, waitFor };
  return current;
}

/** Every "(pid N" the demo printed: the engines and the router it started. */
function printedPids(output: string): number[] {
  return [...output.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1]));
}

afterEach(async () => {
  if (current && current.child.exitCode === null) {
    current.child.kill('SIGKILL');
    await current.exit;
  }
  // A demo killed here cannot clean up; never leave its children to the next test.
  for (const pid of printedPids(current?.output() ?? '')) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  current = undefined;
});

describe('npm run demo', () => {
  it('sends the short request direct and the long ones through DPD (NIXL, LMCache), then stops everything', async () => {
    const demo = runDemo(['--json']);
    const code = await demo.exit;
    const out = demo.output();
    expect({ code, out }).toEqual({ code: 0, out: expect.any(String) });

    expect(out).toMatch(/short request: ~\d+ estimated tokens \(< threshold 256\)/);
    expect(out).toMatch(/path: direct: decode-0 served it directly/);
    expect(out).toMatch(/long request: ~\d+ estimated tokens \(>= threshold 256\)/);
    expect(out).toMatch(
      /path: dpd \(nixl\): prefill-\d prefilled it .* -> decode-0 decoded it with KV from NIXL/,
    );
    expect(out).toMatch(
      /path: dpd \(lmcache\): prefill-0 prefilled it .* -> decode-0 decoded it with KV from LMCACHE/,
    );
    expect(out).toMatch(/timing: TTFT \d+ ms, total \d+ ms, 16 tokens/);
    expect(out).not.toMatch(/UNEXPECTED/);

    const line = out.split('\n').find((l) => l.startsWith('{"event":"demo-result"'));
    expect(line).toBeDefined();
    const result = JSON.parse(line!) as {
      ok: boolean;
      pids: number[];
      results: Array<{
        name: string;
        path: string;
        connector: string;
        legs: Array<{ leg: string; kvSource: string }>;
      }>;
    };
    expect(result.ok).toBe(true);
    expect(result.results.map((r) => [r.name, r.path, r.connector])).toEqual([
      ['short', 'direct', 'nixl'],
      ['long', 'dpd', 'nixl'],
      ['long-chat', 'dpd', 'lmcache'],
    ]);
    expect(result.results[1]!.legs).toEqual([
      expect.objectContaining({ leg: 'prefill' }),
      expect.objectContaining({ leg: 'decode', kvSource: 'nixl' }),
    ]);
    // 5 engines + the router, all gone once the demo has exited.
    expect(result.pids).toHaveLength(6);
    expect(result.pids.filter(isAlive)).toEqual([]);
  });

  it('stops the router and every engine on Ctrl-C', async () => {
    const demo = runDemo(['--no-lmcache']);
    await demo.waitFor(/router +http:\/\/127\.0\.0\.1:\d+ \(pid \d+/, 120_000);
    const pids = printedPids(demo.output());
    expect(pids).toHaveLength(4); // 2 prefill + 1 decode + the router
    expect(pids.filter(isAlive)).toEqual(pids);

    demo.child.kill('SIGINT');
    expect(await demo.exit).toBe(130);
    expect(demo.output()).toMatch(/SIGINT: interrupted[\s\S]*all stopped/);
    expect(pids.filter(isAlive)).toEqual([]);
  });
});
