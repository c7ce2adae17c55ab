// Wires the router together and starts its listeners. `startRouter` is what main.ts, the tests,
// the demo and the benchmark use.
import { chmod, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { createAdminApp } from './admin.js';
import { createOpenAiServer } from './app.js';
import { Balancer } from './balance/balancer.js';
import { EngineStatsScraper } from './balance/engine-stats.js';
import { InFlightTracker } from './balance/in-flight.js';
import type { RouterConfigInput } from './config/index.js';
import type { ValidationResult } from './config/validate.js';
import { ConfigStore, type ConfigSnapshot } from './config/store.js';
import { ConfigFileWatcher } from './config/watch.js';
import type { HandlerDeps } from './handler.js';
import { createExpressServer } from './express-server.js';
import { KvNotifyHub, sanitizeReplicaId } from './kv-notify.js';
import { createLogger, type Logger, type LogLevel } from './logger.js';
import { createMetrics, dropRemovedEndpointSeries, type RouterMetrics } from './metrics.js';
import { UpstreamPools } from './upstream/pools.js';

export interface RouterOptions {
  /** OpenAI listener; defaults 127.0.0.1 and 0 (a free port) for in-process use. */
  host?: string;
  port?: number;
  /** Admin API Unix socket path; null/undefined = no socket listener. */
  adminSocket?: string | null;
  /** Loopback-only TCP admin listener (needs adminToken or adminTokenFile). */
  adminPort?: number;
  adminToken?: string;
  adminTokenFile?: string;
  /** Initial config document (flags or tests); ignored when configFile is set. */
  config?: RouterConfigInput;
  /** YAML/JSON config file, watched and re-read on SIGHUP (when handleSignals). */
  configFile?: string;
  replicaId?: string;
  kvNotifyHost?: string;
  /** 0 = a free port. */
  kvNotifyPort?: number;
  engineStatsIntervalMs?: number;
  maxBodyBytes?: number;
  logLevel?: LogLevel;
  logger?: Logger;
  /** Install the SIGHUP handler (main.ts); tests leave it off. */
  handleSignals?: boolean;
}

export interface RunningRouter {
  url: string;
  host: string;
  port: number;
  adminSocket: string | undefined;
  adminUrl: string | undefined;
  kvNotifyPort: number;
  /** tcp://host:port a prefiller should push KV-ready notifications to. */
  kvNotifyAddress: string;
  replicaId: string;
  metrics: RouterMetrics;
  /** Same as PUT /admin/config, in-process. */
  applyConfig(doc: unknown): ValidationResult;
  current(): ConfigSnapshot;
  /** Re-reads the config file (as SIGHUP does). */
  reloadConfigFile(): Promise<boolean>;
  /** Test/benchmark hook: pretend an engine's /metrics reported this queue length. */
  setEngineLoad(url: string, load: number): void;
  /** Stops listening, lets active requests finish for up to graceMs, then closes everything. */
  stop(opts?: { graceMs?: number }): Promise<void>;
}

export const DEFAULTS = {
  maxBodyBytes: 32 * 1024 * 1024,
  engineStatsIntervalMs: 2_000,
  kvNotifyPort: 7500,
  kvNotifyHost: '0.0.0.0',
} as const;

export async function startRouter(opts: RouterOptions = {}): Promise<RunningRouter> {
  const logger = opts.logger ?? createLogger(opts.logLevel ?? 'info');
  const metrics = createMetrics();
  const replicaId = sanitizeReplicaId(opts.replicaId ?? hostname());
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  const kvNotifyHost = opts.kvNotifyHost ?? DEFAULTS.kvNotifyHost;
  const store = new ConfigStore();
  const pools = new UpstreamPools();
  const inFlight = new InFlightTracker();
  const scraper = new EngineStatsScraper({
    intervalMs: opts.engineStatsIntervalMs ?? DEFAULTS.engineStatsIntervalMs,
    logger,
    onScrapeError: (url) => metrics.engineScrapeErrors.inc({ url }),
    onScrape: (url, load) => metrics.engineLoad.set({ url }, load),
  });
  const balancer = new Balancer({
    loadOf: (url) => ({ inFlight: inFlight.get(url), scraped: scraper.get(url) }),
  });
  const kvHub = new KvNotifyHub({
    replicaId,
    host: kvNotifyHost,
    port: opts.kvNotifyPort ?? DEFAULTS.kvNotifyPort,
    logger,
    metrics,
  });

  let liveEndpoints: { ids: Set<string>; urls: Set<string> } = { ids: new Set(), urls: new Set() };
  store.onApplied((snap) => {
    const origins = new Set<string>();
    const scrapeTargets: string[] = [];
    const ids = new Set<string>();
    const urls = new Set<string>();
    for (const c of snap.config.clusters) {
      for (const ep of [...c.prefill.endpoints, ...c.decode.endpoints]) {
        origins.add(new URL(ep.url).origin);
        ids.add(ep.id);
        urls.add(ep.url);
        if (c.loadBalancing === 'least_loaded') scrapeTargets.push(ep.url);
      }
    }
    pools.retainOnly(origins);
    // only when an endpoint left the config: a push that adds pods costs no metric sweep
    if (
      [...liveEndpoints.ids].some((id) => !ids.has(id)) ||
      [...liveEndpoints.urls].some((u) => !urls.has(u))
    ) {
      dropRemovedEndpointSeries(metrics, { ids, urls }).catch((err: unknown) =>
        logger.warn('could not drop the metric series of removed endpoints', { error: String(err) }),
      );
    }
    liveEndpoints = { ids, urls };
    scraper.setTargets(scrapeTargets);
    kvHub.setPeers(snap.config.peers);
    metrics.configGeneration.set(snap.generation);
    metrics.configLastApply.set(snap.appliedAt.getTime() / 1000);
    logger.info('config applied', {
      source: snap.source,
      generation: snap.generation,
      hash: snap.hash,
      clusters: snap.config.clusters.map((c) => ({
        name: c.name,
        connector: c.connector,
        prefill: c.prefill.endpoints.length,
        decode: c.decode.endpoints.length,
      })),
    });
  });

  const kvNotifyPort = await kvHub.start();
  const cleanups: Array<() => Promise<void> | void> = [() => kvHub.close(), () => pools.close()];
  const fail = async (err: unknown): Promise<never> => {
    for (const c of cleanups.reverse()) await c();
    throw err;
  };

  let watcher: ConfigFileWatcher | undefined;
  if (opts.configFile) {
    watcher = new ConfigFileWatcher(opts.configFile, store, logger, () =>
      metrics.configApplyErrors.inc({ source: 'file' }),
    );
    if (!(await watcher.reload('startup'))) {
      return fail(new Error(`config file ${opts.configFile} is invalid (see the log line above)`));
    }
    watcher.start();
    cleanups.push(() => watcher!.stop());
  } else if (opts.config !== undefined) {
    const result = store.apply(opts.config, 'flags');
    if (!result.ok) return fail(new Error(`invalid configuration:\n  ${result.errors.join('\n  ')}`));
  }
  scraper.start();
  cleanups.push(() => scraper.stop());

  const active = { count: 0 };
  const deps: HandlerDeps = {
    store,
    logger,
    metrics,
    pools,
    inFlight,
    balancer,
    kvHub,
    replicaId,
    hostRewritesLogged: new Set(),
    active,
  };
  const server = createOpenAiServer(deps, { maxBodyBytes });
  // Engines may take minutes before the first byte; the router's own per-leg timeouts govern.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  const host = opts.host ?? '127.0.0.1';
  try {
    await listen(server, opts.port ?? 0, host);
  } catch (err) {
    return fail(err);
  }
  cleanups.push(() => closeServer(server, 0));
  const port = (server.address() as AddressInfo).port;

  const adminServers: Server[] = [];
  let adminSocket: string | undefined;
  let adminUrl: string | undefined;
  try {
    if (opts.adminSocket) {
      adminSocket = opts.adminSocket;
      const s = createExpressServer(createAdminApp(store, logger, metrics, { maxBodyBytes }));
      await listenUnix(s, adminSocket);
      adminServers.push(s);
      const path = adminSocket;
      cleanups.push(() => unlink(path).catch(() => undefined));
    }
    if (opts.adminPort !== undefined) {
      const token =
        opts.adminToken ?? (opts.adminTokenFile ? (await readFile(opts.adminTokenFile, 'utf8')).trim() : '');
      if (!token) throw new Error('--admin-port needs a non-empty bearer token from --admin-token-file');
      const s = createExpressServer(createAdminApp(store, logger, metrics, { token, maxBodyBytes }));
      await listen(s, opts.adminPort, '127.0.0.1');
      adminServers.push(s);
      adminUrl = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    }
  } catch (err) {
    for (const s of adminServers) await closeServer(s, 0);
    return fail(err);
  }

  const onHup = (): void => {
    if (watcher) void watcher.reload('SIGHUP', true);
    else logger.info('SIGHUP ignored: no --config file to re-read');
  };
  if (opts.handleSignals) process.on('SIGHUP', onHup);

  const urlHost =
    host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  const notifyHost = kvNotifyHost === '0.0.0.0' ? '127.0.0.1' : kvNotifyHost;
  logger.info('router listening', {
    host,
    port,
    adminSocket: adminSocket ?? null,
    adminUrl: adminUrl ?? null,
    kvNotifyPort,
    replicaId,
  });

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    host,
    port,
    adminSocket,
    adminUrl,
    kvNotifyPort,
    kvNotifyAddress: `tcp://${notifyHost}:${kvNotifyPort}`,
    replicaId,
    metrics,
    applyConfig: (doc) => store.apply(doc, 'admin'),
    current: () => store.current(),
    reloadConfigFile: () => (watcher ? watcher.reload('reload requested', true) : Promise.resolve(false)),
    setEngineLoad: (url, load) => scraper.set(url, load),
    stop: ({ graceMs = 2_000 } = {}) => {
      stopping ??= (async () => {
        if (opts.handleSignals) process.off('SIGHUP', onHup);
        const closing = closeServer(server, graceMs, () => active.count === 0);
        await Promise.all(adminServers.map((s) => closeServer(s, 0)));
        await closing;
        for (const c of cleanups.reverse()) await c();
      })();
      return stopping;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function listenUnix(server: Server, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  // A socket file left by a previous run would make listen fail with EADDRINUSE.
  const st = await lstat(path).catch(() => undefined);
  if (st?.isSocket()) await unlink(path);
  else if (st) throw new Error(`--admin-socket ${path} exists and is not a socket`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
}

/** Stops accepting, waits (up to graceMs) for `idle()`, then drops the remaining connections. */
async function closeServer(server: Server, graceMs: number, idle: () => boolean = () => true): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const deadline = Date.now() + graceMs;
  while (!idle() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  server.closeAllConnections();
  await closed;
}
