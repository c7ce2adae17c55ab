// The NIXL path against an engine simulator no one here wrote: llm-d-inference-sim (Go), offline
// with a fake model and its dummy tokenizer. Its binary comes from test/cluster/build-bins.sh.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { postJson, postSse, waitFor } from '../../router/test/support/http.js';

jest.setTimeout(120_000);

/** Where build-bins.sh caches binaries: $DISAGG_CACHE_DIR or ${XDG_CACHE_HOME:-~/.cache}/disagg-operator, <version>/bin. */
function findSimBinary(): string | undefined {
  const root =
    process.env['DISAGG_CACHE_DIR'] ??
    join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'disagg-operator');
  if (!existsSync(root)) return undefined;
  for (const version of readdirSync(root)) {
    const bin = join(root, version, 'bin', 'llm-d-inference-sim');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

const BINARY = findSimBinary();
if (!BINARY) {
  console.warn(
    'SKIPPED router <-> llm-d-inference-sim interop: no llm-d-inference-sim binary under ~/.cache/disagg-operator/*/bin ' +
      '(build it with `bash test/cluster/build-bins.sh`, which needs Go).',
  );
}
const describeIfBinary = BINARY ? describe : describe.skip;

interface GoSim {
  url: string;
  log: () => string;
  stop: () => Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startGoSim(): Promise<GoSim> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    BINARY!,
    [
      '--port',
      String(port),
      '--model',
      'fake-model',
      '--force-dummy-tokenizer',
      '--log-http',
      '--enable-request-id-headers',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'llm-d-inference-sim to listen',
    async () => {
      if (child.exitCode !== null) throw new Error(`llm-d-inference-sim exited ${child.exitCode}: ${log}`);
      try {
        return (await fetch(`${url}/health`)).ok;
      } catch {
        return false;
      }
    },
    60_000,
  );
  return {
    url,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Request bodies the Go simulator logged (--log-http), for requests carrying `marker`. */
function loggedBodies(log: string, marker: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const entry of log.split('"HTTP request"').slice(1)) {
    const request = entry.split('"HTTP response"')[0]!;
    const m = /body="((?:[^"\\]|\\.)*)"/.exec(request);
    if (!m || !m[1]) continue;
    const body = JSON.parse(JSON.parse(`"${m[1]}"`) as string) as Record<string, unknown>;
    if (JSON.stringify(body).includes(marker)) out.push(body);
  }
  return out;
}

describeIfBinary('router NIXL path against llm-d-inference-sim', () => {
  let prefill: GoSim;
  let decode: GoSim;
  let router: RunningRouter;

  beforeAll(async () => {
    [prefill, decode] = await Promise.all([startGoSim(), startGoSim()]);
    router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
    const r = router.applyConfig({
      generation: 1,
      clusters: [
        {
          name: 'interop',
          models: ['fake-model'],
          connector: 'nixl',
          routingThreshold: 0,
          prefill: { endpoints: [{ id: 'go-prefill', url: prefill.url }] },
          decode: { endpoints: [{ id: 'go-decode', url: decode.url }] },
        },
      ],
    });
    expect(r.ok).toBe(true);
  });

  afterAll(async () => {
    await router?.stop();
    await Promise.all([prefill?.stop(), decode?.stop()]);
  });

  it('prefills with do_remote_decode and decodes with the prefiller params verbatim', async () => {
    const marker = 'interop-marker-one';
    const r = await postJson(
      `${router.url}/v1/completions`,
      { model: 'fake-model', prompt: `${marker} tell me a story`, max_tokens: 5 },
      { 'x-request-id': 'interop-1' },
    );
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      object: 'text_completion',
      choices: [expect.objectContaining({ text: expect.any(String) })],
    });
    await waitFor('both legs in the logs', () => loggedBodies(decode.log(), marker).length === 1);
    const [p] = loggedBodies(prefill.log(), marker);
    expect(p).toMatchObject({
      stream: false,
      max_tokens: 1,
      kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false, remote_block_ids: null },
    });
    const [d] = loggedBodies(decode.log(), marker);
    // llm-d-inference-sim answers with string block ids and host "DUMMY": forwarded as they came.
    expect(d).toMatchObject({
      max_tokens: 5,
      kv_transfer_params: {
        do_remote_prefill: true,
        do_remote_decode: false,
        remote_block_ids: ['DUMMY_ID'],
        remote_engine_id: 'DUMMY_ID',
        remote_host: 'DUMMY',
        remote_port: 1234,
      },
    });
  });

  it('streams chat through the decoder while the prefill leg stays unstreamed', async () => {
    const marker = 'interop-marker-two';
    const r = await postSse(`${router.url}/v1/chat/completions`, {
      model: 'fake-model',
      messages: [{ role: 'user', content: `${marker} hello` }],
      max_tokens: 4,
      stream: true,
    });
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^text\/event-stream/);
    expect(r.done).toBe(true);
    await waitFor('both legs in the logs', () => loggedBodies(decode.log(), marker).length === 1);
    expect(loggedBodies(prefill.log(), marker)[0]).toMatchObject({
      stream: false,
      kv_transfer_params: { do_remote_decode: true },
    });
    expect(loggedBodies(decode.log(), marker)[0]).toMatchObject({
      stream: true,
      kv_transfer_params: { do_remote_prefill: true },
    });
  });
});
