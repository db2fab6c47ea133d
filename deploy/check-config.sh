#!/usr/bin/env bash
# Checks that crustd accepts deploy/config.toml, both as shipped (every key commented) and
# with every key uncommented (so each documented key name, type and default value is one
# crustd knows: unknown keys are an error). Starts CRUSTD on a temp root/state/socket with
# networking off (no bridge, no nft), waits until it serves, stops it. Run as root.
# Usage: deploy/check-config.sh [CRUSTD]   (default: crustd in PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
crustd=${1:-crustd}
d=$(mktemp -d /tmp/crust-check-config.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi
  rm -rf --one-file-system "$d"
}
trap cleanup EXIT
# "#key = value" and "#[table]" lines are settings; "# text" lines are prose.
# The metrics example port becomes 0 (any free port): parallel runs never collide.
sed -E 's/^#([a-z_\[])/\1/; s/^enabled = true/enabled = false/; s/^address = "127.0.0.1:1338"/address = "127.0.0.1:0"/' \
  deploy/config.toml > "$d/all.toml"
[ "$(grep -c '^address = "127.0.0.1:0"' "$d/all.toml")" = 2 ] || { echo "check-config: no metrics.address key" >&2; exit 1; }
grep -q '^enabled = false' "$d/all.toml" || { echo "check-config: no network.enabled key" >&2; exit 1; }
for f in deploy/config.toml "$d/all.toml"; do
  "$crustd" --config "$f" --root "$d/root" --state "$d/state" --listen "$d/state/s.sock" \
    > "$d/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -S "$d/state/s.sock" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if ! [ -S "$d/state/s.sock" ]; then
    echo "check-config: crustd rejected $f:" >&2; cat "$d/log" >&2; exit 1
  fi
  kill -TERM "$pid"; wait "$pid" || true; pid=
  rm -rf --one-file-system "$d/root" "$d/state"
done
echo "check-config: crustd accepts deploy/config.toml (as shipped and with every key set)"
