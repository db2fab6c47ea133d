#!/usr/bin/env bash
# crust's main job on its embedded defaults, on a fresh Debian 12 machine, as root:
# installs the Debian packages it needs, builds the release binaries, starts crustd
# (root /var/lib/crust, state /run/crust, socket /run/crust/crust.sock, no config needed),
# makes a busybox image from Debian's busybox-static and imports it, runs a pod with a
# container through the CRI the way kubelet does (crustctl), shows its output and status,
# execs into it, stops and removes everything and shuts crustd down.
#
# If a crustd already answers on /run/crust/crust.sock (an installed crust), the demo runs
# its own crustd beside it instead: --root/--state/--listen in a temp dir and a config that
# gives it its own bridge (crustdemo0, 10.123.0.0/24), so the two never share state.
# Everything the demo created is removed on exit, also on failure or Ctrl-C; it can be run
# any number of times. Usage: sudo deploy/demo.sh
# Env: DEMO_KEEP_LOG=1 keeps crustd's log; CRUST_BIN_DIR=DIR runs prebuilt binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo deploy/demo.sh)" >&2; exit 1; }

if [ -t 1 ]; then say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }; else say() { printf '\n== %s\n' "$*"; }; fi
deploy/deps.sh --runtime-only

W=$(mktemp -d /tmp/crust-demo.XXXXXX)
trap 'rm -rf "$W"' EXIT   # until the full cleanup below takes over
BIN=$W/bin
if [ -n "${CRUST_BIN_DIR:-}" ]; then   # prebuilt binaries (deploy/build.sh DIR) instead
  say "using crustd, crustctl, crust-shim, crust-runc from $CRUST_BIN_DIR"
  mkdir -p "$BIN"
  for b in crustd crustctl crust-shim crust-runc; do install -m 0755 "$CRUST_BIN_DIR/$b" "$BIN/"; done
else
  say "building crustd, crustctl, crust-shim, crust-runc (release; the first build takes minutes)"
  deploy/build.sh "$BIN"
fi
ls -l "$BIN" | awk 'NR>1 {printf "   %-11s %6.1f MB\n", $9, $5/1048576}'

CTL=("$BIN/crustctl")
IMAGE=docker.io/library/crust-busybox:latest
# ---- where crustd runs: the true defaults unless an installed crustd is serving there.
if [ -S /run/crust/crust.sock ] && "${CTL[@]}" -r unix:///run/crust/crust.sock images >/dev/null 2>&1; then
  MODE=beside
  ROOT=$W/root STATE=$W/state SOCK=$W/state/crust.sock BRIDGE=crustdemo0
  printf '[network]\nbridge = "%s"\nsubnet = "10.123.0.0/24"\n' "$BRIDGE" > "$W/config.toml"
  DARGS=(--root "$ROOT" --state "$STATE" --listen "$SOCK" --config "$W/config.toml")
else
  MODE=defaults
  ROOT=/var/lib/crust STATE=/run/crust SOCK=/run/crust/crust.sock BRIDGE=crust0
  DARGS=()
fi
CTL+=(-r "unix://$SOCK" -i "unix://$SOCK")   # both: /etc/crictl.yaml may name another
# What exists before, so that cleanup removes exactly what the demo created.
had_root=0; [ -e "$ROOT" ] && had_root=1
had_state=0; [ -e "$STATE" ] && had_state=1
had_bridge=0; ip link show "$BRIDGE" >/dev/null 2>&1 && had_bridge=1
had_nft=0; nft list table inet "crust-$BRIDGE" >/dev/null 2>&1 && had_nft=1
had_cg=(); for c in /sys/fs/cgroup/*/crust /sys/fs/cgroup/crust; do [ -d "$c" ] && had_cg+=("$c"); done
DPID= POD= IMPORTED=0

# Unmounts everything at or below $1 (deepest first).
umount_under() {
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$POD" ]; then "${CTL[@]}" rmp -f "$POD" >/dev/null 2>&1; fi
  if [ "$IMPORTED" = 1 ]; then "${CTL[@]}" rmi "$IMAGE" >/dev/null 2>&1; fi
  if [ -n "$DPID" ]; then
    kill -TERM "$DPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
  fi
  # Should crustd have died first: the containers and shims the demo left, directly.
  for c in $("$BIN/crust-runc" --root "$STATE/runc" list -q 2>/dev/null); do
    "$BIN/crust-runc" --root "$STATE/runc" delete --force "$c" >/dev/null 2>&1
  done
  for p in $(pgrep -x crust-shim); do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$BIN/crust-shim" ] && kill -KILL "$p" 2>/dev/null
  done
  if [ "$rc" != 0 ] && [ -f "$W/crustd.log" ]; then
    echo "demo: failed (exit $rc); crustd's log ends:" >&2
    tail -n 25 "$W/crustd.log" >&2
  fi
  # Only what the demo made: a root/state it created, its bridge, nft table and cgroups.
  [ "$had_root" = 1 ] || { umount_under "$ROOT"; rm -rf --one-file-system "$ROOT"; }
  [ "$had_state" = 1 ] || { umount_under "$STATE"; rm -rf --one-file-system "$STATE"; }
  [ "$had_bridge" = 1 ] || ip link del "$BRIDGE" 2>/dev/null
  [ "$had_nft" = 1 ] || nft delete table inet "crust-$BRIDGE" 2>/dev/null
  for c in /sys/fs/cgroup/*/crust /sys/fs/cgroup/crust; do
    [ -d "$c" ] || continue
    case " ${had_cg[*]} " in *" $c "*) continue ;; esac
    find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  if [ "${DEMO_KEEP_LOG:-0}" = 1 ] && [ -f "$W/crustd.log" ]; then
    cp "$W/crustd.log" "/tmp/crust-demo-crustd.log" && echo "demo: crustd log in /tmp/crust-demo-crustd.log"
  fi
  umount_under "$W"
  rm -rf --one-file-system "$W"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- start crustd
if [ "$MODE" = defaults ]; then
  say "starting crustd on its embedded defaults (root $ROOT, state $STATE, socket $SOCK)"
else
  say "a crustd already serves /run/crust/crust.sock: starting a second one in $W"
fi
# Its own session: Ctrl-C (SIGINT to the terminal's process group) must reach only this
# script, whose cleanup then removes the pod through crustd before stopping it.
setsid "$BIN/crustd" "${DARGS[@]}" > "$W/crustd.log" 2>&1 < /dev/null &
DPID=$!
for _ in $(seq 100); do
  [ -S "$SOCK" ] && "${CTL[@]}" version >/dev/null 2>&1 && break
  kill -0 "$DPID" 2>/dev/null || { echo "demo: crustd exited at start-up" >&2; exit 1; }
  sleep 0.1
done
"${CTL[@]}" version
echo "   crustd pid $DPID, RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$DPID/status")"

say "importing a busybox image made from Debian's busybox-static"
deploy/make-busybox-image.sh "$W/busybox-oci.tar" "$IMAGE"
if ! "${CTL[@]}" inspecti "$IMAGE" >/dev/null 2>&1; then IMPORTED=1; fi
"${CTL[@]}" import "$W/busybox-oci.tar"
"${CTL[@]}" images

say "running a pod (no pause image: pinned namespaces) with one container"
mkdir -p "$W/logs"
cat > "$W/pod.json" <<EOF
{"metadata": {"name": "crust-demo", "namespace": "default", "uid": "crust-demo-$$", "attempt": 0},
 "hostname": "crust-demo", "log_directory": "$W/logs",
 "labels": {"app": "crust-demo"}, "linux": {}}
EOF
cat > "$W/ctr.json" <<'EOF'
{"metadata": {"name": "hello"}, "image": {"image": "docker.io/library/crust-busybox:latest"},
 "command": ["sh", "-c"],
 "args": ["echo \"hello from $(hostname): $(uname -sr), uid $(id -u), pid $$\"; ip -4 -o addr show | awk '{print \"address\", $2, $4}'; trap 'echo got SIGTERM, bye; exit 0' TERM; while :; do sleep 1; done"],
 "log_path": "hello.log", "linux": {}}
EOF
POD=$("${CTL[@]}" runp "$W/pod.json")
CID=$("${CTL[@]}" create "$POD" "$W/ctr.json" "$W/pod.json")
"${CTL[@]}" start "$CID" >/dev/null
"${CTL[@]}" pods
"${CTL[@]}" ps -a
for _ in $(seq 50); do [ -s "$W/logs/hello.log" ] && grep -q address "$W/logs/hello.log" && break; sleep 0.1; done

say "crustctl logs (the CRI log file the shim wrote)"
"${CTL[@]}" logs "$CID"

say "crustctl exec: a process inside the running container"
"${CTL[@]}" exec "$CID" ps -o pid,user,args

say "crustctl stop: SIGTERM (SIGKILL after 10 s), the container exits by itself"
"${CTL[@]}" stop -T 10 "$CID" >/dev/null
"${CTL[@]}" logs "$CID" | tail -n 1
"${CTL[@]}" ps -a
"${CTL[@]}" inspect -o yaml "$CID" | grep -E '^ *(exitCode|reason):' | sed 's/^ */   /'

say "removing the pod and the image, stopping crustd"
"${CTL[@]}" rmp -f "$POD"; POD=
if [ "$IMPORTED" = 1 ]; then "${CTL[@]}" rmi "$IMAGE"; IMPORTED=0; fi
kill -TERM "$DPID"; wait "$DPID" || true; DPID=
echo "   crustd stopped; cleaning up"
