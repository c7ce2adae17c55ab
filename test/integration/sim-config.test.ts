// Simulator flags and their env-var fallbacks (flag wins), as CONTRACTS.md lists them.
import { describe, expect, test } from '@jest/globals';
import { ConfigError, parseConfig, type SimConfig } from '../sim/config.js';

const parse = (argv: string[], env: Record<string, string> = {}): SimConfig => {
  const c = parseConfig(argv, env);
  if (c === 'help') throw new Error('unexpected help');
  return c;
};

describe('simulator config', () => {
  test('defaults follow vLLM where vLLM has one', () => {
    const c = parse([]);
    expect(c).toMatchObject({ host: '127.0.0.1', port: 0, role: 'both', connector: 'none', tpSize: 1 });
    expect(c.nixl).toEqual({ sideChannelHost: 'localhost', sideChannelPort: 5600, kvLeaseMs: 30000 });
    expect(c.lmcache.peerHost).toBe('127.0.0.1');
  });

  test('env vars fill in, flags win', () => {
    const env = {
      VLLM_NIXL_SIDE_CHANNEL_HOST: '10.0.0.5',
      VLLM_NIXL_SIDE_CHANNEL_PORT: '5601',
      LMCACHE_PD_PEER_INIT_PORT: '7300,7301',
      LMCACHE_PD_PEER_ALLOC_PORT: '7400,7401',
      LMCACHE_PD_PROXY_HOST: '10.0.0.9',
      LMCACHE_PD_PROXY_PORT: '7500',
    };
    const c = parse(['--nixl-side-channel-port', '6000', '--host=127.0.0.7'], env);
    expect(c.nixl.sideChannelHost).toBe('10.0.0.5');
    expect(c.nixl.sideChannelPort).toBe(6000);
    expect(c.lmcache).toMatchObject({
      initPorts: [7300, 7301],
      allocPorts: [7400, 7401],
      proxyHost: '10.0.0.9',
      proxyPort: 7500,
      peerHost: '127.0.0.7',
    });
    expect(c.tpSize).toBe(2);
  });

  test('latency and fault flags', () => {
    const c = parse([
      '--prefill-ms-per-token',
      '0.5',
      '--itl-ms',
      '20',
      '--max-num-seqs',
      '4',
      '--kv-transfer-ms-per-token',
      '0.1',
      '--interference-factor',
      '2',
      '--startup-ms',
      '100',
      '--fail-rate',
      '0.1',
      '--fail-status',
      '503',
      '--hang',
      '--drop-after-chunks',
      '3',
    ]);
    expect(c.latency).toEqual({
      prefillMsPerToken: 0.5,
      itlMs: 20,
      maxNumSeqs: 4,
      kvTransferMsPerToken: 0.1,
      interferenceFactor: 2,
    });
    expect(c.faults).toMatchObject({ failRate: 0.1, failStatus: 503, hang: true, dropAfterChunks: 3 });
    expect(c.startupMs).toBe(100);
  });

  test.each([
    [['--role', 'router']],
    [['--connector', 'mooncake']],
    [['--lmcache-init-ports', '1,2', '--lmcache-alloc-ports', '3']],
    [['--tp-size', '2', '--lmcache-init-ports', '1', '--lmcache-alloc-ports', '3']],
    [['--unknown']],
    [['--itl-ms', 'fast']],
  ])('rejects %j', (argv) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
  });

  test("vLLM's spellings work too", () => {
    const c = parse([
      '--served-model-name',
      'llama',
      '--tensor-parallel-size',
      '2',
      '--kv-transfer-config',
      '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer"}',
    ]);
    expect(c).toMatchObject({ model: 'llama', tpSize: 2, connector: 'lmcache', role: 'decode' });
    const n = parse([
      '--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_both"}',
      '--role',
      'prefill',
    ]);
    expect(n).toMatchObject({ connector: 'nixl', role: 'prefill' });
    expect(() => parse(['--kv-transfer-config', '{"kv_connector":"P2pNcclConnector"}'])).toThrow(ConfigError);
  });

  test('--help', () => {
    expect(parseConfig(['--help'], {})).toBe('help');
  });
});
