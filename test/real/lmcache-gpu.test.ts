// Real LMCache P/D behind the router: needs a GPU. lmcache 0.5.6 cannot move KV on CPU ("No
// supported cpu connector found": its vLLM connector supports cuda/xpu/musa/hpu only), so on this
// CPU-only tier the LMCache path is held to the simulator (test/integration/router-lmcache.test.ts)
// and this file is skipped, saying why. Where a GPU exists, point LMCACHE_VLLM_PYTHON at a Python
// with a GPU vLLM + lmcache and LMCACHE_MODEL at a model directory; then it runs.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { freePorts } from '../cluster/ports.js';
import { call, freshPrompt, LONG_CHARS, requestBody } from './support.js';

jest.setTimeout(900_000);

const python = process.env.LMCACHE_VLLM_PYTHON;
const model = process.env.LMCACHE_MODEL;
const gpu = existsSync('/dev/nvidia0');
const why = !gpu
  ? 'skipped: no GPU here (/dev/nvidia0 absent) and lmcache 0.5.6 has no CPU connector'
  : !python || !model
    ? 'skipped: set LMCACHE_VLLM_PYTHON (GPU vLLM + lmcache) and LMCACHE_MODEL'
    : 'real LMCache prefill/decode on a GPU';
const suite = gpu && python && model ? describe : describe.skip;

suite(why, () => {
  const procs: ChildProcess[] = [];
  let router: RunningRouter;
  let prefillUrl = '';
  let decodeUrl = '';

  const start = (
    name: string,
    port: number,
    cfgFile: string,
    role: string,
    extra: Record<string, unknown>,
    dir: string,
  ) => {
    const kv = {
      kv_connector: 'LMCacheConnectorV1',
      kv_role: role,
      kv_connector_extra_config: { discard_partial_chunks: false, lmcache_rpc_port: name, ...extra },
    };
    const p = spawn(
      python!,
      [
        '-m',
        'vllm.entrypoints.openai.api_server',
        '--model',
        model!,
        '--served-model-name',
        'lm',
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--no-enable-prefix-caching',
        '--kv-transfer-config',
        JSON.stringify(kv),
      ],
      {
        env: { ...process.env, LMCACHE_CONFIG_FILE: cfgFile, PYTHONHASHSEED: '0' },
        stdio: ['ignore', 'ignore', 'ignore'],
        detached: true,
        cwd: dir,
      },
    );
    procs.push(p);
    return `http://127.0.0.1:${port}`;
  };

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'real-lmcache-'));
    router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
    const [pPort, dPort, init, alloc] = await freePorts(4);
    const common =
      'enable_pd: true\ntransfer_channel: "nixl"\nnixl_backends: [UCX]\nlocal_cpu: false\nmax_local_cpu_size: 0\npd_buffer_device: "cuda"\n';
    writeFileSync(
      join(dir, 'sender.yaml'),
      `${common}pd_role: "sender"\npd_proxy_host: "127.0.0.1"\npd_proxy_port: ${router.kvNotifyPort}\npd_buffer_size: 1073741824\n`,
    );
    writeFileSync(
      join(dir, 'receiver.yaml'),
      `${common}pd_role: "receiver"\npd_peer_host: "127.0.0.1"\npd_peer_init_port: [${init}]\npd_peer_alloc_port: [${alloc}]\npd_buffer_size: 2147483648\n`,
    );
    prefillUrl = start('producer1', pPort!, join(dir, 'sender.yaml'), 'kv_producer', {}, dir);
    decodeUrl = start(
      'consumer1',
      dPort!,
      join(dir, 'receiver.yaml'),
      'kv_consumer',
      { skip_last_n_tokens: 1 },
      dir,
    );
    for (const u of [prefillUrl, decodeUrl]) {
      const deadline = Date.now() + 600_000;
      while (
        !(await fetch(`${u}/health`)
          .then((r) => r.ok)
          .catch(() => false))
      ) {
        if (Date.now() > deadline) throw new Error(`${u} not healthy`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    const doc = configDoc([
      {
        name: 'default/lmcache',
        models: ['lm'],
        connector: 'lmcache',
        routingThreshold: 64,
        prefill: [{ url: prefillUrl, host: '127.0.0.1', lmcacheInitPorts: [], lmcacheAllocPorts: [] }],
        decode: [
          { url: decodeUrl, host: '127.0.0.1', lmcacheInitPorts: [init!], lmcacheAllocPorts: [alloc!] },
        ],
      },
    ]);
    expect(router.applyConfig(doc).ok).toBe(true);
  }, 900_000);

  afterAll(async () => {
    await router?.stop({ graceMs: 1000 });
    for (const p of procs) if (p.pid) process.kill(-p.pid, 'SIGKILL');
  });

  it('a long prompt goes prefill -> KV pushed -> decode, equal to one engine greedy answer', async () => {
    const body = { ...requestBody('completions', freshPrompt(LONG_CHARS)), model: 'lm' };
    const got = await call(router.url, 'completions', body);
    const ref = await call(decodeUrl, 'completions', body);
    expect(got.status).toBe(200);
    expect(got.text).toBe(ref.text);
  });
});
