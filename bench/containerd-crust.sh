#!/usr/bin/env bash
# containerd 1.6 driving crust-shim as runtime io.containerd.crust.v2.
#
# Starts a private containerd (own root/state/socket/config under a temp dir), imports a
# busybox OCI image built from busybox-static, puts `containerd-shim-crust-v2` on
# containerd's PATH and runs containers with `ctr run --runtime io.containerd.crust.v2`:
# attached output, detached run + exec + kill + delete. Prints PASS/FAIL per step.
#
# Also a library: `source bench/containerd-crust.sh --lib` defines ctd_start,
# ctd_import_busybox, ctd_stop and build_shim for bench/shim.sh.
#
# Env: CRUST_SHIM_BIN (default: built with the small profile), SHIM_RUNTIME (the OCI
# runtime the crust shim runs, default runc; crust-runc once it is complete).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"

# Builds the deployed shim: static, size-optimised. Prints its path.
build_shim() {
    if [[ -n "${CRUST_SHIM_BIN:-}" ]]; then echo "$CRUST_SHIM_BIN"; return; fi
    (cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" cargo build -q -p crust-shim \
        --bins --target x86_64-unknown-linux-gnu --profile shim >&2)
    echo "$TARGET/x86_64-unknown-linux-gnu/shim/crust-shim"
}

# ctd_start DIR [PATH-prefix]: private containerd; sets CTD_SOCK, CTD_PID, CTR.
ctd_start() {
    local dir="$1" pathpfx="${2:-}"
    mkdir -p "$dir/root" "$dir/state"
    cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  disable_apparmor = true
TOML
    PATH="${pathpfx:+$pathpfx:}$PATH" containerd --config "$dir/config.toml" \
        > "$dir/containerd.log" 2>&1 &
    CTD_PID=$!
    CTD_SOCK="$dir/containerd.sock"
    CTR=(ctr -a "$CTD_SOCK" -n crustbench)
    for _ in $(seq 100); do
        [[ -S "$CTD_SOCK" ]] && "${CTR[@]}" version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "containerd did not start; log:" >&2; tail -20 "$dir/containerd.log" >&2; return 1
}

# ctd_import_busybox DIR: builds an OCI archive from /bin/busybox and imports it as
# docker.io/library/crust-busybox:latest.
ctd_import_busybox() {
    local dir="$1"
    python3 - "$dir/busybox-oci.tar" <<'PY'
import hashlib, io, json, os, sys, tarfile, time
out = sys.argv[1]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    for d in ["bin", "dev", "proc", "sys", "tmp", "etc"]:
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
    data = open("/bin/busybox", "rb").read()
    ti = tarfile.TarInfo("bin/busybox"); ti.size = len(data); ti.mode = 0o755
    t.addfile(ti, io.BytesIO(data))
    for app in ["sh", "echo", "sleep", "cat", "ls", "true", "false", "ps", "id", "hostname"]:
        ti = tarfile.TarInfo("bin/" + app); ti.type = tarfile.SYMTYPE; ti.linkname = "busybox"
        t.addfile(ti)
layer = layer.getvalue()
blobs = {}
def blob(b):
    d = hashlib.sha256(b).hexdigest(); blobs[d] = b; return "sha256:" + d
ld = blob(layer)
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
cd = blob(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)}]}).encode()
md = blob(manifest)
index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
    "annotations": {"io.containerd.image.name": "docker.io/library/crust-busybox:latest",
                    "org.opencontainers.image.ref.name": "latest"}}]}).encode()
with tarfile.open(out, "w") as t:
    def add(name, b):
        ti = tarfile.TarInfo(name); ti.size = len(b); ti.mtime = int(time.time()); t.addfile(ti, io.BytesIO(b))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    for d, b in blobs.items():
        add("blobs/sha256/" + d, b)
PY
    "${CTR[@]}" images import "$dir/busybox-oci.tar" >/dev/null
    IMAGE=docker.io/library/crust-busybox:latest
}

# ctd_stop DIR: removes what is left in the namespace and stops containerd (by pid).
ctd_stop() {
    local dir="$1"
    for c in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
        "${CTR[@]}" tasks kill -s 9 "$c" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for c in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
        "${CTR[@]}" tasks delete -f "$c" >/dev/null 2>&1 || true
    done
    for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do
        "${CTR[@]}" containers delete "$c" >/dev/null 2>&1 || true
    done
    kill "$CTD_PID" 2>/dev/null || true
    wait "$CTD_PID" 2>/dev/null || true
    grep " $dir/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$dir"
}

[[ "${1:-}" == "--lib" ]] && return 0

# --- containerd drives crust-shim -------------------------------------------------
shim="$(build_shim)"
dir="$(mktemp -d /tmp/crust-ctd-XXXXXX)"
bin="$dir/bin"; mkdir -p "$bin"
ln -s "$shim" "$bin/containerd-shim-crust-v2"
export CRUST_SHIM_RUNTIME="${SHIM_RUNTIME:-runc}" CRUST_SHIM_STATE_DIR="$dir/shim"
trap 'ctd_stop "$dir"' EXIT
ctd_start "$dir" "$bin"
ctd_import_busybox "$dir"
RT=(--runtime io.containerd.crust.v2)
fail=0
step() { if "$@"; then echo "PASS: $desc"; else echo "FAIL: $desc"; fail=1; fi; }

desc="ctr run (attached) prints the container's output through crust-shim"
out="$("${CTR[@]}" run --rm "${RT[@]}" "$IMAGE" t-attached echo hello-from-crust 2>&1 || true)"
step test "$(echo "$out" | tr -d '\r')" = "hello-from-crust"

desc="ctr run (attached) returns the exit code"
set +e; "${CTR[@]}" run --rm "${RT[@]}" "$IMAGE" t-exit sh -c 'exit 7' >/dev/null 2>&1; rc=$?; set -e
step test "$rc" = 7

desc="ctr run -d; the task's parent is the crust shim (re-executed as crust-shim serve)"
"${CTR[@]}" run -d "${RT[@]}" "$IMAGE" t-bg sleep 1000 >/dev/null
pid="$("${CTR[@]}" tasks ls | awk '$1=="t-bg"{print $2}')"
ppid="$(awk '{print $4}' "/proc/$pid/stat")"
step bash -c "tr '\\0' ' ' < /proc/$ppid/cmdline | grep -q 'crust-shim.* serve'"
echo "  shim pid $ppid: $(grep -E '^(Rss|Pss):' /proc/$ppid/smaps_rollup | tr -s ' ' | tr '\n' ' ')"

desc="ctr task exec returns output and exit code"
set +e
out="$("${CTR[@]}" tasks exec --exec-id e1 t-bg sh -c 'echo in-exec; exit 3' 2>&1)"; rc=$?
set -e
step test "$out" = "in-exec" -a "$rc" = 3

desc="ctr task kill + delete; containerd sees the exit (event via TTRPC_ADDRESS)"
"${CTR[@]}" tasks kill -s 9 t-bg
st=""
for _ in $(seq 50); do st="$("${CTR[@]}" tasks ls | awk '$1=="t-bg"{print $3}')"; [[ "$st" == STOPPED ]] && break; sleep 0.1; done
step test "$st" = STOPPED
"${CTR[@]}" tasks delete t-bg >/dev/null
"${CTR[@]}" containers delete t-bg
desc="the shim exits after its last container is deleted"
step bash -c "for i in \$(seq 50); do [[ -d /proc/$ppid ]] || exit 0; sleep 0.1; done; exit 1"
exit $fail
