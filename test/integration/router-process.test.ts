// The router as a process (`npm run router -- FLAGS`): --help, flag errors, seed-style flags,
// --config FILE re-read on change and on SIGHUP, the admin API on its socket and token-guarded TCP.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { stringify } from 'yaml';
import { configDoc } from '../../router/test/support/cluster.js';
import { getJson, postJson, waitFor } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(180_000);

const MAIN = join(process.cwd(), 'router', 'src', 'main.ts');
const LONG = 'A process reads its flags, its file and its signals. '.repeat(30);

interface RouterProcess {
  child: ChildProcess;
  url: string;
  lines: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

const started: ChildProcess[] = [];

async function runRouter(args: string[]): Promise<RouterProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, '--host', '127.0.0.1', '--port', '0', '--kv-notify-port', '0', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  started.push(child);
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const listening = await waitFor(
    'the "router listening" line',
    () => {
      if (child.exitCode !== null) throw new Error(`router exited ${child.exitCode}: ${stderr}`);
      return lines.find((l) => l['msg'] === 'router listening');
    },
    60_000,
  );
  return {
    child,
    url: `http://127.0.0.1:${String(listening['port'])}`,
    lines,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function admin(
  target: { socketPath: string } | { port: number },
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { ...target, host: '127.0.0.1', method, path: '/admin/config', headers },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode!, json: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let prefill: RunningEngine;
let decode: RunningEngine;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'router-process-'));
  [prefill, decode] = await Promise.all([
    startEngine({ role: 'prefill', connector: 'nixl' }),
    startEngine({ role: 'decode', connector: 'nixl' }),
  ]);
});

afterEach(async () => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await Promise.all([prefill?.stop(), decode?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('router process', () => {
  it('prints --help with every flag and rejects bad flags with exit code 2', () => {
    const help = spawnSync(process.execPath, ['--import', 'tsx', MAIN, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--prefill-endpoints');
    expect(help.stdout).toContain('--admin-token-file');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', MAIN, '--routing-threshold', 'many'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--routing-threshold must be a non-negative integer');
  });

  it('serves one cluster from the seed-style flags', async () => {
    await Promise.all([prefill.reset(), decode.reset()]);
    const r = await runRouter([
      '--admin-socket',
      '',
      '--prefill-endpoints',
      prefill.url,
      '--decode-endpoints',
      decode.url,
      '--routing-threshold',
      '64',
      '--model',
      'sim-model',
    ]);
    try {
      const res = await postJson(`${r.url}/v1/completions`, {
        model: 'sim-model',
        prompt: LONG,
        max_tokens: 3,
      });
      expect(res.status).toBe(200);
      expect((await decode.requests())[0]).toMatchObject({ kvSource: 'nixl' });
      expect((await getJson(`${r.url}/v1/models`)).json['data']).toEqual([
        expect.objectContaining({ id: 'sim-model' }),
      ]);
    } finally {
      await r.stop();
    }
  });

  it('follows --config FILE: re-read on change and SIGHUP, a bad file keeps the last good config', async () => {
    const file = join(dir, 'router.yaml');
    const socketPath = join(dir, 'admin.sock');
    await writeFile(
      file,
      stringify(
        configDoc(
          [{ connector: 'nixl', routingThreshold: 100_000, prefill: [prefill], decode: [decode] }],
          1,
        ),
      ),
    );
    const r = await runRouter(['--config', file, '--admin-socket', socketPath]);
    try {
      expect((await admin({ socketPath }, 'GET')).json['generation']).toBe(1);

      await writeFile(
        file,
        stringify(
          configDoc([{ connector: 'nixl', routingThreshold: 0, prefill: [prefill], decode: [decode] }], 2),
        ),
      );
      await waitFor(
        'generation 2 from the changed file',
        async () => (await admin({ socketPath }, 'GET')).json['generation'] === 2,
      );

      await writeFile(file, 'clusters:\n  - name: broken\n    routingThreshold: -1\n');
      await waitFor('the rejection log line', () =>
        r.lines.some((l) => String(l['msg']).startsWith('config file rejected') && l['level'] === 'error'),
      );
      const kept = await admin({ socketPath }, 'GET');
      expect(kept.json['generation']).toBe(2);

      // SIGHUP re-reads the file even when nothing else triggers it.
      await writeFile(
        file,
        stringify(
          configDoc([{ connector: 'nixl', routingThreshold: 0, prefill: [prefill], decode: [decode] }], 3),
        ),
      );
      await waitFor(
        'generation 3',
        async () => (await admin({ socketPath }, 'GET')).json['generation'] === 3,
      );
      const appliedAt = (await admin({ socketPath }, 'GET')).json['appliedAt'];
      r.child.kill('SIGHUP');
      await waitFor(
        'a re-apply on SIGHUP',
        async () => (await admin({ socketPath }, 'GET')).json['appliedAt'] !== appliedAt,
      );

      const res = await postJson(`${r.url}/v1/completions`, { prompt: 'short', max_tokens: 2 });
      expect(res.status).toBe(200);
    } finally {
      await r.stop();
    }
  });

  it('guards the loopback TCP admin listener with the token from --admin-token-file', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'tcp-token\n');
    const adminPort = await freePort();
    const r = await runRouter([
      '--admin-socket',
      '',
      '--admin-port',
      String(adminPort),
      '--admin-token-file',
      tokenFile,
    ]);
    try {
      expect((await admin({ port: adminPort }, 'GET')).status).toBe(401);
      const doc = configDoc([{ connector: 'nixl', prefill: [prefill], decode: [decode] }], 5);
      const put = await admin({ port: adminPort }, 'PUT', doc, {
        authorization: 'Bearer tcp-token',
        'content-type': 'application/json',
      });
      expect(put.status).toBe(200);
      expect(put.json['generation']).toBe(5);
      expect((await getJson(`${r.url}/ready`)).status).toBe(200);
    } finally {
      await r.stop();
    }
  });
});
