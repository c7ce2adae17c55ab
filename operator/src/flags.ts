// Command-line flags of the operator; each can also come from the environment variable shown
// (the flag wins). Pure: argv and env in, options or an error message out.
import { hostname } from 'node:os';
import { LOG_LEVELS, type LogLevel } from './observability/logger.js';

export interface OperatorFlags {
  namespaces: string[];
  kubeconfig?: string;
  routerAdminSocket: string;
  resyncPeriodMs: number;
  workers: number;
  replicaId: string;
  kvNotifyAddress?: string;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  bindAddress: string;
  metricsPort: number;
  healthPort: number;
  logLevel: LogLevel;
  help: boolean;
}

interface FlagSpec {
  name: string;
  env: string;
  help: string;
  default?: string;
  boolean?: boolean;
}

export const FLAGS: FlagSpec[] = [
  {
    name: 'namespaces',
    env: 'DISAGG_NAMESPACES',
    help: 'Namespaces to watch, comma-separated; empty = all namespaces',
    default: '',
  },
  {
    name: 'kubeconfig',
    env: '',
    help: 'kubeconfig file; default: $KUBECONFIG, else ~/.kube/config, else the in-cluster service account',
  },
  {
    name: 'router-admin-socket',
    env: 'DISAGG_ROUTER_ADMIN_SOCKET',
    help: "Unix socket of the co-deployed router's admin API",
    default: '/var/run/disagg/router-admin.sock',
  },
  {
    name: 'resync-period',
    env: 'DISAGG_RESYNC_PERIOD',
    help: 'Re-reconcile every cluster and re-check the router this often (e.g. 30s, 5m)',
    default: '30s',
  },
  { name: 'workers', env: 'DISAGG_WORKERS', help: 'Concurrent reconciles', default: '2' },
  {
    name: 'replica-id',
    env: 'DISAGG_REPLICA_ID',
    help: "This replica's identity: leader-election holder and router peer id (must equal the router's --replica-id)",
    default: '<sanitized hostname>',
  },
  {
    name: 'kv-notify-address',
    env: 'DISAGG_KV_NOTIFY_ADDRESS',
    help: "tcp://host:port of this replica's router KV-ready notification socket, advertised to the other replicas' routers (LMCache); unset = not advertised",
  },
  {
    name: 'leader-elect',
    env: 'DISAGG_LEADER_ELECT',
    help: 'Elect a leader through a Lease; only the leader writes Deployments and status',
    default: 'true',
    boolean: true,
  },
  {
    name: 'leader-election-namespace',
    env: 'DISAGG_LEADER_ELECTION_NAMESPACE',
    help: 'Namespace of the leader and membership Leases',
    default: '<pod namespace, else default>',
  },
  {
    name: 'leader-election-id',
    env: 'DISAGG_LEADER_ELECTION_ID',
    help: 'Name of the leader Lease',
    default: 'disagg-operator',
  },
  {
    name: 'leader-election-lease-duration',
    env: 'DISAGG_LEASE_DURATION',
    help: 'How long a leader lease is valid without renewal',
    default: '15s',
  },
  {
    name: 'leader-election-renew-deadline',
    env: 'DISAGG_RENEW_DEADLINE',
    help: 'How long the leader retries renewing before it steps down',
    default: '10s',
  },
  {
    name: 'leader-election-retry-period',
    env: 'DISAGG_RETRY_PERIOD',
    help: 'Interval between acquire/renew attempts',
    default: '2s',
  },
  {
    name: 'bind-address',
    env: 'DISAGG_BIND_ADDRESS',
    help: 'Address the metrics and health servers listen on',
    default: '0.0.0.0',
  },
  {
    name: 'metrics-port',
    env: 'DISAGG_METRICS_PORT',
    help: 'Port of /metrics (0 = any free port)',
    default: '8080',
  },
  {
    name: 'health-port',
    env: 'DISAGG_HEALTH_PORT',
    help: 'Port of /healthz and /readyz (0 = any free port)',
    default: '8081',
  },
  { name: 'log-level', env: 'DISAGG_LOG_LEVEL', help: `One of ${LOG_LEVELS.join(', ')}`, default: 'info' },
  { name: 'help', env: '', help: 'Print this help', boolean: true },
];

export function helpText(): string {
  const lines = [
    'Usage: disagg-operator [flags]',
    '',
    'Flags (environment variable in brackets; the flag wins):',
  ];
  for (const f of FLAGS) {
    const def = f.default !== undefined && f.default !== '' ? ` (default ${f.default})` : '';
    lines.push(
      `  --${f.name}${f.boolean ? '' : ' VALUE'}${f.env ? ` [${f.env}]` : ''}`,
      `      ${f.help}${def}`,
    );
  }
  return lines.join('\n');
}

/** `500ms`, `15s`, `5m`, `1h`, or a bare number of seconds. */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(n * unit);
}

export function sanitizeReplicaId(raw: string): string {
  const id = raw.replace(/[^a-zA-Z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  return id.length > 0 ? id.slice(0, 63) : 'operator';
}

export type ParseResult = { ok: true; flags: OperatorFlags } | { ok: false; error: string };

export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): ParseResult {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) return { ok: false, error: `unexpected argument ${arg}` };
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const spec = FLAGS.find((f) => f.name === name);
    if (!spec) return { ok: false, error: `unknown flag --${name} (see --help)` };
    if (spec.boolean) given.set(name, inline ?? 'true');
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) return { ok: false, error: `--${name} needs a value` };
      given.set(name, value);
    }
  }
  const value = (name: string): string | undefined => {
    const spec = FLAGS.find((f) => f.name === name)!;
    return given.get(name) ?? (spec.env ? env[spec.env] : undefined) ?? spec.default;
  };
  const errors: string[] = [];
  const duration = (name: string): number => {
    const ms = parseDuration(value(name)!);
    if (ms === undefined || ms <= 0) errors.push(`--${name} must be a duration like 15s`);
    return ms ?? 0;
  };
  const port = (name: string): number => {
    const n = Number(value(name));
    if (!Number.isInteger(n) || n < 0 || n > 65535) errors.push(`--${name} must be a port 0-65535`);
    return n;
  };
  const bool = (name: string): boolean => {
    const v = value(name)!;
    if (!['true', 'false'].includes(v)) errors.push(`--${name} must be true or false`);
    return v === 'true';
  };
  const replicaRaw = value('replica-id')!;
  const logLevel = value('log-level') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) errors.push(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const workers = Number(value('workers'));
  if (!Number.isInteger(workers) || workers < 1) errors.push('--workers must be a positive integer');
  const kvNotifyAddress = value('kv-notify-address');
  if (kvNotifyAddress && !/^tcp:\/\/[^:]+:\d+$/.test(kvNotifyAddress))
    errors.push('--kv-notify-address must look like tcp://host:port');
  const leNs = value('leader-election-namespace')!;
  const flags: OperatorFlags = {
    namespaces: value('namespaces')!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    kubeconfig: value('kubeconfig') || undefined,
    routerAdminSocket: value('router-admin-socket')!,
    resyncPeriodMs: duration('resync-period'),
    workers,
    replicaId: sanitizeReplicaId(replicaRaw === '<sanitized hostname>' ? hostname() : replicaRaw),
    kvNotifyAddress: kvNotifyAddress || undefined,
    leaderElect: bool('leader-elect'),
    leaderElectionNamespace: leNs.startsWith('<') ? undefined : leNs,
    leaderElectionId: value('leader-election-id')!,
    leaseDurationMs: duration('leader-election-lease-duration'),
    renewDeadlineMs: duration('leader-election-renew-deadline'),
    retryPeriodMs: duration('leader-election-retry-period'),
    bindAddress: value('bind-address')!,
    metricsPort: port('metrics-port'),
    healthPort: port('health-port'),
    logLevel,
    help: given.get('help') === 'true',
  };
  if (flags.renewDeadlineMs >= flags.leaseDurationMs)
    errors.push('--leader-election-renew-deadline must be shorter than the lease duration');
  if (flags.retryPeriodMs >= flags.renewDeadlineMs)
    errors.push('--leader-election-retry-period must be shorter than the renew deadline');
  return errors.length ? { ok: false, error: errors.join('\n') } : { ok: true, flags };
}
