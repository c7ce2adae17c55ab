// The real node's configuration files, as pure functions of its directory. Each setting that differs
// from a stock node says why: the node runs as root without CAP_SYS_RESOURCE, on cgroup v1 (hybrid),
// without systemd, inside a private network + mount namespace.

export const NODE_NAME = 'node-0';
/** The node's IP, on lo inside the namespace (never routed outside it). */
export const NODE_IP = '10.99.0.2';
export const POD_CIDR = '10.88.0.0/24';
export const SERVICE_CIDR = '10.0.0.0/24';
export const PAUSE_IMAGE = 'docker.io/local/pause:1';

export function containerdConfig(dir: string): string {
  return `version = 3
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${dir}/containerd.sock"
[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"
[metrics]
  address = ""

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = "${dir}/containerd/opt"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '${PAUSE_IMAGE}'
  [plugins.'io.containerd.cri.v1.runtime']
    # without it every sandbox fails ("can't get final child's PID from pipe: EOF"): no CAP_SYS_RESOURCE
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_cdi = false
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '/usr/sbin/runc'
          Root = '${dir}/containerd/runc-root'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '${dir}/cni/net.d'
      max_conf_num = 1
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
`;
}

export function cniConfig(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'disagg-pods',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni-disagg0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: `${dir}/cni/ipam`,
            ranges: [[{ subnet: POD_CIDR }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export function kubeletConfig(dir: string, caFile: string): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 (hybrid) machine, no systemd, no control over the job's own cgroup
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://${dir}/containerd.sock
failSwapOn: false
resolvConf: ${dir}/kubelet/resolv.conf
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
podLogsDir: ${dir}/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${caFile}}
authorization:
  mode: Webhook
# a shared build machine: never evict or garbage-collect images because its disk or memory looks full
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDomain: cluster.local
# CoreDNS runs beside the kubelet on the node IP (corefile below)
clusterDNS: [${NODE_IP}]
serializeImagePulls: false
`;
}

export function kubeProxyConfig(kubeconfig: string): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${kubeconfig}
mode: iptables
clusterCIDR: ${POD_CIDR}
hostnameOverride: ${NODE_NAME}
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["${NODE_IP}/32"]
# a non-initial network namespace cannot set the conntrack sysctls: leave them alone
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`;
}

/** Cluster DNS: CoreDNS's kubernetes plugin answering <svc>.<ns>.svc.cluster.local on the node IP. */
export function corefile(kubeconfig: string): string {
  return `cluster.local:53 in-addr.arpa:53 {
    bind ${NODE_IP}
    errors
    kubernetes cluster.local in-addr.arpa {
        kubeconfig ${kubeconfig}
        pods insecure
        fallthrough in-addr.arpa
    }
    cache 5
}
`;
}
