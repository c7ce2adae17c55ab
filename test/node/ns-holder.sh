#!/usr/bin/env bash
# The real node's namespace holder, run as `unshare --mount --net --propagation private ns-holder.sh DIR`.
# Everything of the node (control plane, containerd, kubelet, kube-proxy, pods) joins this network +
# mount namespace: test traffic never leaves it. Writes DIR/holder.ready, then sleeps until killed.
set -euo pipefail
dir="$1"
ip link set lo up
# The node IP sits on lo: the kubelet refuses a 127/8 node IP and there is no dummy module here.
ip addr add 10.99.0.2/32 dev lo
# Paths containerd, the kubelet and libcni hardcode (/run/containerd, /var/log/pods, /var/lib/cni)
# get overlay upper dirs under DIR, seen only in this mount namespace.
for p in run var/lib var/log; do
  u="$dir/ov/${p//\//-}"
  mkdir -p "$u/upper" "$u/work"
  mount -t overlay overlay -o "lowerdir=/$p,upperdir=$u/upper,workdir=$u/work" "/$p"
done
mount --make-rshared /
echo ready > "$dir/holder.ready"
exec sleep infinity
