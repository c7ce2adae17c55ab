// The container image, without a Docker engine: the Dockerfile builds with the Node major the project
// runs on, runs as a numeric non-root user, and starts the commands the chart runs; the build context
// (.dockerignore) holds every source the build compiles and no tests, caches or node_modules; and the
// `npm run build` output, given production dependencies only, starts both processes with the chart's
// own flags.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join, relative } from 'node:path';
import { freePorts } from '../cluster/ports.js';
import { waitFor } from '../cluster/wait.js';
import { CHART_DIR, HelmSandbox, REPO_ROOT, findObject, type K8sObject } from './chart-helm.js';

jest.setTimeout(240_000);

const helm = new HelmSandbox();
afterAll(() => helm.dispose());
const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};
const env = { ...process.env, PATH: `${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` };

interface Stage {
  from: string;
  name?: string;
  instructions: Array<{ op: string; args: string }>;
}

/** Dockerfile -> stages of instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!op) continue;
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest!) ?? [];
      stages.push({ from: from!, name, instructions: [] });
    } else if (upper === 'ARG' && stages.length === 0) {
      const [k, v] = rest!.split('=');
      args[k!] = v ?? '';
    } else stages.at(-1)?.instructions.push({ op: upper, args: rest!.replace(/\s+/g, ' ') });
  }
  return { args, stages };
}

/** Docker's .dockerignore semantics (moby/patternmatcher): last matching pattern wins; a pattern
 * matching a parent directory matches everything under it; `!` re-includes. */
const GLOBSTAR = '@GLOBSTAR@'; // stands in for ** while single * and ? are translated
function dockerignoreExcludes(patterns: string[], path: string): boolean {
  const rules = patterns
    .map((p) => p.trim())
    .filter((p) => p && !p.startsWith('#'))
    .map((p) => {
      const negate = p.startsWith('!');
      const body = (negate ? p.slice(1) : p).replace(/^\/+/, '').replace(/\/+$/, '');
      const re = body
        .split('/')
        .map((seg) =>
          seg === '**'
            ? GLOBSTAR
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(new RegExp(`${GLOBSTAR}/`, 'g'), '(?:.*/)?')
        .replace(new RegExp(`/${GLOBSTAR}`, 'g'), '(?:/.*)?')
        .replace(new RegExp(GLOBSTAR, 'g'), '.*');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const r of rules) {
    if (candidates.some((c) => r.re.test(c))) excluded = !r.negate;
  }
  return excluded;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? REPO_ROOT, env, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const { args: dockerArgs, stages } = parseDockerfile(dockerfile);
const resolveFrom = (from: string): string =>
  from.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (_m, a: string | undefined, b: string | undefined) => dockerArgs[(a ?? b)!] ?? '',
  );
const finalStage = stages.at(-1)!;
const jsonArray = (op: string): string[] =>
  JSON.parse(finalStage.instructions.find((i) => i.op === op)!.args) as string[];
const nodeMajor = (v: string): number => Number(/(\d+)/.exec(v)![1]);

describe('Dockerfile', () => {
  test('every stage builds FROM the Node major the project runs on', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) {
      const image = resolveFrom(s.from);
      if (stages.some((o) => o.name === s.from)) continue; // FROM an earlier stage
      expect(image).toMatch(/^node:\d+/);
      expect(nodeMajor(image)).toBe(nodeMajor(packageJson.engines.node));
      expect(nodeMajor(image)).toBe(nodeMajor(process.version));
    }
  });

  test('a build stage runs npm ci then npm run build (tsc -> dist/)', () => {
    const build = stages.find((s) =>
      s.instructions.some((i) => i.op === 'RUN' && i.args.includes('npm run build')),
    )!;
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.findIndex((r) => r.startsWith('npm ci'))).toBeLessThan(
      runs.findIndex((r) => r === 'npm run build'),
    );
    expect(packageJson.scripts.build).toMatch(/^tsc -p tsconfig\.build\.json$/);
  });

  test('the final stage has production dependencies only and the compiled dist/', () => {
    const copies = finalStage.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
    const depsFrom = /--from=(\S+) \S*node_modules/.exec(copies.find((c) => c.includes('node_modules'))!)![1];
    const depsStage = stages.find((s) => s.name === depsFrom)!;
    expect(depsStage.instructions.some((i) => i.op === 'RUN' && /npm ci .*--omit=dev/.test(i.args))).toBe(
      true,
    );
    expect(copies).toContainEqual(expect.stringMatching(/^--from=\S+ \/app\/dist \.\/dist$/));
    // "type": "module" makes node load dist/*.js as ES modules
    expect(copies).toContain('package.json ./');
    expect(finalStage.instructions.some((i) => i.op === 'RUN' && i.args.includes('npm run build'))).toBe(
      false,
    );
  });

  test('runs as the numeric non-root user the chart runs as', async () => {
    const user = finalStage.instructions.filter((i) => i.op === 'USER').at(-1)!.args;
    const [uid, gid] = user.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    const objects = await helm.template();
    const pod = (
      findObject(objects, 'Deployment').spec as {
        template: { spec: { securityContext: Record<string, number> } };
      }
    ).template.spec.securityContext;
    expect(pod.runAsUser).toBe(uid);
    expect(pod.runAsGroup).toBe(gid);
  });

  test('the image entrypoint plus each entry file is exactly the command the chart runs', async () => {
    expect(jsonArray('ENTRYPOINT')).toEqual(['node']);
    expect(jsonArray('CMD')).toEqual(['dist/operator/src/main.js']);
    const objects = await helm.template();
    const containers = (
      findObject(objects, 'Deployment').spec as {
        template: { spec: { containers: Array<{ name: string; command: string[] }> } };
      }
    ).template.spec.containers;
    const commands = Object.fromEntries(containers.map((c) => [c.name, c.command]));
    expect(commands).toEqual({
      operator: [...jsonArray('ENTRYPOINT'), ...jsonArray('CMD')],
      router: [...jsonArray('ENTRYPOINT'), 'dist/router/src/main.js'],
    });
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');

  test('the matcher follows Docker semantics', () => {
    expect(dockerignoreExcludes(['test'], 'test/a/b.ts')).toBe(true);
    expect(dockerignoreExcludes(['*', '!src'], 'src/a.ts')).toBe(false);
    expect(dockerignoreExcludes(['*', '!src', '**/*.test.ts'], 'src/a.test.ts')).toBe(true);
    expect(dockerignoreExcludes(['*.md'], 'docs/a.md')).toBe(false);
  });

  test('keeps tests, caches, node_modules, dist, .git and .work out of the build context', () => {
    for (const path of [
      'test/integration/chart-image.test.ts',
      'test/cluster/k8s-bins/go.mod',
      'router/test/config-validate.test.ts',
      'operator/test/flags.test.ts',
      'router/src/some.test.ts',
      'node_modules/express/package.json',
      'dist/router/src/main.js',
      'coverage/lcov.info',
      '.bench/results.json',
      '.git/HEAD',
      '.work/COMMON.md',
      '.ci/jest-results.json',
      'charts/disagg-operator/values.yaml',
      'docs/install.md',
    ]) {
      expect({ path, excluded: dockerignoreExcludes(patterns, path) }).toEqual({ path, excluded: true });
    }
  });

  test('keeps every file the Dockerfile copies and every source the build compiles', async () => {
    const sources = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(' ').slice(0, -1));
    expect(sources).toEqual(
      expect.arrayContaining(['package.json', 'package-lock.json', 'router/src', 'operator/src']),
    );
    for (const path of sources) {
      expect({ path, excluded: dockerignoreExcludes(patterns, path) }).toEqual({ path, excluded: false });
    }
    const listed = await run(process.execPath, [
      join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'tsconfig.build.json',
      '--listFilesOnly',
    ]);
    expect(listed.code).toBe(0);
    const compiled = listed.stdout
      .split('\n')
      .filter((f) => f.startsWith(REPO_ROOT) && !f.includes('/node_modules/'))
      .map((f) => relative(REPO_ROOT, f));
    expect(compiled).toContain('router/src/main.ts');
    expect(compiled).toContain('operator/src/main.ts');
    for (const path of compiled) {
      expect({ path, excluded: dockerignoreExcludes(patterns, path) }).toEqual({ path, excluded: false });
      // the context holds it only if a COPY brings it into the build stage
      expect({ path, copied: sources.some((s) => path === s || path.startsWith(`${s}/`)) }).toEqual({
        path,
        copied: true,
      });
    }
  });
});

describe('npm run build output with production dependencies only', () => {
  // The final image's /app: dist/ from `npm run build`, package.json, node_modules with the
  // production dependency tree only (symlinks; --preserve-symlinks keeps resolution inside).
  const app = join(helm.dir, 'app');
  let objects: K8sObject[];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    const build = await run('npm', ['run', 'build', '--', '--outDir', join(app, 'dist')]);
    if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
    cpSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
    const ls = await run('npm', ['ls', '--omit=dev', '--omit=optional', '--all', '--parseable']);
    const topLevel = new Set(
      ls.stdout
        .split('\n')
        .map((p) => relative(join(REPO_ROOT, 'node_modules'), p))
        .filter((p) => p && !p.startsWith('..') && !p.includes('/node_modules/'))
        .filter((p) => !p.startsWith('@') || p.split('/').length === 2),
    );
    for (const dep of Object.keys(packageJson.dependencies)) expect(topLevel).toContain(dep);
    for (const p of topLevel) {
      mkdirSync(dirname(join(app, 'node_modules', p)), { recursive: true });
      symlinkSync(join(REPO_ROOT, 'node_modules', p), join(app, 'node_modules', p));
    }
    expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false);
    objects = await helm.template();
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  const chartContainer = (name: string): { command: string[]; args: string[] } =>
    (
      findObject(objects, 'Deployment').spec as {
        template: { spec: { containers: Array<{ name: string; command: string[]; args: string[] }> } };
      }
    ).template.spec.containers.find((c) => c.name === name)!;
  const POD_ENV: Record<string, string> = {
    POD_NAME: 'rel-disagg-operator-abc-xyz',
    POD_NAMESPACE: 'disagg-system',
    POD_IP: '127.0.0.1',
  };
  const expand = (a: string): string => a.replace(/\$\((\w+)\)/g, (_m, v: string) => POD_ENV[v]!);

  function start(
    command: string[],
    args: string[],
  ): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
    const [node, ...entry] = command;
    expect(node).toBe('node');
    const child = spawn(process.execPath, ['--preserve-symlinks', ...entry, ...args], {
      cwd: app,
      env: { PATH: env.PATH, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, output: () => out, exited };
  }

  test('the operator entry loads and accepts the flags the chart passes', async () => {
    const op = chartContainer('operator');
    const proc = start(op.command, [...op.args.map(expand), '--help']);
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toContain('Usage: disagg-operator');
  });

  test('the router entry serves with the flags the chart passes; the helm test script passes against it', async () => {
    const router = chartContainer('router');
    const [port, kvPort] = await freePorts(2);
    // loopback and free ports instead of the pod's 0.0.0.0:8000/7500; the socket in a scratch dir
    const args = router.args.map(expand).map((a) => {
      if (a.startsWith('--host=')) return '--host=127.0.0.1';
      if (a.startsWith('--port=')) return `--port=${port}`;
      if (a.startsWith('--kv-notify-port=')) return `--kv-notify-port=${kvPort}`;
      if (a.startsWith('--admin-socket=')) return `--admin-socket=${join(helm.dir, 'admin.sock')}`;
      return a;
    });
    expect(args.length).toBe(router.args.length);
    const proc = start(router.command, [...args, '--kv-notify-host=127.0.0.1']);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      'the router /health',
      async () => (await fetch(`${url}/health`).catch(() => undefined))?.status === 200,
      {
        timeoutMs: 60_000,
        abort: proc.exited.then((c) => Promise.reject(new Error(`router exited ${c}: ${proc.output()}`))),
      },
    );
    // unready without a routable cluster; the admin socket answers
    expect((await fetch(`${url}/ready`)).status).toBe(503);
    const admin = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { socketPath: join(helm.dir, 'admin.sock'), path: '/admin/config', method: 'GET' },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(admin.status).toBe(200);

    // the script the `helm test` pod runs, as it runs it (node --input-type=module -e <script>)
    const hook = (findObject(objects, 'Pod').spec as { containers: Array<{ command: string[] }> })
      .containers[0]!.command;
    expect(hook.slice(0, 3)).toEqual(['node', '--input-type=module', '-e']);
    expect(hook[3]).toBe(readFileSync(join(CHART_DIR, 'files', 'router-check.mjs'), 'utf8'));
    const check = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(
        process.execPath,
        hook.slice(1),
        { env: { ROUTER_URL: url, ROUTER_CHECK_TIMEOUT_MS: '10000' } },
        (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, out: stdout + stderr }),
      );
    });
    expect(check).toEqual({ code: 0, out: expect.stringContaining(`router at ${url} answers`) });

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    // and it fails when nothing answers
    const down = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(
        process.execPath,
        hook.slice(1),
        { env: { ROUTER_URL: url, ROUTER_CHECK_TIMEOUT_MS: '1500' } },
        (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, out: stdout + stderr }),
      );
    });
    expect(down).toEqual({ code: 1, out: expect.stringContaining('does not answer') });
  });
});
