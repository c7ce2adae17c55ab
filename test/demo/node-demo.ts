// `make demo NODE=real`: the same story as `make demo`, on a real node. Control plane + containerd
// + kubelet + kube-proxy + CoreDNS in a private namespace, `helm install` of the chart from the
// image built from the Dockerfile, the 2P1D DisaggCluster of docs/examples as simulator
// containers, a short and a long request from a client pod through the router Service, a scale to
// 2P2D by `kubectl patch`; then it stays up until Ctrl-C (or exits with --once). Everything it
// started is removed on exit, Ctrl-C and failure.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { waitFor } from '../cluster/wait.js';
import {
  CHART,
  disaggReady,
  nodeImages,
  release,
  requestsFrom,
  rolledOut,
  SIM_EXAMPLE,
  startClientPod,
} from '../node/chart-on-node.js';
import { startRealNode } from '../node/real-node.js';

const { values: args } = parseArgs({ options: { once: { type: 'boolean', default: false } } });
const t0 = Date.now();
const say = (s: string): void =>
  console.log(`[demo ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}`);
const REL = release('demo', 'disagg');

say('starting a real node: control plane, containerd, kubelet, kube-proxy, CoreDNS (private namespaces)');
const node = await startRealNode({ log: (l) => say(`  ${l}`), images: nodeImages() });
try {
  say(
    `$ helm install ${REL.name} charts/disagg-operator -n ${REL.ns} (namespace enforces the restricted Pod Security Standard)`,
  );
  await node.kubectl(['create', 'namespace', REL.ns]);
  await node.kubectl(['label', 'namespace', REL.ns, 'pod-security.kubernetes.io/enforce=restricted']);
  await node.helm(['install', REL.name, CHART, '-n', REL.ns, '--set', 'image.pullPolicy=Never']);
  say('$ kubectl apply -f docs/examples/sim-nixl-2p1d.yaml');
  await node.kubectl(['apply', '-n', 'default', '-f', '-'], { input: readFileSync(SIM_EXAMPLE, 'utf8') });
  await waitFor('sim-nixl Ready 2P1D', () => disaggReady(node, 'default', 'sim-nixl', '2P1D'), {
    timeoutMs: 240_000,
    intervalMs: 1000,
  });
  await rolledOut(node, REL, 1);
  for (const line of (await node.kubectl(['get', 'disagg,pods', '-A', '-o', 'wide'])).stdout
    .trimEnd()
    .split('\n'))
    say(`  ${line}`);
  await startClientPod(node);
  say("requests from a client pod to the router Service (path from the router's router_requests_total):");
  for (const [k, v] of Object.entries(await requestsFrom(node, REL, { MODEL: 'sim-llama' }))) {
    say(
      `  ${k.padEnd(14)} HTTP ${v.status}${v.done !== undefined ? `, [DONE] ${v.done}` : ''}, path ${v.path}`,
    );
  }
  say(`$ kubectl patch disagg sim-nixl --type=merge -p '{"spec":{"decode":{"replicas":2}}}'`);
  await node.kubectl([
    'patch',
    'disagg',
    'sim-nixl',
    '-n',
    'default',
    '--type=merge',
    '-p',
    '{"spec":{"decode":{"replicas":2}}}',
  ]);
  await waitFor('2P2D', () => disaggReady(node, 'default', 'sim-nixl', '2P2D'), {
    timeoutMs: 240_000,
    intervalMs: 1000,
  });
  say((await node.kubectl(['get', 'disagg', 'sim-nixl', '-n', 'default'])).stdout.trimEnd());
  if (args.once) {
    say('--once: tearing down');
  } else {
    say('The node stays up until Ctrl-C. In another shell, enter its namespaces:');
    say(`  nsenter -t ${node.holderPid} -m -n -- env KUBECONFIG=${node.kubeconfig} PATH=${node.path} bash`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  }
} finally {
  await node.stop();
  say('stopped; nothing left behind');
}
