#!/usr/bin/env bash
# Installs crust on this machine (Debian 12, as root):
#   $PREFIX/bin/{crustd,crustctl,crust-shim,crust-runc}, $PREFIX/bin/containerd-shim-crust-v2
#     (-> crust-shim, so containerd can run pods with runtime_type io.containerd.crust.v2)
#   /etc/crust/config.toml      every key commented with its default (kept if present)
#   /etc/crictl.yaml            pointing crictl/crustctl at crust (kept if present; the
#                               example is always at $PREFIX/share/crust/crictl.yaml)
#   $PREFIX/share/crust/        crictl.yaml, 10-crust-bridge.conflist, config.toml, README
#   /etc/systemd/system/crustd.service, enabled and started when systemd runs
# Usage: deploy/install.sh [--no-build] [--no-start] | deploy/install.sh --uninstall [--purge]
#   PREFIX (default /usr/local), DESTDIR (staging root for packaging; implies --no-start).
#   --no-build installs the binaries found in CRUST_BIN_DIR instead of building.
#   Without systemd crustd is started unsupervised in the background (and it says so).
#   A Debian package instead: deploy/package.sh, then apt install ./target/deb/crust_*.deb.
# --uninstall stops crustd and removes the binaries, the unit and the shared files; it keeps
# /etc/crust/config.toml, /etc/crictl.yaml and /var/lib/crust unless --purge is given
# (--purge refuses while crust-shim processes, i.e. pods, are still running).
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN=$DESTDIR$PREFIX/bin
SHARE=$DESTDIR$PREFIX/share/crust
ETC=$DESTDIR/etc
UNIT=$DESTDIR/etc/systemd/system/crustd.service
BINS=(crustd crustctl crust-shim crust-runc)
build=1 start=1 uninstall=0 purge=0
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    --no-start) start=0 ;;
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    -h|--help) sed -n '2,/^[^#]/ s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "install: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$DESTDIR" ] && start=0
[ "$(id -u)" = 0 ] || [ -n "$DESTDIR" ] || { echo "install: run as root" >&2; exit 1; }
have_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }
say() { echo "install: $*"; }

if [ "$uninstall" = 1 ]; then
  if [ "$purge" = 1 ]; then
    if pods=$("$BIN/crustctl" -r unix:///run/crust/crust.sock pods -q 2>/dev/null) && [ -n "$pods" ]; then
      say "crustd still has pods: remove them first (crustctl rmp -fa), then --purge" >&2
      exit 1
    fi
    for p in $(pgrep -x crust-shim || true); do
      case $(readlink "/proc/$p/exe" 2>/dev/null) in "$BIN/crust-shim"*)
        say "pods still run (crust-shim pid $p): remove them first (crustctl rmp -fa), then --purge" >&2
        exit 1 ;;
      esac
    done
  fi
  if have_systemd; then
    systemctl disable --now crustd.service >/dev/null 2>&1 || true
  elif pid=$(cat /run/crust/crustd.pid 2>/dev/null) && [ -n "$pid" ] &&
       [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$BIN/crustd" ]; then
    # Started by this script without systemd (see below).
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "stopped crustd (pid $pid)"
  fi
  [ -n "$DESTDIR" ] || rm -f /run/crust/crustd.pid
  for b in "${BINS[@]}" containerd-shim-crust-v2; do
    if [ -e "$BIN/$b" ] || [ -L "$BIN/$b" ]; then rm -f "$BIN/$b" && say "removed $BIN/$b"; fi
  done
  if [ -e "$UNIT" ]; then rm -f "$UNIT" && say "removed $UNIT"; fi
  have_systemd && systemctl daemon-reload
  if [ -d "$SHARE" ]; then rm -rf "$SHARE" && say "removed $SHARE"; fi
  if [ "$purge" = 0 ]; then
    say "kept $ETC/crust/config.toml, $ETC/crictl.yaml and the data in /var/lib/crust"
    say "(--uninstall --purge removes them; running pods keep their shims either way)"
    exit 0
  fi
  # The built-in bridge and its nft table (their state went with /var/lib/crust).
  br=$(sed -nE 's/^bridge *= *"([^"]+)".*/\1/p' "$ETC/crust/config.toml" 2>/dev/null | head -n1)
  br=${br:-crust0}
  if [ -z "$DESTDIR" ]; then
    ip link del "$br" 2>/dev/null && say "removed bridge $br"
    nft delete table inet "crust-$br" 2>/dev/null && say "removed nft table inet crust-$br"
  fi
  rm -rf "$ETC/crust" && say "removed $ETC/crust"
  [ -z "$DESTDIR" ] && rm -f /var/log/crustd.log
  if [ -e "$ETC/crictl.yaml" ] && cmp -s deploy/crictl.yaml "$ETC/crictl.yaml"; then
    rm -f "$ETC/crictl.yaml" && say "removed $ETC/crictl.yaml"
  fi
  for d in "$DESTDIR/var/lib/crust" "$DESTDIR/run/crust"; do
    [ -e "$d" ] || continue
    # Pinned namespaces and leftover overlay mounts first, deepest first, then the files.
    awk -v d="$d" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$d" && say "removed $d"
  done
  exit 0
fi

if [ "$build" = 1 ]; then
  deploy/deps.sh --runtime-only
  out=$(mktemp -d /tmp/crust-install.XXXXXX)
  trap 'rm -rf "$out"' EXIT
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
sed "s|/usr/local/|$PREFIX/|g" deploy/crustd.service > "$UNIT"
chmod 0644 "$UNIT"
say "installed $UNIT"

# The shipped config reference must be accepted, key by key, by the crustd just installed.
[ "$(id -u)" = 0 ] && deploy/check-config.sh "$BIN/crustd"

if [ "$start" = 0 ]; then
  if [ -n "$DESTDIR" ]; then
    say "staged into DESTDIR=$DESTDIR: crustd was not started (and nothing outside DESTDIR touched)"
  else
    say "--no-start: crustd was not started (systemctl start crustd, or run $BIN/crustd)"
  fi
  exit 0
fi
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
    say "no systemd here: started crustd UNSUPERVISED (pid $!, log /var/log/crustd.log);" \
      "nothing restarts it if it dies or after a reboot: run it under your service manager"
  fi
fi
for _ in $(seq 100); do
  "$BIN/crustctl" -r unix:///run/crust/crust.sock images >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/crustctl" -r unix:///run/crust/crust.sock images >/dev/null && say "crustd answers on unix:///run/crust/crust.sock"
