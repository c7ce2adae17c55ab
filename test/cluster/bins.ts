// Where `make cluster-bins` put the control-plane binaries: build-bins.sh is the single source of
// the versioned cache path (it prints it without building when asked).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLUSTER_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(CLUSTER_DIR, '..', '..');
const REQUIRED = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'];

let cached: string | undefined;

/** The bin dir (env DISAGG_K8S_BIN_DIR overrides); throws with the fix if a binary is missing. */
export function resolveBinDir(): string {
  if (cached) return cached;
  const dir =
    process.env.DISAGG_K8S_BIN_DIR ||
    execFileSync('bash', [join(CLUSTER_DIR, 'build-bins.sh'), '--print-bin-dir'], {
      encoding: 'utf8',
    }).trim();
  const missing = REQUIRED.filter((b) => !existsSync(join(dir, b)));
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')} in ${dir}: run \`make cluster-bins\` first`);
  }
  cached = dir;
  return dir;
}
