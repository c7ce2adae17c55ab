// `make demo` (test/demo/cluster-demo.ts) end to end: it reaches 2P1D, routes the short request
// direct and the long one prefill -> decode through the pods it names, scales to 2P2D, and leaves
// no process or work dir behind, whether it ends with --once, on Ctrl-C or on a failure. Also runs
// test/demo/threshold-sweep.ts, whose table docs/operations.md quotes.
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../cluster/bins.js';
import { isAlive } from '../cluster/processes.js';
import { waitFor } from '../cluster/wait.js';

jest.setTimeout(600_000);

const DEMO = join(REPO_ROOT, 'test', 'demo', 'cluster-demo.ts');

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
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const run: DemoRun = {
    child,
    output: () => out,
    exit,
    waitFor: (pattern, timeoutMs) =>
      waitFor(
        `the demo to print ${pattern}`,
        () => {
          if (pattern.test(out)) return true;
          if (child.exitCode !== null) throw new Error(`demo exited (${child.exitCode}):\n${out}`);
          return false;
        },
        { timeoutMs, intervalMs: 200 },
      ).then(
        () => undefined,
        (err: Error) => {
          throw new Error(`${err.message}\n${out}`);
        },
      ),
  };
  current = run;
  return run;
}

/** The pids of the demo's "pid N  name" process list. */
const listedPids = (out: string): number[] =>
  [...out.matchAll(/^\[demo[^\]]*\]\s+pid (\d+)\s/gm)].map((m) => Number(m[1]));

/** The two work dirs the demo printed (cluster, operator + router). */
function workDirs(out: string): string[] {
  const m = /work dirs \(logs\): (\S+)\/logs and (\S+)/.exec(out);
  if (!m) throw new Error(`no work dirs in the output:\n${out}`);
  return [m[1]!, m[2]!];
}

/** Live processes whose command line mentions one of dirs (control plane, operator, router, reaper). */
function processesMentioning(dirs: string[]): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (dirs.some((d) => cmd.includes(d))) found.push(`${entry}: ${cmd.slice(0, 160)}`);
  }
  return found;
}

async function expectNothingLeft(out: string): Promise<void> {
  const pids = listedPids(out);
  expect(pids.length).toBeGreaterThan(0);
  const dirs = workDirs(out);
  // The reaper notices within a second; give slow machines a little longer.
  await waitFor(
    'every process and work dir of the demo to be gone',
    () => pids.every((p) => !isAlive(p)) && processesMentioning(dirs).length === 0 && !dirs.some(existsSync),
    { timeoutMs: 15_000, intervalMs: 250 },
  ).catch(() => undefined);
  expect(pids.filter(isAlive)).toEqual([]);
  expect(processesMentioning(dirs)).toEqual([]);
  expect(dirs.filter(existsSync)).toEqual([]);
}

afterEach(async () => {
  if (current && current.child.exitCode === null) {
    current.child.kill('SIGKILL'); // its reaper still removes the control plane
    await current.exit;
  }
  for (const pid of listedPids(current?.output() ?? '')) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  current = undefined;
});

describe('make demo', () => {
  test('--once: 2P1D Ready, short request direct, long request DPD over NIXL, scaled to 2P2D, nothing left', async () => {
    const demo = runDemo(['--once']);
    const code = await demo.exit;
    const out = demo.output();
    expect({ code, tail: out.split('\n').slice(-40).join('\n') }).toEqual({
      code: 0,
      tail: expect.any(String),
    });

    // The apply and the table printed while waiting.
    expect(out).toContain('$ kubectl apply -n default -f docs/examples/sim-nixl-2p1d.yaml');
    expect(out).toMatch(/NAME\s+TOPOLOGY\s+PREFILL READY\s+DECODE READY\s+THRESHOLD\s+CONNECTOR\s+READY/);
    expect(out).toMatch(/sim-nixl\s+2P1D\s+2\s+1\s+64\s+nixl\s+True/);
    // Topology 2P1D, then 2P2D after the patch.
    const topologies = [...out.matchAll(/topology: (\d+P\d+D) \(Ready\)/g)].map((m) => m[1]);
    expect(topologies).toEqual(['2P1D', '2P2D']);
    expect(out).toContain(`--type=merge -p '{"spec":{"decode":{"replicas":2}}}'`);
    expect(out).toMatch(/sim-nixl\s+2P2D\s+2\s+2\s+64\s+nixl\s+True/);

    // The path of each request, from the router's metrics and the engines' own logs.
    expect(out).toMatch(/short request: ~2 estimated tokens \(< threshold 64\)/);
    expect(out).toMatch(
      /short request: path direct: sim-nixl-decode-\S+ \(prefill \+ decode on one engine\); TTFT \d+ ms/,
    );
    expect(out).toMatch(/long request: ~400 estimated tokens \(>= threshold 64\)/);
    expect(out).toMatch(
      /long request: path dpd: prefill on sim-nixl-prefill-\S+ -> decode on sim-nixl-decode-\S+ \(KV pulled over NIXL\)/,
    );
    expect(out).toMatch(/router: HTTP 200, x-request-id demo-long-\w+, 16 tokens/);
    // After scaling, round robin reaches both decoders.
    const decodersAfter = [
      ...out.matchAll(/long-\d request: path dpd: .* -> decode on (sim-nixl-decode-\S+)/g),
    ].map((m) => m[1]);
    expect(decodersAfter).toHaveLength(2);
    expect(new Set(decodersAfter).size).toBe(2);
    // The router's configuration lists 2 + 2 endpoints at the end.
    const lastConfig = out.slice(out.lastIndexOf('router configuration'));
    expect(lastConfig.match(/^\[demo[^\]]*\]\s+prefill\s/gm)).toHaveLength(2);
    expect(lastConfig.match(/^\[demo[^\]]*\]\s+decode\s/gm)).toHaveLength(2);

    expect(out).toMatch(/all stopped/);
    await expectNothingLeft(out);
  });

  test('while it waits the printed exports, the README tour and the operations first look work; Ctrl-C stops everything and exits 130', async () => {
    const demo = runDemo([]);
    await demo.waitFor(/Ctrl-C stops everything/, 480_000);
    const out = demo.output();
    expect(out).toMatch(/export KUBECONFIG=\/\S+\/admin\.kubeconfig/);
    expect(out).toMatch(/export PATH=\/\S+:\$PATH/);
    // The printed kubeconfig and kubectl work while the demo runs.
    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)![1]!;
    const binDir = /export PATH=(\S+):\$PATH/.exec(out)![1]!;
    const kubectl = spawn(
      join(binDir, 'kubectl'),
      ['get', 'disagg', 'sim-nixl', '-o', 'jsonpath={.status.topology}'],
      {
        env: { ...process.env, KUBECONFIG: kubeconfig },
      },
    );
    let topo = '';
    kubectl.stdout.on('data', (d: Buffer) => (topo += d.toString()));
    await new Promise((r) => kubectl.once('exit', r));
    expect(topo).toBe('2P2D');

    // The README's tour block, as a user would paste it into a second shell.
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const tour = /<!-- tour:[^>]*-->\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(tour).toBeDefined();
    const router = /export ROUTER=(\S+)/.exec(out)![1]!;
    const shell = spawn('bash', ['-euo', 'pipefail', '-c', tour!], {
      env: { ...process.env, KUBECONFIG: kubeconfig, PATH: `${binDir}:${process.env.PATH}`, ROUTER: router },
    });
    let tourOut = '';
    shell.stdout.on('data', (d: Buffer) => (tourOut += d.toString()));
    shell.stderr.on('data', (d: Buffer) => (tourOut += d.toString()));
    const tourCode = await new Promise((r) => shell.once('exit', r));
    expect({ tourCode, tourOut }).toEqual({ tourCode: 0, tourOut: expect.any(String) });
    expect(tourOut).toContain('"object":"text_completion"');
    // 3 long requests of the demo + the short one sent after threshold 0: the patch reached the router.
    expect(tourOut).toMatch(/router_requests_total\{cluster="default\/sim-nixl",path="dpd",status="200"\} 4/);
    expect(tourOut).toMatch(
      /router_requests_total\{cluster="default\/sim-nixl",path="direct",status="200"\} 2/,
    );
    // PREFILL READY may still count the pod being drained (it runs for drainSeconds).
    expect(tourOut).toMatch(/sim-nixl\s+1P2D\s+\d\s+2\s+0\s+nixl\s+True/);
    expect(tourOut).toContain('Conditions:');

    // docs/operations.md's first-look block, for the demo's cluster.
    const ops = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
    const firstLook = /<!-- ops-check:[^>]*-->\n```sh\n([\s\S]*?)```/.exec(ops)?.[1];
    expect(firstLook).toBeDefined();
    const check = spawn('bash', ['-euo', 'pipefail', '-c', firstLook!], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        PATH: `${binDir}:${process.env.PATH}`,
        NS: 'default',
        NAME: 'sim-nixl',
      },
    });
    let checkOut = '';
    check.stdout.on('data', (d: Buffer) => (checkOut += d.toString()));
    check.stderr.on('data', (d: Buffer) => (checkOut += d.toString()));
    const checkCode = await new Promise((r) => check.once('exit', r));
    expect({ checkCode, checkOut }).toEqual({ checkCode: 0, checkOut: expect.any(String) });
    expect(checkOut).toMatch(/^Ready\tTrue\tAllEndpointsRoutable\t/m);
    expect(checkOut).toMatch(/^RouterConfigured\tTrue\tConfigAcknowledged\t/m);
    expect(checkOut).toContain('ScaledPool');

    demo.child.kill('SIGINT');
    expect(await demo.exit).toBe(130);
    expect(demo.output()).toMatch(/SIGINT: stopping everything/);
    await expectNothingLeft(demo.output());
  });

  test('a failure after start-up (a manifest the API server refuses) tears everything down and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'demo-test-'));
    try {
      const bad = readFileSync(join(REPO_ROOT, 'docs', 'examples', 'sim-nixl-2p1d.yaml'), 'utf8').replace(
        /decode:\n {4}replicas: 1/,
        'decode:\n    replicas: 0',
      );
      expect(bad).toContain('replicas: 0');
      const manifest = join(dir, 'bad.yaml');
      writeFileSync(manifest, bad);
      const demo = runDemo(['--once', '--manifest', manifest]);
      expect(await demo.exit).toBe(1);
      const out = demo.output();
      expect(out).toMatch(/FAILED: kubectl apply failed/);
      expect(out).toContain('spec.prefill.replicas > 0 needs spec.decode.replicas > 0');
      await expectNothingLeft(out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the threshold sweep of docs/operations.md runs and prints its table (DPD and direct checked per row)', async () => {
    const sweep = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'test', 'demo', 'threshold-sweep.ts'),
        '--lengths',
        '32,512',
        '--samples',
        '2',
        '--background',
        '2',
        '--json',
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    sweep.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sweep.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((r) => sweep.once('exit', r));
    expect({ code, out }).toEqual({
      code: 0,
      out: expect.stringContaining('| prompt tokens | TTFT direct (ms) | TTFT DPD (ms) |'),
    });
    expect(out).toMatch(/^\| 32 \| \d+ \| \d+ \| [+-]\d+ \|/m);
    expect(out).toMatch(/^\| 512 \| \d+ \| \d+ \| [+-]\d+ \|/m);
    const json = JSON.parse(out.split('\n').find((l) => l.startsWith('{"event":"threshold-sweep"'))!) as {
      rows: Array<{ tokens: number; ttftDirectMs: number; ttftDpdMs: number }>;
    };
    expect(json.rows.map((r) => r.tokens)).toEqual([32, 512]);
    for (const r of json.rows) expect(r.ttftDirectMs > 0 && r.ttftDpdMs > 0).toBe(true);
  });
});
