#!/usr/bin/env bash
# `make node-images`: the real node's images, as OCI archives in the cache (ctr imports them):
#   disagg-operator:0.1.0        FROM THE DOCKERFILE, by buildah (what `docker build .` builds)
#   disagg-dev/engine-sim:dev    engine-sim.Containerfile, by buildah
#   local/pause:1                the pause binary of build-node-bins.sh, one layer
# The base image the Dockerfile names is made locally first (build-base-image.sh). Rebuilt only when
# the inputs change (a hash of them names each archive). Progress on stderr; the dir on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache_root="${DISAGG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/disagg-operator}"
out="$cache_root/images"
if [ "${1:-}" = "--print-dir" ]; then echo "$out"; exit 0; fi
mkdir -p "$out"
start=$(date +%s)
step() { printf '[node-images %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
bash "$here/build-base-image.sh"
# buildah without a daemon: chroot isolation (no nested runc), the host network for npm ci, and
# rlimits below this job's (nothing here may raise them: no CAP_SYS_RESOURCE)
nofile=4096; nproc=4096
# This machine reaches the registries through a TLS proxy with its own CA: RUN steps see that CA and
# an npmrc naming it as build-time mounts only (nothing of it enters an image; on a user's machine
# `docker build .` needs neither).
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
vols=()
ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$ca" ]; then
  printf 'cafile=/run/build-ca.crt\n' > "$tmp/npmrc"
  vols=(-v "$ca:/run/build-ca.crt:ro" -v "$tmp/npmrc:/usr/local/etc/npmrc:ro")
fi
bud() { buildah bud --quiet --isolation chroot --network host --layers "${vols[@]}" \
  --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$@" >&2; }
sum() { (cd "$repo" && cat "$@" | sha256sum | cut -c1-12); }

proj_inputs=(Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json)
proj_sum="$(cd "$repo" && { cat "${proj_inputs[@]}"; find router/src operator/src -type f | sort | xargs cat; } | sha256sum | cut -c1-12)"
if [ ! -f "$out/disagg-operator-$proj_sum.tar" ]; then
  step "buildah bud -f Dockerfile . (the project image; npm ci + tsc inside: ~2-4 min)"
  bud -t localhost/disagg-operator:0.1.0 -f "$repo/Dockerfile" "$repo"
  rm -f "$out"/disagg-operator-*.tar
  buildah push --quiet localhost/disagg-operator:0.1.0 "oci-archive:$out/disagg-operator-$proj_sum.tar:docker.io/library/disagg-operator:0.1.0" >&2
fi
ln -sf "disagg-operator-$proj_sum.tar" "$out/disagg-operator.tar"

sim_sum="$(cd "$repo" && { cat test/node/images/engine-sim.Containerfile package.json package-lock.json tsconfig.json router/src/express-server.ts; find test/sim -type f | sort | xargs cat; } | sha256sum | cut -c1-12)"
if [ ! -f "$out/engine-sim-$sim_sum.tar" ]; then
  step "buildah bud engine-sim.Containerfile (the simulator image)"
  ctx="$tmp/sim-context"
  mkdir -p "$ctx/router/src" "$ctx/test"
  cp "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$ctx/"
  cp "$repo/router/src/express-server.ts" "$ctx/router/src/"
  cp -r "$repo/test/sim" "$ctx/test/sim"
  bud -t localhost/engine-sim:dev -f "$here/engine-sim.Containerfile" "$ctx"
  rm -f "$out"/engine-sim-*.tar
  buildah push --quiet localhost/engine-sim:dev "oci-archive:$out/engine-sim-$sim_sum.tar:docker.io/disagg-dev/engine-sim:dev" >&2
fi
ln -sf "engine-sim-$sim_sum.tar" "$out/engine-sim.tar"

nb="$(bash "$repo/test/node/build-node-bins.sh" --print-bin-dir)"
pause_sum="$(sha256sum "$nb/pause" | cut -c1-12)"
if [ ! -f "$out/pause-$pause_sum.tar" ]; then
  step "the pause image (one static binary)"
  c=$(buildah from scratch)
  buildah copy --quiet "$c" "$nb/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  buildah commit --quiet --rm "$c" localhost/pause:1 >&2
  rm -f "$out"/pause-*.tar
  buildah push --quiet localhost/pause:1 "oci-archive:$out/pause-$pause_sum.tar:docker.io/local/pause:1" >&2
fi
ln -sf "pause-$pause_sum.tar" "$out/pause.tar"
step "images ready in $out"
echo "$out"
