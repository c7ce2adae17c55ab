// The operator with real engines: a DisaggCluster whose pods are real vLLM engines (the loopback
// kubelet runs the vLLM image as the cached CPU build), discovered by the operator from their labels
// and the NIXL side-channel annotation, and served DPD end to end through the router it configures.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  condition,
  isReady,
  routerConfig,
  startE2eEnv,
  toApplyInput,
  waitForStatus,
  type E2eEnv,
  type RouterProc,
} from '../../operator/test/support/e2e-env.js';
import { metricValue } from '../../router/test/support/http.js';
import { call, freshPrompt, LONG_CHARS, requestBody, SHORT_CHARS } from './support.js';
import { MAX_MODEL_LEN, SERVED_MODEL, vllmCpuEngineCommand } from './vllm-engine.js';

jest.setTimeout(600_000);

const NS = 'llm';
const NAME = 'tiny-nixl';
/** Pinned like docs/examples/vllm-nixl-2p1d.yaml; the loopback kubelet runs the CPU build for it. */
const IMAGE = 'vllm/vllm-openai:v0.32.0';

function engineTemplate(kvRole: 'kv_producer' | 'kv_consumer', cpu: number): Record<string, unknown> {
  return {
    spec: {
      terminationGracePeriodSeconds: 20,
      containers: [
        {
          name: 'vllm',
          image: IMAGE,
          args: [
            '--served-model-name',
            SERVED_MODEL,
            '--dtype',
            'bfloat16',
            '--max-model-len',
            String(MAX_MODEL_LEN),
            '--enforce-eager',
            '--kv-transfer-config',
            JSON.stringify({ kv_connector: 'NixlConnector', kv_role: kvRole, kv_buffer_device: 'cpu' }),
          ],
          env: [{ name: 'VLLM_CPU_OMP_THREADS_BIND', value: String(cpu) }],
          ports: [
            { name: 'http', containerPort: 8000 },
            { name: 'nixl', containerPort: 5600 },
          ],
        },
      ],
    },
  };
}

const manifest = {
  apiVersion: 'disagg.dev/v1alpha1',
  kind: 'DisaggCluster',
  metadata: { name: NAME, namespace: NS },
  spec: {
    model: { servedName: SERVED_MODEL },
    connector: { type: 'nixl', nixl: { sideChannelPort: 5600 } },
    routing: {
      threshold: 64,
      loadBalancing: 'round_robin',
      prefillFailurePolicy: 'fail', // a DPD request that cannot be disaggregated fails the test
      prefillTimeouts: { firstByteMs: 120_000 },
    },
    prefill: { replicas: 1, httpPort: 8000, drainSeconds: 1, template: engineTemplate('kv_producer', 0) },
    decode: { replicas: 1, httpPort: 8000, drainSeconds: 1, template: engineTemplate('kv_consumer', 1) },
  },
};

let env: E2eEnv;
let router: RouterProc;

beforeAll(async () => {
  env = await startE2eEnv({
    kubelet: { engine: vllmCpuEngineCommand(), readinessPeriodMs: 1000, probeTimeoutMs: 5000 },
  });
  router = await env.startRouter('real-a');
  await env.startOperator('real-a', router);
  await env.cluster.kubectl(['create', 'namespace', NS]);
}, 300_000);

afterAll(async () => {
  if (env) {
    await env.cluster.kubectl(['delete', 'disagg', NAME, '-n', NS, '--wait=false'], { allowFailure: true });
    await env.stop();
  }
});

const engineOf = (role: 'prefill' | 'decode') => {
  const e = env.cluster
    .kubelet!.engines()
    .find((x) => x.namespace === NS && x.name.startsWith(`${NAME}-${role}-`));
  if (!e) throw new Error(`no ${role} engine`);
  return e;
};
const engineMetrics = async (role: 'prefill' | 'decode'): Promise<string> =>
  (await fetch(`${engineOf(role).url}/metrics`)).text();

describe('a DisaggCluster of real vLLM engines', () => {
  it('becomes Ready 1P1D; the router gets both pods with the NIXL side channel of the pod', async () => {
    await env.cluster.kubectl(['apply', '-f', '-'], { input: toApplyInput([manifest]) });
    const c = await waitForStatus(env.cluster, NS, NAME, 'Ready 1P1D', (x) => isReady(x, '1P1D'), 480_000);
    expect(condition(c, 'Ready')?.status).toBe('True');
    const cfg = await routerConfig(router);
    const cluster = cfg!.config.clusters.find((x) => x.name === `${NS}/${NAME}`)!;
    expect(cluster.prefill.endpoints).toHaveLength(1);
    expect(cluster.decode.endpoints).toHaveLength(1);
    const pods = JSON.parse(
      (await env.cluster.kubectl(['get', 'pods', '-n', NS, '-l', `disagg.dev/cluster=${NAME}`, '-o', 'json']))
        .stdout,
    ) as {
      items: Array<{
        metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
        status: { podIP: string };
      }>;
    };
    const decodePod = pods.items.find((p) => p.metadata.labels['disagg.dev/role'] === 'decode')!;
    const decodeEp = cluster.decode.endpoints[0] as unknown as {
      url: string;
      nixl?: { sideChannelHost: string; sideChannelPort: number };
    };
    expect(decodeEp.url).toBe(`http://${decodePod.status.podIP}:8000`);
    expect(decodeEp.nixl).toEqual({ sideChannelHost: decodePod.status.podIP, sideChannelPort: 5600 });
    expect(Object.values(decodePod.metadata.annotations ?? {})).toContain('5600');
  });

  it('serves a long prompt prefill -> decode over NIXL and a short one direct', async () => {
    const ext = (t: string) =>
      metricValue(t, 'vllm:prompt_tokens_by_source_total', { source: 'external_kv_transfer' });
    const finished = (t: string) => metricValue(t, 'vllm:request_success_total');
    const [p0, d0] = await Promise.all([engineMetrics('prefill'), engineMetrics('decode')]);
    const long = await call(
      router.url,
      'chat',
      requestBody('chat', freshPrompt(LONG_CHARS), { stream: true }),
    );
    expect(long.status).toBe(200);
    expect(long.text.length).toBeGreaterThan(0);
    const [p1, d1] = await Promise.all([engineMetrics('prefill'), engineMetrics('decode')]);
    expect(finished(p1) - finished(p0)).toBe(1);
    expect(ext(d1) - ext(d0)).toBeGreaterThan(64);

    const short = await call(router.url, 'completions', requestBody('completions', freshPrompt(SHORT_CHARS)));
    expect(short.status).toBe(200);
    const [p2, d2] = await Promise.all([engineMetrics('prefill'), engineMetrics('decode')]);
    expect(finished(p2) - finished(p1)).toBe(0);
    expect(finished(d2) - finished(d1)).toBe(1);
    expect(ext(d2) - ext(d1)).toBe(0);
  });
});
