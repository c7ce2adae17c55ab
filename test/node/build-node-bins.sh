#!/usr/bin/env bash
# `make node-bins`: what a real node needs beside the control plane (test/cluster/build-bins.sh):
# kubelet and kube-proxy v1.36.3 from the same module as the control plane (test/cluster/k8s-bins),
# containerd v2.4.2 + ctr + containerd-shim-runc-v2, crictl v1.37.0 and CoreDNS v1.13.1 from the Go
# module proxy, a
# pause binary (pause/main.go), and Debian's runc and CNI plugins (apt, when missing). Cached per
# version outside the work tree; a no-op when warm. Progress on stderr; the bin dir on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_mod="$here/../cluster/k8s-bins"
K8S_VERSION="1.36.3"
CONTAINERD_VERSION="v2.4.2"
CRICTL_VERSION="v1.37.0"
COREDNS_VERSION="v1.13.1"
cache_root="${DISAGG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/disagg-operator}"
bin="$cache_root/node-k8s-v${K8S_VERSION}-containerd-${CONTAINERD_VERSION}/bin"
if [ "${1:-}" = "--print-bin-dir" ]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"
start=$(date +%s)
step() { printf '[node-bins %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
want() { [ ! -x "$bin/$1" ]; }

missing_pkgs=()
[ -x /usr/sbin/runc ] || missing_pkgs+=(runc)
[ -x /usr/lib/cni/bridge ] || missing_pkgs+=(containernetworking-plugins)
command -v iptables >/dev/null || missing_pkgs+=(iptables)
command -v conntrack >/dev/null || missing_pkgs+=(conntrack)
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  step "apt-get install ${missing_pkgs[*]} (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}" >&2; }
fi

export CGO_ENABLED=0
minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
for b in kubelet kube-proxy; do
  if want "$b"; then
    step "building $b v$K8S_VERSION (cold: 1-3 min on 2 cores)"
    (cd "$k8s_mod" && GOFLAGS=-mod=readonly go build -p "$(nproc)" -trimpath -tags selinux,notest,grpcnotrace \
      -ldflags "$ld" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$bin/$b.tmp" "$bin/$b"
  fi
done

pkg=github.com/containerd/containerd/v2
cld="-s -w -X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Revision=proxy -X $pkg/version.Package=$pkg"
tmpbin="$(mktemp -d)"
trap 'rm -rf "$tmpbin"' EXIT
if want containerd || want ctr; then
  step "building containerd + ctr $CONTAINERD_VERSION (cold: ~5 min)"
  GOBIN="$tmpbin" go install -p "$(nproc)" -trimpath -tags "urfave_cli_no_docs no_btrfs no_devmapper no_zfs" \
    -ldflags "$cld" "$pkg/cmd/containerd@$CONTAINERD_VERSION" "$pkg/cmd/ctr@$CONTAINERD_VERSION"
  mv "$tmpbin/containerd" "$tmpbin/ctr" "$bin/"
fi
if want containerd-shim-runc-v2; then
  step "building containerd-shim-runc-v2 $CONTAINERD_VERSION"
  GOBIN="$tmpbin" go install -p "$(nproc)" -trimpath -tags "urfave_cli_no_docs no_btrfs no_devmapper no_zfs no_grpc" \
    -ldflags "$cld" "$pkg/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
  mv "$tmpbin/containerd-shim-runc-v2" "$bin/"
fi
if want crictl; then
  step "building crictl $CRICTL_VERSION"
  GOBIN="$tmpbin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  mv "$tmpbin/crictl" "$bin/"
fi
if want coredns; then
  step "building coredns $COREDNS_VERSION (cluster DNS; cold: ~3-4 min)"
  GOBIN="$tmpbin" go install -p "$(nproc)" -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  mv "$tmpbin/coredns" "$bin/"
fi
if want pause; then
  step "building the pause binary (pause/main.go)"
  (cd "$here/pause" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$bin/pause" .)
fi
step "ready in $bin"
echo "$bin"
