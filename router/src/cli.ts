// Command-line flags of the router process. One table drives both parsing and --help.
import { parseArgs } from 'node:util';
import { configFromSeedFlags, hasSeedFlags, type SeedFlags } from './config/from-flags.js';
import type { RouterConfigInput } from './config/index.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';
import { DEFAULTS, type RouterOptions } from './server.js';

interface FlagSpec {
  name: string;
  kind: 'string' | 'int' | 'boolean';
  value?: string;
  default?: string;
  help: string;
  group: 'listener' | 'admin' | 'config' | 'seed' | 'lmcache' | 'other';
}

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'host',
    kind: 'string',
    value: 'ADDR',
    default: '0.0.0.0',
    group: 'listener',
    help: 'OpenAI listener address (also /health, /ready, /metrics)',
  },
  { name: 'port', kind: 'int', value: 'N', default: '8000', group: 'listener', help: 'OpenAI listener port' },
  {
    name: 'max-body-bytes',
    kind: 'int',
    value: 'N',
    default: String(DEFAULTS.maxBodyBytes),
    group: 'listener',
    help: 'largest request body accepted; larger bodies get 413',
  },
  {
    name: 'admin-socket',
    kind: 'string',
    value: 'PATH',
    default: '/var/run/disagg/router-admin.sock',
    group: 'admin',
    help: 'Unix socket for the admin API (PUT/GET /admin/config); "" disables it',
  },
  {
    name: 'admin-port',
    kind: 'int',
    value: 'N',
    group: 'admin',
    help: 'also serve the admin API on 127.0.0.1:N (requires --admin-token-file)',
  },
  {
    name: 'admin-token-file',
    kind: 'string',
    value: 'FILE',
    group: 'admin',
    help: 'file holding the bearer token the TCP admin listener requires',
  },
  {
    name: 'config',
    kind: 'string',
    value: 'FILE',
    group: 'config',
    help: 'config document (YAML or JSON); re-read when it changes and on SIGHUP',
  },
  {
    name: 'prefill-endpoints',
    kind: 'string',
    value: 'URL,URL',
    group: 'seed',
    help: 'one-cluster mode: prefill engine base URLs',
  },
  {
    name: 'decode-endpoints',
    kind: 'string',
    value: 'URL,URL',
    group: 'seed',
    help: 'one-cluster mode: decode engine base URLs',
  },
  {
    name: 'routing-threshold',
    kind: 'int',
    value: 'N',
    default: '0',
    group: 'seed',
    help: 'estimated prompt tokens at or above which a request is disaggregated; 0 = always',
  },
  {
    name: 'load-balancing-strategy',
    kind: 'string',
    value: 'round_robin|least_loaded',
    default: 'round_robin',
    group: 'seed',
    help: 'endpoint choice within each pool',
  },
  {
    name: 'disagg-connector-type',
    kind: 'string',
    value: 'nixl|lmcache',
    default: 'nixl',
    group: 'seed',
    help: 'KV transfer protocol of the engines',
  },
  {
    name: 'decoder-registry',
    kind: 'string',
    value: 'JSON',
    group: 'seed',
    help: 'per-decoder KV metadata keyed by decoder id (decode-N) or URL, e.g. {"decode-0":{"receiver_host":"10.0.0.5","receiver_init_port":[7300],"receiver_alloc_port":[7400]}}',
  },
  {
    name: 'model',
    kind: 'string',
    value: 'NAME[,NAME]',
    default: 'default',
    group: 'seed',
    help: 'served model name(s) listed by /v1/models',
  },
  {
    name: 'prefill-failure-policy',
    kind: 'string',
    value: 'fallback|fail',
    default: 'fallback',
    group: 'seed',
    help: 'on prefill failure serve direct on a decoder, or return the error',
  },
  {
    name: 'connect-timeout-ms',
    kind: 'int',
    value: 'N',
    default: '5000',
    group: 'seed',
    help: 'per-leg TCP connect timeout',
  },
  {
    name: 'first-byte-timeout-ms',
    kind: 'int',
    value: 'N',
    default: '300000',
    group: 'seed',
    help: 'per-leg time to the response headers',
  },
  {
    name: 'idle-timeout-ms',
    kind: 'int',
    value: 'N',
    default: '60000',
    group: 'seed',
    help: 'per-leg longest pause between response chunks',
  },
  {
    name: 'kv-ready-timeout-ms',
    kind: 'int',
    value: 'N',
    default: '30000',
    group: 'seed',
    help: 'LMCache: how long to wait for KV-ready notifications',
  },
  {
    name: 'replica-id',
    kind: 'string',
    value: 'ID',
    default: 'sanitized hostname',
    group: 'lmcache',
    help: "this replica's id; LMCache req_ids are <replica-id>_<uuid>",
  },
  {
    name: 'kv-notify-host',
    kind: 'string',
    value: 'ADDR',
    default: DEFAULTS.kvNotifyHost,
    group: 'lmcache',
    help: 'ZeroMQ PULL address for LMCache KV-ready notifications',
  },
  {
    name: 'kv-notify-port',
    kind: 'int',
    value: 'N',
    default: String(DEFAULTS.kvNotifyPort),
    group: 'lmcache',
    help: 'ZeroMQ PULL port (pd_proxy_port of the prefillers); 0 = any free port',
  },
  {
    name: 'engine-stats-interval-ms',
    kind: 'int',
    value: 'N',
    default: String(DEFAULTS.engineStatsIntervalMs),
    group: 'other',
    help: 'scrape interval of engine /metrics for least_loaded',
  },
  {
    name: 'log-level',
    kind: 'string',
    value: LOG_LEVELS.join('|'),
    default: 'info',
    group: 'other',
    help: 'winston JSON log level',
  },
  { name: 'help', kind: 'boolean', group: 'other', help: 'print this help and exit' },
];

const GROUP_TITLES: Record<FlagSpec['group'], string> = {
  listener: 'Listener',
  admin: 'Admin API',
  config: 'Configuration (--config FILE, or the one-cluster flags below, or the admin API)',
  seed: "One-cluster flags (named after production-stack's router)",
  lmcache: 'LMCache notifications',
  other: 'Other',
};

export function helpText(): string {
  const lines = [
    'Usage: npm run router -- [FLAGS]',
    '',
    'disagg router: OpenAI API in front of vLLM prefill/decode pools.',
  ];
  for (const group of Object.keys(GROUP_TITLES) as Array<FlagSpec['group']>) {
    lines.push('', `${GROUP_TITLES[group]}:`);
    for (const f of FLAGS.filter((x) => x.group === group)) {
      const left = `  --${f.name}${f.value ? ` ${f.value}` : ''}`;
      const def = f.default !== undefined ? ` (default: ${f.default})` : '';
      lines.push(
        left.length < 40 ? `${left.padEnd(40)}${f.help}${def}` : `${left}\n${' '.repeat(40)}${f.help}${def}`,
      );
    }
  }
  return lines.join('\n');
}

export class CliError extends Error {}

export interface CliResult {
  help: boolean;
  options: RouterOptions & { host: string; port: number };
}

/** Parses argv (without node and script). Throws CliError with a message for the user. */
export function parseCli(argv: readonly string[]): CliResult {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        FLAGS.map((f) => [f.name, { type: f.kind === 'boolean' ? 'boolean' : 'string' }]),
      ),
      allowPositionals: false,
      strict: true,
    });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\nRun with --help for the list of flags.`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const str = (name: string): string | undefined =>
    typeof v[name] === 'string' ? (v[name] as string) : undefined;
  const int = (name: string): number | undefined => {
    const s = str(name);
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0)
      throw new CliError(`--${name} must be a non-negative integer, got ${JSON.stringify(s)}`);
    return n;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const s = str(name);
    if (s !== undefined && !allowed.includes(s as T)) {
      throw new CliError(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(s)}`);
    }
    return s as T | undefined;
  };

  const seed: SeedFlags = {
    prefillEndpoints: str('prefill-endpoints'),
    decodeEndpoints: str('decode-endpoints'),
    routingThreshold: int('routing-threshold'),
    loadBalancingStrategy: oneOf('load-balancing-strategy', ['round_robin', 'least_loaded']),
    disaggConnectorType: oneOf('disagg-connector-type', ['nixl', 'lmcache']),
    decoderRegistry: str('decoder-registry'),
    model: str('model'),
    prefillFailurePolicy: oneOf('prefill-failure-policy', ['fallback', 'fail']),
    connectTimeoutMs: int('connect-timeout-ms'),
    firstByteTimeoutMs: int('first-byte-timeout-ms'),
    idleTimeoutMs: int('idle-timeout-ms'),
    kvReadyTimeoutMs: int('kv-ready-timeout-ms'),
  };
  const configFile = str('config');
  let config: RouterConfigInput | undefined;
  if (hasSeedFlags(seed)) {
    if (configFile)
      throw new CliError('use either --config or the one-cluster flags (--prefill-endpoints, ...), not both');
    try {
      config = configFromSeedFlags(seed);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  } else if (seed.decoderRegistry) {
    throw new CliError('--decoder-registry needs --decode-endpoints');
  }
  const adminPort = int('admin-port');
  const adminTokenFile = str('admin-token-file');
  if (adminPort !== undefined && !adminTokenFile) {
    throw new CliError(
      '--admin-port needs --admin-token-file: the TCP admin listener always requires a bearer token',
    );
  }
  const adminSocket = str('admin-socket') ?? '/var/run/disagg/router-admin.sock';
  const options: CliResult['options'] = {
    host: str('host') ?? '0.0.0.0',
    port: int('port') ?? 8000,
    adminSocket: adminSocket === '' ? null : adminSocket,
    maxBodyBytes: int('max-body-bytes') ?? DEFAULTS.maxBodyBytes,
    kvNotifyHost: str('kv-notify-host') ?? DEFAULTS.kvNotifyHost,
    kvNotifyPort: int('kv-notify-port') ?? DEFAULTS.kvNotifyPort,
    engineStatsIntervalMs: int('engine-stats-interval-ms') ?? DEFAULTS.engineStatsIntervalMs,
    logLevel: oneOf<LogLevel>('log-level', LOG_LEVELS) ?? 'info',
    handleSignals: true,
  };
  if (adminPort !== undefined) options.adminPort = adminPort;
  if (adminTokenFile) options.adminTokenFile = adminTokenFile;
  if (configFile) options.configFile = configFile;
  if (config) options.config = config;
  const replicaId = str('replica-id');
  if (replicaId) options.replicaId = replicaId;
  return { help: v['help'] === true, options };
}
