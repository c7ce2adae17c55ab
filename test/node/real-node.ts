// A real Kubernetes node beside the Go-built control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd (runc, CNI bridge), kubelet and kube-proxy,
// all inside one private network + mount namespace (test/node/ns-holder.sh). Pods are real
// containers from local images; Services work through kube-proxy's iptables rules. Everything is
// reached through `run()` (nsenter into the namespaces); `stop()` leaves no process, mount,
// network namespace, interface or cgroup behind (`leftovers()` checks).
import { execFile, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveBinDir } from '../cluster/bins.js';
import { createClusterPki, issueClientCert, pem } from '../cluster/certs.js';
import { writeKubeconfig } from '../cluster/kubeconfig.js';
import { ProcessRegistry, type ManagedProcess } from '../cluster/processes.js';
import { sleep, waitFor } from '../cluster/wait.js';
import {
  cniConfig,
  containerdConfig,
  corefile,
  kubeletConfig,
  kubeProxyConfig,
  NODE_IP,
  NODE_NAME,
  SERVICE_CIDR,
} from './node-configs.js';

const execFileP = promisify(execFile);
const HERE = new URL('.', import.meta.url).pathname;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RealNode {
  dir: string;
  /** Admin kubeconfig (server https://127.0.0.1:6443, valid inside the namespaces). */
  kubeconfig: string;
  /** PATH with kubectl, helm, ctr and crictl. */
  path: string;
  holderPid: number;
  /** Runs a command inside the node's namespaces. */
  run(
    cmd: string,
    args: string[],
    opts?: { input?: string; allowFailure?: boolean; timeoutMs?: number },
  ): Promise<RunResult>;
  kubectl(
    args: string[],
    opts?: { input?: string; allowFailure?: boolean; timeoutMs?: number },
  ): Promise<RunResult>;
  helm(args: string[], opts?: { allowFailure?: boolean; timeoutMs?: number }): Promise<RunResult>;
  /** Imports an OCI/docker archive into containerd's k8s.io namespace. */
  importImage(tarPath: string): Promise<void>;
  timings: Record<string, number>;
  stop(): Promise<void>;
}

export function nodeBinDir(): string {
  const dir = execFileSync('bash', [join(HERE, 'build-node-bins.sh'), '--print-bin-dir'], {
    encoding: 'utf8',
  }).trim();
  for (const b of [
    'kubelet',
    'kube-proxy',
    'containerd',
    'containerd-shim-runc-v2',
    'ctr',
    'crictl',
    'coredns',
    'pause',
  ]) {
    if (!existsSync(join(dir, b))) throw new Error(`missing ${b} in ${dir}: run \`make node-bins\` first`);
  }
  return dir;
}

/** Why a real node cannot run here, or undefined when it can. */
export function cannotRunReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'the real node needs root (namespaces, mounts, iptables)';
  for (const [path, pkg] of [
    ['/usr/sbin/runc', 'runc'],
    ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
  ] as const) {
    if (!existsSync(path)) return `${path} missing: apt-get install ${pkg} (make node-bins does)`;
  }
  return undefined;
}

export async function startRealNode(
  opts: { log?: (line: string) => void; images?: string[] } = {},
): Promise<RealNode> {
  const why = cannotRunReason();
  if (why) throw new Error(`real node: ${why}`);
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const mark = (step: string): void => {
    timings[step] = Date.now() - t0;
    opts.log?.(`[node ${((Date.now() - t0) / 1000).toFixed(1)}s] ${step}`);
  };
  const cp = resolveBinDir();
  const nb = nodeBinDir();
  const dir = mkdtempSync('/tmp/disagg-node-');
  for (const d of [
    'pki',
    'etcd',
    'logs',
    'cni/net.d',
    'cni/ipam',
    'kubelet/root',
    'pod-logs',
    'containerd',
    'ns',
  ]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  const procs = new Map<string, ManagedProcess>();
  let holderPid = 0;
  // close() (stop(), exit, Ctrl-C, SIGTERM) first removes the pods, then stops the daemons by layer
  const registry = new ProcessRegistry(dir, process.env.DISAGG_CLUSTER_KEEP !== '1', {
    beforeClose: () => podsDown({ dir, procs, run, holderPid, nb }),
    afterClose: () => {
      removeCgroups();
      reaper.kill('SIGKILL'); // its work is done
    },
    closeTimeoutMs: 180_000,
  });
  // if this process dies without stop(), the reaper removes the node's containers, daemons and dir
  const reaper = spawn('bash', [join(HERE, 'node-reaper.sh'), String(process.pid), dir, nb], {
    detached: true,
    stdio: 'ignore',
  });
  reaper.unref();
  const path = `${nb}:${cp}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  const env = { PATH: path, HOME: process.env.HOME ?? '/root' };
  const nsenter = (cmd: string, args: string[]): [string, string[]] => [
    'nsenter',
    ['-t', String(holderPid), '-m', '-n', '--', cmd, ...args],
  ];
  const start = (name: string, cmd: string, args: string[], layer: number): ManagedProcess => {
    const [c, a] = nsenter(cmd, args);
    const p = registry.spawn(name, c, {
      args: a,
      env,
      cwd: dir,
      logPath: join(dir, 'logs', `${name}.log`),
      layer,
    });
    procs.set(name, p);
    return p;
  };
  const run: RealNode['run'] = async (cmd, args, o = {}) => {
    const [c, a] = nsenter(cmd, args);
    try {
      const child = execFileP(c, a, {
        env: { ...env, KUBECONFIG: join(dir, 'admin.kubeconfig') },
        cwd: dir,
        timeout: o.timeoutMs ?? 120_000,
        maxBuffer: 64 << 20,
      });
      if (o.input !== undefined) {
        child.child.stdin?.end(o.input);
      }
      const r = await child;
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
      const r = {
        code: typeof err.code === 'number' ? err.code : 1,
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? err.message,
      };
      if (o.allowFailure) return r;
      throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.slice(-2000)}`);
    }
  };
  const stopAll = (): Promise<void> => registry.close(10_000);

  try {
    // PKI: the cluster CA signs the apiserver's serving cert, admin, the node and the apiserver's kubelet client
    const pki = createClusterPki(join(dir, 'pki'));
    const ca = { cert: pki.caCert, key: pki.caKey };
    const nodeCert = issueClientCert(
      join(dir, 'pki'),
      'node',
      { user: `system:node:${NODE_NAME}`, groups: ['system:nodes'] },
      ca,
    );
    const kubeletClient = issueClientCert(
      join(dir, 'pki'),
      'apiserver-kubelet-client',
      { user: 'kube-apiserver-kubelet-client', groups: ['system:masters'] },
      ca,
    );
    const server = 'https://127.0.0.1:6443';
    const admin = writeKubeconfig(join(dir, 'admin.kubeconfig'), {
      server,
      caCertPem: pem(pki.caCert),
      credentials: { clientCertPem: pem(pki.adminCert), clientKeyPem: pem(pki.adminKey) },
    });
    const kubeletKc = writeKubeconfig(join(dir, 'kubelet.kubeconfig'), {
      server,
      caCertPem: pem(pki.caCert),
      credentials: { clientCertPem: pem(nodeCert.cert), clientKeyPem: pem(nodeCert.key) },
    });
    writeFileSync(join(dir, 'containerd', 'config.toml'), containerdConfig(dir));
    writeFileSync(join(dir, 'cni', 'net.d', '10-disagg.conflist'), cniConfig(dir));
    writeFileSync(join(dir, 'kubelet-config.yaml'), kubeletConfig(dir, pki.caCert));
    writeFileSync(join(dir, 'kubelet', 'resolv.conf'), '');
    writeFileSync(join(dir, 'kube-proxy-config.yaml'), kubeProxyConfig(admin));
    writeFileSync(join(dir, 'Corefile'), corefile(admin));
    mark('pki and configs');

    const holder = registry.spawn('ns-holder', 'unshare', {
      args: [
        '--mount',
        '--net',
        '--propagation',
        'private',
        'bash',
        join(HERE, 'ns-holder.sh'),
        join(dir, 'ns'),
      ],
      env,
      logPath: join(dir, 'logs', 'ns-holder.log'),
      layer: -1,
    });
    procs.set('ns-holder', holder);
    holderPid = holder.pid;
    await waitFor('the namespace holder', () => existsSync(join(dir, 'ns', 'holder.ready')), {
      timeoutMs: 10_000,
      abort: holder.exited.then((c) => {
        throw new Error(`namespace holder exited (${c}): ${tail(join(dir, 'logs', 'ns-holder.log'))}`);
      }),
    });
    mark('namespaces');

    start('containerd', join(nb, 'containerd'), ['--config', join(dir, 'containerd', 'config.toml')], 4);
    start(
      'etcd',
      join(cp, 'etcd'),
      [
        `--data-dir=${dir}/etcd`,
        '--listen-client-urls=http://127.0.0.1:2379',
        '--advertise-client-urls=http://127.0.0.1:2379',
        '--listen-peer-urls=http://127.0.0.1:2380',
        '--initial-advertise-peer-urls=http://127.0.0.1:2380',
        '--initial-cluster=default=http://127.0.0.1:2380',
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      0,
    );
    await waitFor(
      'etcd',
      async () =>
        (await run('curl', ['-sf', 'http://127.0.0.1:2379/health'], { allowFailure: true })).code === 0,
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    start(
      'kube-apiserver',
      join(cp, 'kube-apiserver'),
      [
        '--etcd-servers=http://127.0.0.1:2379',
        '--bind-address=0.0.0.0',
        `--advertise-address=${NODE_IP}`,
        '--secure-port=6443',
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        '--authorization-mode=Node,RBAC',
        '--enable-admission-plugins=NodeRestriction',
        '--allow-privileged=true',
        `--kubelet-client-certificate=${kubeletClient.cert}`,
        `--kubelet-client-key=${kubeletClient.key}`,
        '--kubelet-preferred-address-types=InternalIP',
        '--profiling=false',
      ],
      1,
    );
    const curlAdmin = ['-s', '--cacert', pki.caCert, '--cert', pki.adminCert, '--key', pki.adminKey];
    await waitFor(
      'kube-apiserver /readyz',
      async () =>
        (await run('curl', [...curlAdmin, `${server}/readyz`], { allowFailure: true })).stdout === 'ok',
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    mark('kube-apiserver ready');
    start(
      'kube-controller-manager',
      join(cp, 'kube-controller-manager'),
      [
        `--kubeconfig=${admin}`,
        '--leader-elect=false',
        '--secure-port=0',
        `--root-ca-file=${pki.caCert}`,
        `--service-account-private-key-file=${pki.saKey}`,
        '--use-service-account-credentials=false',
        '--node-monitor-period=2s',
        '--node-monitor-grace-period=20s',
      ],
      2,
    );
    start(
      'kube-scheduler',
      join(cp, 'kube-scheduler'),
      [
        `--kubeconfig=${admin}`,
        `--authentication-kubeconfig=${admin}`,
        `--authorization-kubeconfig=${admin}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--secure-port=10259',
      ],
      2,
    );
    start('coredns', join(nb, 'coredns'), ['-conf', join(dir, 'Corefile')], 3);
    const ctr = (args: string[]) =>
      run(join(nb, 'ctr'), ['--address', join(dir, 'containerd.sock'), ...args], { timeoutMs: 300_000 });
    await waitFor(
      'containerd',
      async () =>
        (
          await run(join(nb, 'ctr'), ['--address', join(dir, 'containerd.sock'), 'version'], {
            allowFailure: true,
          })
        ).code === 0,
      { timeoutMs: 60_000 },
    );
    mark('containerd up');
    for (const img of opts.images ?? [])
      await ctr(['-n', 'k8s.io', 'images', 'import', '--all-platforms', img]);
    mark(`images imported (${(opts.images ?? []).length})`);
    start(
      'kubelet',
      join(nb, 'kubelet'),
      [
        `--config=${dir}/kubelet-config.yaml`,
        `--kubeconfig=${kubeletKc}`,
        `--root-dir=${dir}/kubelet/root`,
        `--cert-dir=${dir}/kubelet/pki`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        '--v=1',
      ],
      5,
    );
    start('kube-proxy', join(nb, 'kube-proxy'), [`--config=${dir}/kube-proxy-config.yaml`], 5);
    const kubectl: RealNode['kubectl'] = (args, o) =>
      run(join(cp, 'kubectl'), [`--kubeconfig=${admin}`, ...args], o);
    await waitFor(
      'node Ready',
      async () =>
        (
          await kubectl(
            ['get', 'node', NODE_NAME, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'],
            { allowFailure: true },
          )
        ).stdout === 'True',
      { timeoutMs: 120_000, intervalMs: 300 },
    );
    mark('node Ready');
    await waitFor(
      'the default ServiceAccount',
      async () =>
        (await kubectl(['get', 'sa', 'default', '-n', 'default'], { allowFailure: true })).code === 0,
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    mark('default ServiceAccount');
    return {
      dir,
      kubeconfig: admin,
      path,
      holderPid,
      run,
      kubectl,
      helm: (args, o) =>
        run(join(cp, 'helm'), [`--kubeconfig=${admin}`, ...args], {
          timeoutMs: o?.timeoutMs ?? 300_000,
          allowFailure: o?.allowFailure,
        }),
      importImage: async (tar) =>
        void (await ctr(['-n', 'k8s.io', 'images', 'import', '--all-platforms', tar])),
      timings,
      stop: stopAll,
    };
  } catch (err) {
    const logs = ['ns-holder', 'containerd', 'kube-apiserver', 'kubelet']
      .map((n) => `--- ${n}\n${tail(join(dir, 'logs', `${n}.log`), 15)}`)
      .join('\n');
    await stopAll();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
}

interface TeardownContext {
  dir: string;
  procs: Map<string, ManagedProcess>;
  run: RealNode['run'];
  holderPid: number;
  nb: string;
}

/**
 * Before the daemons stop: kubelet and kube-proxy, then every pod sandbox (runc kills the
 * containers, CNI DEL frees their IPs and veths), containerd, and by PID whatever is still in the
 * node's network namespace (a container whose shim is gone) and any shim of this node.
 */
async function podsDown(c: TeardownContext): Promise<void> {
  const stop = async (names: string[]) => Promise.all(names.map((n) => c.procs.get(n)?.stop(10_000)));
  await stop(['kubelet', 'kube-proxy']);
  const netns = c.holderPid ? safeReadlink(`/proc/${c.holderPid}/ns/net`) : undefined;
  const containerd = c.procs.get('containerd');
  if (containerd && !containerd.hasExited) {
    const crictl = join(c.nb, 'crictl');
    const base = ['--timeout', '60s', '--runtime-endpoint', `unix://${c.dir}/containerd.sock`];
    for (let i = 0; i < 10; i++) {
      const pods = await c.run(crictl, [...base, 'pods', '-q'], { allowFailure: true });
      if (pods.code !== 0 || pods.stdout.trim() === '') break;
      await c.run(crictl, [...base, 'rmp', '-fa'], { allowFailure: true, timeoutMs: 90_000 });
      await sleep(500);
    }
  }
  await stop(['containerd']);
  for (const pid of containerProcesses()) tryKill(pid);
  if (netns) for (const pid of processesIn(netns, c.holderPid)) tryKill(pid);
  for (const pid of pidsWithExe(join(c.nb, 'containerd-shim-runc-v2'))) tryKill(pid);
}

function safeReadlink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

function pids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => p !== process.pid);
}

/** Processes in the given network namespace other than the holder. */
export function processesIn(netns: string, except = 0): number[] {
  return pids().filter((p) => p !== except && safeReadlink(`/proc/${p}/ns/net`) === netns);
}

function pidsWithExe(exe: string): number[] {
  return pids().filter((p) => safeReadlink(`/proc/${p}/exe`) === exe);
}

const CGROUP_ROOT = '/sys/fs/cgroup';
/** runc's cgroups of the node's containers (cgroupfs driver: <controller>/k8s.io/...). */
export function nodeCgroups(): string[] {
  const out: string[] = [];
  if (!existsSync(CGROUP_ROOT)) return out;
  for (const ctl of readdirSync(CGROUP_ROOT)) {
    const d = join(CGROUP_ROOT, ctl, 'k8s.io');
    if (existsSync(d)) out.push(d);
  }
  return out;
}

/** Every process in one of the node's container cgroups. */
function containerProcesses(): number[] {
  const out: number[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name === 'cgroup.procs') {
        try {
          out.push(...readFileSync(join(d, e.name), 'utf8').split('\n').filter(Boolean).map(Number));
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  for (const d of nodeCgroups()) walk(d);
  return [...new Set(out)];
}

function removeCgroups(): void {
  const rmdirTree = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(d, e.name));
    try {
      execFileSync('rmdir', [d], { stdio: 'ignore' });
    } catch {
      // busy or gone
    }
  };
  for (const d of nodeCgroups()) rmdirTree(d);
}

/** What a stopped node left behind: processes, mounts, cgroups under its dir or namespaces. */
export function leftovers(dir: string, netns?: string): string[] {
  const out: string[] = [];
  if (netns) for (const p of processesIn(netns)) out.push(`process ${p} in the node's network namespace`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(dir)) out.push(`mount: ${line}`);
  }
  for (const p of pids()) {
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    })();
    if (cmd.includes(dir)) out.push(`process ${p}: ${cmd.replace(/\0/g, ' ').slice(0, 120)}`);
  }
  for (const d of nodeCgroups()) out.push(`cgroup ${d}`);
  if (existsSync(dir)) out.push(`work dir ${dir}`);
  return out;
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
