#!/usr/bin/env bash
# crust demo (first cut: the OCI runtime alone). Builds crust-runc, makes a busybox-static
# bundle, and runs a container through crust-runc, showing its output; then the same
# container through the create/start/exec/kill/delete lifecycle.
# Usage: sudo deploy/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo deploy/demo.sh)"; exit 1; }
deploy/deps.sh   # (jq is in the test set)

RUNC=$(runc/release.sh)

W=$(mktemp -d /tmp/crust-demo.XXXXXX)
ROOT="$W/state"
cleanup() {
  "$RUNC" --root "$ROOT" delete --force demo-life >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# A busybox-static bundle: the binary, applet symlinks, and crust-runc's default spec.
B="$W/bundle"
mkdir -p "$B/rootfs/bin" "$B/rootfs/etc"
cp /bin/busybox "$B/rootfs/bin/"
for a in sh echo cat hostname id ls ps sleep uname; do ln -s busybox "$B/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$B/rootfs/etc/passwd"
(cd "$B" && "$RUNC" spec)
jq '.process.terminal = false | .hostname = "crust-demo"
    | .process.args = ["sh", "-c", "echo hello from $(hostname), pid $$ as $(id -un); echo processes:; ps; echo mounts:; cat /proc/mounts | head -5"]' \
  "$B/config.json" > "$W/c.json" && mv "$W/c.json" "$B/config.json"

echo "== crust-runc run (foreground)"
"$RUNC" --root "$ROOT" run --bundle "$B" demo-run
echo "   exit code $?"

echo "== create / start / state / exec / kill / delete"
jq '.process.args = ["sleep", "1000"]' "$B/config.json" > "$W/c.json" && mv "$W/c.json" "$B/config.json"
"$RUNC" --root "$ROOT" create --bundle "$B" demo-life
"$RUNC" --root "$ROOT" state demo-life | jq -c '{id, status, pid}'
"$RUNC" --root "$ROOT" start demo-life
"$RUNC" --root "$ROOT" list
"$RUNC" --root "$ROOT" exec demo-life sh -c 'echo "exec: $(uname -n) sees $(ls /proc | grep -c "^[0-9]") processes"'
"$RUNC" --root "$ROOT" kill demo-life KILL
sleep 0.1
"$RUNC" --root "$ROOT" state demo-life | jq -c '{id, status}'
"$RUNC" --root "$ROOT" delete demo-life
echo "== done"
