// Simulator configuration: CLI flags with env-var fallbacks (flag wins), as CONTRACTS.md lists them.

export type EngineRole = 'prefill' | 'decode' | 'both';
export type Connector = 'nixl' | 'lmcache' | 'none';

export interface FaultSettings {
  /** Fraction of completion requests (0..1) answered with failStatus; spread deterministically. */
  failRate: number;
  failStatus: number;
  /** Accept completion requests and never answer (until the client goes away). */
  hang: boolean;
  /** Destroy the connection after this many SSE chunks (non-stream: before the body). null = off. */
  dropAfterChunks: number | null;
  /** Stop sending (but keep the connection open) after this many SSE chunks. null = off. */
  stallAfterChunks: number | null;
}

export interface LatencySettings {
  prefillMsPerToken: number;
  itlMs: number;
  maxNumSeqs: number;
  kvTransferMsPerToken: number;
  /** Each running local prefill slows every decode step by this factor (itl * (1 + f * prefills)). */
  interferenceFactor: number;
}

export interface SimConfig {
  host: string;
  port: number;
  model: string;
  role: EngineRole;
  connector: Connector;
  tpSize: number;
  maxModelLen: number;
  defaultMaxTokens: number;
  blockSize: number;
  numGpuBlocks: number;
  startupMs: number;
  logLevel: string;
  /** Exit when stdin closes: the harness sets it so a dead parent never leaves an orphan. */
  exitWithParent: boolean;
  nixl: { sideChannelHost: string; sideChannelPort: number; kvLeaseMs: number };
  lmcache: {
    initPorts: number[];
    allocPorts: number[];
    peerHost: string;
    proxyHost: string | null;
    proxyPort: number | null;
    /** Push KV + notify this long after answering the prefill leg (0 = before answering, like LMCache). */
    notifyDelayMs: number;
  };
  latency: LatencySettings;
  faults: FaultSettings;
}

interface FlagSpec {
  env?: string;
  help: string;
}

// Every flag the CLI accepts, with the env var it falls back to.
export const FLAGS: Record<string, FlagSpec> = {
  host: { env: 'SIM_HOST', help: 'listen address (127.0.0.1)' },
  port: { env: 'SIM_PORT', help: 'HTTP port, 0 = free port (0)' },
  model: { env: 'SIM_MODEL', help: 'served model name (sim-model)' },
  role: { env: 'SIM_ROLE', help: 'prefill|decode|both (both)' },
  connector: { env: 'SIM_CONNECTOR', help: 'nixl|lmcache|none (none)' },
  'tp-size': { env: 'SIM_TP_SIZE', help: 'tensor-parallel size (1)' },
  'max-model-len': { env: 'SIM_MAX_MODEL_LEN', help: 'context length limit in tokens (8192)' },
  'default-max-tokens': {
    env: 'SIM_DEFAULT_MAX_TOKENS',
    help: 'tokens generated when max_tokens is absent (16)',
  },
  'block-size': { env: 'SIM_BLOCK_SIZE', help: 'KV block size in tokens (16)' },
  'num-gpu-blocks': { env: 'SIM_NUM_GPU_BLOCKS', help: 'KV blocks for kv_cache_usage_perc (4096)' },
  'startup-ms': { env: 'SIM_STARTUP_MS', help: '/health answers 503 for this long after start (0)' },
  'log-level': { env: 'SIM_LOG_LEVEL', help: 'winston level (warn)' },
  'exit-with-parent': { env: 'SIM_EXIT_WITH_PARENT', help: 'exit when stdin closes (false)' },
  'nixl-side-channel-host': { env: 'VLLM_NIXL_SIDE_CHANNEL_HOST', help: 'advertised host (localhost)' },
  'nixl-side-channel-port': {
    env: 'VLLM_NIXL_SIDE_CHANNEL_PORT',
    help: 'side-channel port, 0 = free (5600)',
  },
  'kv-lease-ms': { env: 'SIM_KV_LEASE_MS', help: 'how long prefilled blocks wait to be pulled (30000)' },
  'lmcache-init-ports': { env: 'LMCACHE_PD_PEER_INIT_PORT', help: 'receiver init ports, one per TP rank' },
  'lmcache-alloc-ports': { env: 'LMCACHE_PD_PEER_ALLOC_PORT', help: 'receiver alloc ports, one per TP rank' },
  'lmcache-peer-host': { env: 'LMCACHE_PD_PEER_HOST', help: 'receiver listen host (= --host)' },
  'lmcache-proxy-host': { env: 'LMCACHE_PD_PROXY_HOST', help: 'where KV-ready notifications go' },
  'lmcache-proxy-port': { env: 'LMCACHE_PD_PROXY_PORT', help: 'ZeroMQ port of the notification PULL' },
  'lmcache-notify-delay-ms': {
    env: 'SIM_LMCACHE_NOTIFY_DELAY_MS',
    help: 'push KV + notify after answering, delayed (0 = before answering)',
  },
  'prefill-ms-per-token': {
    env: 'SIM_PREFILL_MS_PER_TOKEN',
    help: 'local prefill time per prompt token (0)',
  },
  'itl-ms': { env: 'SIM_ITL_MS', help: 'inter-token latency (0)' },
  'max-num-seqs': { env: 'SIM_MAX_NUM_SEQS', help: 'concurrent sequences; the rest wait (256)' },
  'kv-transfer-ms-per-token': { env: 'SIM_KV_TRANSFER_MS_PER_TOKEN', help: 'KV transfer time per token (0)' },
  'interference-factor': { env: 'SIM_INTERFERENCE_FACTOR', help: 'decode slowdown per running prefill (0)' },
  'fail-rate': { env: 'SIM_FAIL_RATE', help: 'fraction of requests failed (0)' },
  'fail-status': { env: 'SIM_FAIL_STATUS', help: 'status of failed requests (500)' },
  hang: { env: 'SIM_HANG', help: 'never answer completion requests (false)' },
  'drop-after-chunks': { env: 'SIM_DROP_AFTER_CHUNKS', help: 'cut the connection after N chunks' },
  'stall-after-chunks': { env: 'SIM_STALL_AFTER_CHUNKS', help: 'stop sending after N chunks' },
  // vLLM's own spellings, so a pod template written for `vllm serve` also runs the simulator.
  'served-model-name': { help: 'vLLM alias of --model' },
  'tensor-parallel-size': { help: 'vLLM alias of --tp-size' },
  'kv-transfer-config': {
    help: 'vLLM JSON: kv_connector NixlConnector|LMCacheConnectorV1 sets --connector; kv_role kv_producer|kv_consumer sets --role',
  },
};

const ALIASES: Record<string, string> = { 'served-model-name': 'model', 'tensor-parallel-size': 'tp-size' };

/** --kv-transfer-config as vLLM takes it: which connector, and (LMCache) which side this engine is. */
function fromKvTransferConfig(json: string): { connector?: string; role?: string } {
  let c: { kv_connector?: unknown; kv_role?: unknown };
  try {
    c = JSON.parse(json) as typeof c;
  } catch {
    throw new ConfigError('--kv-transfer-config must be JSON');
  }
  const connector =
    c.kv_connector === 'NixlConnector'
      ? 'nixl'
      : c.kv_connector === 'LMCacheConnectorV1'
        ? 'lmcache'
        : undefined;
  if (c.kv_connector !== undefined && !connector)
    throw new ConfigError(`unsupported kv_connector ${String(c.kv_connector)}`);
  const role = c.kv_role === 'kv_producer' ? 'prefill' : c.kv_role === 'kv_consumer' ? 'decode' : undefined;
  return { connector, role };
}

export class ConfigError extends Error {}

function parseArgv(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      out.set('help', 'true');
      continue;
    }
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!(name in FLAGS)) throw new ConfigError(`unknown flag --${name}`);
    const key = ALIASES[name] ?? name;
    if (eq >= 0) {
      out.set(key, arg.slice(eq + 1));
    } else if (name === 'hang' || name === 'exit-with-parent') {
      // Boolean flags take an optional value.
      const next = argv[i + 1];
      if (next === 'true' || next === 'false') {
        out.set(name, next);
        i++;
      } else out.set(name, 'true');
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`flag --${name} needs a value`);
      out.set(key, next);
      i++;
    }
  }
  return out;
}

export function helpText(): string {
  const lines = Object.entries(FLAGS).map(
    ([name, spec]) => `  --${name.padEnd(26)} ${spec.help}${spec.env ? ` [env ${spec.env}]` : ''}`,
  );
  return `Usage: node --import tsx test/sim/main.ts [flags]\n${lines.join('\n')}\n`;
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): SimConfig | 'help' {
  const flags = parseArgv(argv);
  if (flags.has('help')) return 'help';
  const raw = (name: string): string | undefined => {
    const v = flags.get(name);
    if (v !== undefined) return v;
    const envName = FLAGS[name]?.env;
    const e = envName ? env[envName] : undefined;
    return e === undefined || e === '' ? undefined : e;
  };
  const str = (name: string, dflt: string): string => raw(name) ?? dflt;
  const num = (name: string, dflt: number, min = 0): number => {
    const v = raw(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min)
      throw new ConfigError(`--${name} must be a number >= ${min}, got ${v}`);
    return n;
  };
  const int = (name: string, dflt: number, min = 0): number => {
    const n = num(name, dflt, min);
    if (!Number.isInteger(n)) throw new ConfigError(`--${name} must be an integer`);
    return n;
  };
  const optInt = (name: string): number | null => (raw(name) === undefined ? null : int(name, 0));
  const bool = (name: string): boolean => {
    const v = raw(name);
    return v === 'true' || v === '1';
  };
  const ports = (name: string): number[] => {
    const v = raw(name);
    if (v === undefined) return [];
    return v.split(',').map((p) => {
      const n = Number(p.trim());
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`--${name}: bad port ${p}`);
      return n;
    });
  };

  const kvc = raw('kv-transfer-config');
  const fromVllm = kvc === undefined ? {} : fromKvTransferConfig(kvc);
  const role = raw('role') ?? fromVllm.role ?? 'both';
  if (role !== 'prefill' && role !== 'decode' && role !== 'both') throw new ConfigError(`bad --role ${role}`);
  const connector = raw('connector') ?? fromVllm.connector ?? 'none';
  if (connector !== 'nixl' && connector !== 'lmcache' && connector !== 'none') {
    throw new ConfigError(`bad --connector ${connector}`);
  }
  const host = str('host', '127.0.0.1');
  const initPorts = ports('lmcache-init-ports');
  const allocPorts = ports('lmcache-alloc-ports');
  if (initPorts.length !== allocPorts.length) {
    throw new ConfigError('--lmcache-init-ports and --lmcache-alloc-ports need one port per TP rank each');
  }
  const tpSize = int('tp-size', initPorts.length || 1, 1);
  if (initPorts.length > 0 && initPorts.length !== tpSize) {
    throw new ConfigError(`--tp-size ${tpSize} but ${initPorts.length} LMCache port(s) given`);
  }
  const proxyPort = optInt('lmcache-proxy-port');
  return {
    host,
    port: int('port', 0),
    model: str('model', 'sim-model'),
    role,
    connector,
    tpSize,
    maxModelLen: int('max-model-len', 8192, 1),
    defaultMaxTokens: int('default-max-tokens', 16, 1),
    blockSize: int('block-size', 16, 1),
    numGpuBlocks: int('num-gpu-blocks', 4096, 1),
    startupMs: num('startup-ms', 0),
    logLevel: str('log-level', 'warn'),
    exitWithParent: bool('exit-with-parent'),
    nixl: {
      sideChannelHost: str('nixl-side-channel-host', 'localhost'),
      sideChannelPort: int('nixl-side-channel-port', 5600),
      kvLeaseMs: num('kv-lease-ms', 30000),
    },
    lmcache: {
      initPorts,
      allocPorts,
      peerHost: str('lmcache-peer-host', host),
      proxyHost: raw('lmcache-proxy-host') ?? null,
      proxyPort,
      notifyDelayMs: num('lmcache-notify-delay-ms', 0),
    },
    latency: {
      prefillMsPerToken: num('prefill-ms-per-token', 0),
      itlMs: num('itl-ms', 0),
      maxNumSeqs: int('max-num-seqs', 256, 1),
      kvTransferMsPerToken: num('kv-transfer-ms-per-token', 0),
      interferenceFactor: num('interference-factor', 0),
    },
    faults: {
      failRate: num('fail-rate', 0),
      failStatus: int('fail-status', 500, 100),
      hang: bool('hang'),
      dropAfterChunks: optInt('drop-after-chunks'),
      stallAfterChunks: optInt('stall-after-chunks'),
    },
  };
}
