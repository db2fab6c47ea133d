#!/usr/bin/env bash
# Installs crust on this machine (Debian 12, as root):
#   $PREFIX/bin/{crustd,crustctl,crust-shim,crust-runc}, $PREFIX/bin/containerd-shim-crust-v2
#     (-> crust-shim, so containerd can run pods with runtime_type io.containerd.crust.v2)
#   /etc/crust/config.toml      every key commented with its default (kept if present)
#   /etc/crictl.yaml            pointing crictl/crustctl at crust (kept if present; the
#                               example is always at $PREFIX/share/crust/crictl.yaml)
#   $PREFIX/share/crust/        crictl.yaml, 10-crust-bridge.conflist, config.toml, README
#   /etc/systemd/system/crustd.service, enabled and started when systemd runs
# Usage: deploy/install.sh [--no-build] [--no-start] | deploy/install.sh --uninstall
#   PREFIX (default /usr/local), DESTDIR (staging root for packaging; implies --no-start).
# --uninstall removes the binaries, the unit and the shared files, and keeps
# /etc/crust/config.toml, /etc/crictl.yaml and the data in /var/lib/crust (it says so).
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN=$DESTDIR$PREFIX/bin
SHARE=$DESTDIR$PREFIX/share/crust
ETC=$DESTDIR/etc
UNIT=$DESTDIR/etc/systemd/system/crustd.service
BINS=(crustd crustctl crust-shim crust-runc)
build=1 start=1 uninstall=0
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    --no-start) start=0 ;;
    --uninstall) uninstall=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$DESTDIR" ] && start=0
[ "$(id -u)" = 0 ] || [ -n "$DESTDIR" ] || { echo "install: run as root" >&2; exit 1; }
have_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }
say() { echo "install: $*"; }

if [ "$uninstall" = 1 ]; then
  if have_systemd; then
    systemctl disable --now crustd.service >/dev/null 2>&1 || true
  elif pid=$(cat /run/crust/crustd.pid 2>/dev/null) && [ -n "$pid" ]; then
    # Started by this script without systemd (see below).
    kill -TERM "$pid" 2>/dev/null && say "stopped crustd (pid $pid)"
  fi
  for b in "${BINS[@]}" containerd-shim-crust-v2; do
    if [ -e "$BIN/$b" ] || [ -L "$BIN/$b" ]; then rm -f "$BIN/$b" && say "removed $BIN/$b"; fi
  done
  if [ -e "$UNIT" ]; then rm -f "$UNIT" && say "removed $UNIT"; fi
  have_systemd && systemctl daemon-reload
  if [ -d "$SHARE" ]; then rm -rf "$SHARE" && say "removed $SHARE"; fi
  say "kept $ETC/crust/config.toml, $ETC/crictl.yaml and the data in /var/lib/crust;"
  say "remove them by hand if you want them gone (pods still running keep their shims)"
  exit 0
fi

if [ "$build" = 1 ]; then
  deploy/deps.sh --runtime-only
  out=$(mktemp -d /tmp/crust-install.XXXXXX)
  trap 'rm -rf "$out"' EXIT
  say "building release binaries (the first build takes minutes)"
  deploy/build.sh "$out"
else
  out=${CRUST_BIN_DIR:?--no-build needs CRUST_BIN_DIR=dir with the four binaries}
fi

mkdir -p "$BIN" "$SHARE" "$ETC/crust" "$(dirname "$UNIT")"
# install(1) writes a new inode: running shims and crustd keep their old binary.
for b in "${BINS[@]}"; do install -m 0755 "$out/$b" "$BIN/$b"; done
ln -sfn crust-shim "$BIN/containerd-shim-crust-v2"
say "installed ${BINS[*]} and containerd-shim-crust-v2 into $BIN"

install -m 0644 deploy/config.toml deploy/crictl.yaml deploy/10-crust-bridge.conflist README.md "$SHARE/"
if [ -e "$ETC/crust/config.toml" ]; then
  say "kept the existing $ETC/crust/config.toml (defaults: $SHARE/config.toml)"
else
  install -m 0644 deploy/config.toml "$ETC/crust/config.toml"
  say "installed $ETC/crust/config.toml"
fi
if [ -e "$ETC/crictl.yaml" ]; then
  say "kept the existing $ETC/crictl.yaml (crust's: $SHARE/crictl.yaml)"
else
  install -m 0644 deploy/crictl.yaml "$ETC/crictl.yaml"
  say "installed $ETC/crictl.yaml"
fi
sed "s|/usr/local/bin/crustd|$PREFIX/bin/crustd|" deploy/crustd.service > "$UNIT"
chmod 0644 "$UNIT"
say "installed $UNIT"

# The shipped config reference must be accepted, key by key, by the crustd just installed.
deploy/check-config.sh "$BIN/crustd"

[ "$start" = 1 ] || exit 0
if have_systemd; then
  systemctl daemon-reload
  systemctl enable crustd.service >/dev/null 2>&1
  systemctl restart crustd.service
  say "crustd.service enabled and (re)started"
else
  # No systemd as PID 1 (containers, some VMs): start crustd in the background once.
  if "$BIN/crustctl" -r unix:///run/crust/crust.sock images >/dev/null 2>&1; then
    say "a crustd already serves /run/crust/crust.sock; not starting another"
  else
    mkdir -p /run/crust /var/log
    setsid "$BIN/crustd" >> /var/log/crustd.log 2>&1 < /dev/null &
    echo $! > /run/crust/crustd.pid
    say "no systemd: started crustd (pid $!, log /var/log/crustd.log)"
  fi
fi
for _ in $(seq 100); do
  "$BIN/crustctl" -r unix:///run/crust/crust.sock images >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/crustctl" -r unix:///run/crust/crust.sock images >/dev/null && say "crustd answers on unix:///run/crust/crust.sock"
