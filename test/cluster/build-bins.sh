#!/usr/bin/env bash
# Builds the Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) from the Go module proxy, plus helm, into a per-version cache outside
# the work tree. A warm cache makes this a no-op. Progress goes to stderr; the last thing on
# stdout is the bin dir. `--print-bin-dir` prints the bin dir without building anything.
# llm-d-inference-sim (for an interop check against a third-party vLLM simulator) builds from its
# own wrapper module, llmd-sim/: `go install ...@v` would ask the proxy for the module's version
# list, which it refuses (403), while the pinned version itself is served.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="1.36.3"
ETCD_VERSION="$(sed -n 's#^\s*go.etcd.io/etcd/server/v3 \(v[0-9.]*\).*#\1#p' "$here/k8s-bins/go.mod" | head -1)"
HELM_VERSION="v3.22.0"
SIM_VERSION="$(sed -n 's#^require github.com/llm-d/llm-d-inference-sim \(v[0-9.]*\)#\1#p' "$here/llmd-sim/go.mod")"
cache_root="${DISAGG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/disagg-operator}"
bin="$cache_root/k8s-v${K8S_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}/bin"
if [ "${1:-}" = "--print-bin-dir" ]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
# -mod=readonly: a stale go.sum fails the build instead of being rewritten behind our back
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
start=$(date +%s)
step() { printf '[cluster-bins %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
want() { [ -x "$bin/$1" ] || return 0; return 1; }

minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
cd "$here/k8s-bins"
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  if want "$b"; then
    step "building $b v$K8S_VERSION (cold: several minutes on 2 cores)"
    go build -p "$(nproc)" -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ld" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$bin/$b.tmp" "$bin/$b"
  fi
done
if want etcd; then
  step "building etcd $ETCD_VERSION"
  go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
fi
cd "$here"
# Helm's Makefile also stamps the Kubernetes version `helm template` assumes without a cluster
# (from its client-go, v0.37.0 in v3.22.0); without it the default is v1.20.
helm_ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ld="$helm_ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=37"
done
# a stamp of the flags: changing them rebuilds helm without a new cache key
if want helm || [ "$(cat "$bin/.helm.ldflags" 2>/dev/null)" != "$helm_ld" ]; then
  step "building helm $HELM_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "$helm_ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  printf '%s' "$helm_ld" > "$bin/.helm.ldflags"
fi
if want llm-d-inference-sim; then
  step "building llm-d-inference-sim $SIM_VERSION"
  if (cd "$here/llmd-sim" && go build -trimpath -ldflags "-s -w" -o "$bin/llm-d-inference-sim.tmp" \
        github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim); then
    mv "$bin/llm-d-inference-sim.tmp" "$bin/llm-d-inference-sim"
  else
    step "WARNING: llm-d-inference-sim did not build; its interop test will be skipped"
  fi
fi
step "ready in $bin"
echo "$bin"
