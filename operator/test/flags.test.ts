import { describe, expect, it } from '@jest/globals';
import { FLAGS, helpText, parseDuration, parseFlags } from '../src/flags.js';

describe('operator flags', () => {
  it('defaults: all namespaces, leader election 15s/10s/2s, socket path, ports', () => {
    const r = parseFlags(['--replica-id', 'op_1.x'], {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.flags).toMatchObject({
      namespaces: [],
      routerAdminSocket: '/var/run/disagg/router-admin.sock',
      resyncPeriodMs: 30_000,
      replicaId: 'op-1-x',
      leaderElect: true,
      leaderElectionId: 'disagg-operator',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      metricsPort: 8080,
      healthPort: 8081,
      logLevel: 'info',
    });
  });

  it('flags win over env; env wins over defaults', () => {
    const r = parseFlags(['--namespaces=a,b', '--leader-elect=false'], {
      DISAGG_NAMESPACES: 'x',
      DISAGG_RESYNC_PERIOD: '5m',
    });
    expect(r.ok && r.flags).toMatchObject({
      namespaces: ['a', 'b'],
      resyncPeriodMs: 300_000,
      leaderElect: false,
    });
  });

  it.each([
    [['--bogus'], 'unknown flag --bogus'],
    [['--metrics-port', '70000'], '--metrics-port must be a port'],
    [['--resync-period', 'soon'], '--resync-period must be a duration'],
    [['--leader-election-renew-deadline', '20s'], 'renew-deadline must be shorter than the lease duration'],
    [['--kv-notify-address', 'localhost:7500'], 'tcp://host:port'],
    [['--workers'], '--workers needs a value'],
  ])('%j is refused: %s', (argv, message) => {
    const r = parseFlags(argv, {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });

  it('--help lists every flag', () => {
    const text = helpText();
    for (const f of FLAGS) expect(text).toContain(`--${f.name}`);
    expect(parseFlags(['--help'], {})).toMatchObject({ ok: true, flags: { help: true } });
  });

  it('durations', () => {
    expect(['500ms', '2s', '1.5m', '1h', '30'].map(parseDuration)).toEqual([
      500, 2000, 90_000, 3_600_000, 30_000,
    ]);
    expect(parseDuration('2 s')).toBeUndefined();
  });
});
