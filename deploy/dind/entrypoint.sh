#!/bin/sh
# `--privileged` fails on this kind of host (its bounding set lacks CAP_SYS_RESOURCE, so runc cannot apply "all
# capabilities"), so the node runs with every other capability and no seccomp/AppArmor profile instead, and makes
# writable here what --privileged would have: /sys and the cgroup v1 hierarchies (bind mounts: remount,bind).
set -e
mount -o remount,rw /sys 2>/dev/null || true
for d in /sys/fs/cgroup/*/; do
    mount -o remount,rw,bind "$d" 2>/dev/null || echo "dind: $d stays read-only" >&2
done
exec "$@"
