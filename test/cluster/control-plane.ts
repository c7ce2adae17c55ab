// A real Kubernetes control plane on loopback for tests: etcd + kube-apiserver ("apiserver" tier),
// plus kube-controller-manager, kube-scheduler and the loopback kubelet ("full" tier).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveBinDir } from './bins.js';
import { createClusterPki, pem, type ClusterPki } from './certs.js';
import { loadKubeconfig, serviceAccountKubeconfig, writeKubeconfig } from './kubeconfig.js';
import { LoopbackKubelet, type LoopbackKubeletOptions } from './loopback-kubelet.js';
import { freePorts } from './ports.js';
import { ProcessRegistry, startReaper, type ManagedProcess, type ProcessInfo } from './processes.js';
import { kubeRequest } from './rest.js';
import { waitFor } from './wait.js';

export type Tier = 'apiserver' | 'full';

export interface ControlPlaneOptions {
  tier: Tier;
  /** Loopback kubelet nodes (full tier only). Default 1. */
  nodes?: number;
  /** Loopback kubelet settings (engine command, restart backoff...). */
  kubelet?: Partial<Omit<LoopbackKubeletOptions, 'kubeConfig' | 'registry' | 'logDir' | 'nodes'>>;
  /** Default: build-bins.sh's cache dir (or $DISAGG_K8S_BIN_DIR). */
  binDir?: string;
  /** Keep the work dir (logs, certs, etcd data) after stop; also via DISAGG_CLUSTER_KEEP=1. */
  keepWorkDir?: boolean;
  /** Per start step; 2 busy cores can make the apiserver slow. Default 120 s. */
  startTimeoutMs?: number;
  /** Extra kube-apiserver flags (e.g. feature gates). */
  apiserverArgs?: string[];
  /** Progress lines (default: silent). */
  log?: (line: string) => void;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  tier: Tier;
  workDir: string;
  binDir: string;
  kubeconfigPath: string;
  apiserverUrl: string;
  kubeConfig: KubeConfig;
  pki: ClusterPki;
  /** Milliseconds from the start call to each step being ready. */
  timings: Record<string, number>;
  /** The loopback kubelet (full tier). */
  kubelet?: LoopbackKubelet;
  /** Runs the built kubectl against this cluster; throws on a non-zero exit unless allowFailure. */
  kubectl(args: string[], opts?: { input?: string; allowFailure?: boolean }): Promise<KubectlResult>;
  /**
   * Stops kube-apiserver (SIGTERM, SIGKILL after graceMs, default 2 s), waits downMs, starts it
   * again on the same port and waits for /readyz: clients see a real outage.
   */
  restartApiServer(opts?: { downMs?: number; graceMs?: number }): Promise<void>;
  /** A kubeconfig acting as an existing ServiceAccount (TokenRequest token). */
  serviceAccountKubeconfig(namespace: string, serviceAccount: string): Promise<string>;
  processes(): ProcessInfo[];
  /** Stops every process (engines, kubelet, controllers, apiserver, etcd) and removes the work dir. */
  stop(): Promise<void>;
}

function workRoot(): string {
  // tmpfs keeps etcd's writes off the disk
  if (existsSync('/dev/shm')) {
    try {
      return mkdtempSync('/dev/shm/disagg-cluster-');
    } catch {
      // not writable: fall through
    }
  }
  return mkdtempSync(join(tmpdir(), 'disagg-cluster-'));
}

function logTail(path: string, lines = 25): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Rejects when proc exits, with the end of its log: a crashed component fails the wait at once. */
function exitAsError(proc: ManagedProcess): Promise<never> {
  return proc.exited.then((code) => {
    throw new Error(
      `${proc.name} exited (${code}) during start; end of ${proc.logPath}:\n${logTail(proc.logPath)}`,
    );
  });
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<Cluster> {
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const mark = (step: string): void => {
    timings[step] = Date.now() - t0;
    opts.log?.(`[cluster ${(timings[step] / 1000).toFixed(1)}s] ${step}`);
  };
  const binDir = opts.binDir ?? resolveBinDir();
  const bin = (name: string): string => join(binDir, name);
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  const keep = opts.keepWorkDir ?? process.env.DISAGG_CLUSTER_KEEP === '1';
  const workDir = workRoot();
  const dirs = { pki: join(workDir, 'pki'), etcd: join(workDir, 'etcd'), logs: join(workDir, 'logs') };
  Object.values(dirs).forEach((d) => mkdirSync(d, { recursive: true }));
  const registry = new ProcessRegistry(workDir, !keep);
  startReaper(workDir);
  const logOf = (name: string): string => join(dirs.logs, `${name}.log`);
  let kubelet: LoopbackKubelet | undefined;

  try {
    const pki = createClusterPki(dirs.pki);
    const [etcdPort, etcdPeerPort, apiPort, schedulerPort] = await freePorts(4);
    const apiserverUrl = `https://127.0.0.1:${apiPort}`;
    const kubeconfigPath = writeKubeconfig(join(workDir, 'admin.kubeconfig'), {
      server: apiserverUrl,
      caCertPem: pem(pki.caCert),
      credentials: { clientCertPem: pem(pki.adminCert), clientKeyPem: pem(pki.adminKey) },
    });
    const kubeConfig = loadKubeconfig(kubeconfigPath);
    mark('certificates');

    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcdPeer = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = registry.spawn('etcd', bin('etcd'), {
      logPath: logOf('etcd'),
      layer: 0,
      args: [
        `--data-dir=${dirs.etcd}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${etcdPeer}`,
        `--initial-advertise-peer-urls=${etcdPeer}`,
        `--initial-cluster=default=${etcdPeer}`,
        '--unsafe-no-fsync=true', // test data: durability is pointless, latency is not
        '--log-level=warn',
      ],
    });
    await waitFor(
      'etcd /health',
      async () => {
        const res = await fetch(`${etcdUrl}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      },
      { timeoutMs, abort: exitAsError(etcd) },
    );
    mark('etcd ready');

    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${dirs.pki}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      `--service-account-issuer=${apiserverUrl}`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      // the "kubernetes" Service's Endpoints may not hold a loopback address; nothing here needs it
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      // without a controller-manager no "default" ServiceAccount appears, which this plugin requires
      ...(opts.tier === 'apiserver' ? ['--disable-admission-plugins=ServiceAccount'] : []),
      ...(opts.apiserverArgs ?? []),
    ];
    const startApiServer = (): ManagedProcess =>
      registry.spawn('kube-apiserver', bin('kube-apiserver'), {
        logPath: logOf('kube-apiserver'),
        args: apiserverArgs,
        layer: 1,
      });
    const waitApiServerReady = (proc: ManagedProcess): Promise<true> =>
      waitFor(
        'kube-apiserver /readyz',
        async () =>
          (await kubeRequest<string>(kubeConfig, { method: 'GET', path: '/readyz', timeoutMs: 5000 })) ===
          'ok',
        { timeoutMs, intervalMs: 250, abort: exitAsError(proc) },
      );
    let apiserver = startApiServer();
    await waitApiServerReady(apiserver);
    mark('kube-apiserver ready');

    if (opts.tier === 'full') {
      const controllerManager = registry.spawn('kube-controller-manager', bin('kube-controller-manager'), {
        logPath: logOf('kube-controller-manager'),
        layer: 2,
        args: [
          `--kubeconfig=${kubeconfigPath}`,
          '--leader-elect=false',
          '--secure-port=0',
          `--root-ca-file=${pki.caCert}`,
          `--service-account-private-key-file=${pki.saKey}`,
          '--use-service-account-credentials=false',
          '--kube-api-qps=100',
          '--kube-api-burst=200',
          // fast node monitor: a stopped loopback kubelet shows as NotReady within seconds
          '--node-monitor-period=2s',
          '--node-monitor-grace-period=20s',
        ],
      });
      const scheduler = registry.spawn('kube-scheduler', bin('kube-scheduler'), {
        logPath: logOf('kube-scheduler'),
        layer: 2,
        args: [
          `--kubeconfig=${kubeconfigPath}`,
          `--authentication-kubeconfig=${kubeconfigPath}`,
          `--authorization-kubeconfig=${kubeconfigPath}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          `--secure-port=${schedulerPort}`,
          '--kube-api-qps=100',
          '--kube-api-burst=200',
        ],
      });
      kubelet = new LoopbackKubelet({
        ...opts.kubelet,
        kubeConfig,
        registry,
        logDir: dirs.logs,
        nodes: opts.nodes ?? 1,
        log: opts.kubelet?.log ?? opts.log,
      });
      const kubeletReady = kubelet.start().then(() => mark('loopback kubelet nodes registered'));
      const core = kubeConfig.makeApiClient(CoreV1Api);
      const crashed = Promise.race([exitAsError(controllerManager), exitAsError(scheduler)]);
      await Promise.all([
        kubeletReady,
        waitFor(
          'kube-scheduler /healthz',
          async () => (await probeStatus(`https://127.0.0.1:${schedulerPort}/healthz`)) === 200,
          { timeoutMs, intervalMs: 250, abort: crashed },
        ).then(() => mark('kube-scheduler ready')),
        waitFor(
          'the "default" ServiceAccount (controller-manager running)',
          async () =>
            (await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })).metadata,
          { timeoutMs, intervalMs: 250, abort: crashed },
        ).then(() => mark('kube-controller-manager ready')),
      ]);
    }
    mark('cluster ready');

    const cluster: Cluster = {
      tier: opts.tier,
      workDir,
      binDir,
      kubeconfigPath,
      apiserverUrl,
      kubeConfig,
      pki,
      timings,
      kubelet,
      kubectl: (args, kopts) => runKubectl(bin('kubectl'), kubeconfigPath, args, kopts),
      restartApiServer: async (ropts) => {
        // with clients watching, a graceful stop waits 60 s for them; the outage is what matters
        await apiserver.stop(ropts?.graceMs ?? 2000);
        if (ropts?.downMs) await new Promise((r) => setTimeout(r, ropts.downMs));
        apiserver = startApiServer();
        await waitApiServerReady(apiserver);
      },
      serviceAccountKubeconfig: (namespace, serviceAccount) =>
        serviceAccountKubeconfig(kubeconfigPath, {
          namespace,
          serviceAccount,
          path: join(workDir, `sa-${namespace}-${serviceAccount}.kubeconfig`),
        }),
      processes: () => registry.list(),
      stop: async () => {
        await kubelet?.stop();
        await registry.close();
      },
    };
    return cluster;
  } catch (err) {
    await kubelet?.stop().catch(() => undefined);
    await registry.close(1000);
    throw err;
  }
}

/** Status code of a GET; skips certificate checks (the scheduler serves a self-signed cert). */
function probeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { rejectUnauthorized: false, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function runKubectl(
  kubectl: string,
  kubeconfigPath: string,
  args: string[],
  opts?: { input?: string; allowFailure?: boolean },
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectl,
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfigPath }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        const result = { code, stdout: stdout.toString(), stderr: stderr.toString() };
        if (code !== 0 && !opts?.allowFailure) {
          reject(new Error(`kubectl ${args.join(' ')} exited ${code}: ${result.stderr.trim()}`));
        } else resolve(result);
      },
    );
    if (opts?.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
