#!/usr/bin/env bash
# The real node's last line of defence, run detached beside it: once the process that owns the node
# (OWNER) is gone without stopping it (SIGKILL, a killed test runner), it kills every container (by
# the node's cgroups), every shim of this node, every process group the node recorded, removes the
# node's cgroups and its work dir. The normal stop() removes pods first and stops this reaper.
# usage: node-reaper.sh OWNER_PID NODE_DIR NODE_BIN_DIR
owner="$1" dir="$2" nb="$3"
while kill -0 "$owner" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
[ -d "$dir" ] || exit 0
sweep() {
  for f in /sys/fs/cgroup/*/k8s.io/*/cgroup.procs /sys/fs/cgroup/*/k8s.io/*/*/cgroup.procs; do
    [ -f "$f" ] && { while read -r p; do kill -9 "$p" 2>/dev/null; done < "$f"; } 2>/dev/null
  done
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/exe" 2>/dev/null)" = "$nb/containerd-shim-runc-v2" ] && kill -9 "${d#/proc/}" 2>/dev/null
  done
}
sweep
for p in $(grep -o '"pid":[0-9]*' "$dir/processes.json" 2>/dev/null | cut -d: -f2); do kill -9 -- "-$p" 2>/dev/null; done
sleep 1
sweep
for c in /sys/fs/cgroup/*/k8s.io; do
  [ -d "$c" ] && find "$c" -depth -mindepth 1 -type d -exec rmdir {} \; 2>/dev/null; rmdir "$c" 2>/dev/null
done
rm -rf "$dir"
