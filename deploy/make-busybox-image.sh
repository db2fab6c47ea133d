#!/usr/bin/env bash
# Makes a busybox image offline, from Debian's busybox-static (no registry, no network), as
# an OCI image-layout tar that `crustctl import` (crustd running) or `crustd import` (crustd
# stopped) loads: one layer with /bin/busybox and its applet links, /etc/passwd and
# /etc/group (root, nobody), /tmp; Cmd ["sh"]. Deterministic (fixed owners, order and
# mtimes), so every run makes the same digests.
# Usage: deploy/make-busybox-image.sh OUT.tar [NAME]
#   NAME defaults to docker.io/library/crust-busybox:latest.
# Needs busybox-static (apt-get install busybox-static), tar, sha256sum.
set -euo pipefail
out=${1:?usage: deploy/make-busybox-image.sh OUT.tar [NAME]}
name=${2:-docker.io/library/crust-busybox:latest}
bb=$(command -v busybox) || { echo "make-busybox-image: needs busybox-static (apt-get install busybox-static)" >&2; exit 1; }
case $(dpkg --print-architecture 2>/dev/null || uname -m) in
  amd64|x86_64) arch=amd64 ;; arm64|aarch64) arch=arm64 ;; *) arch=$(uname -m) ;;
esac
d=$(mktemp -d /tmp/crust-image.XXXXXX)
trap 'rm -rf "$d"' EXIT
r=$d/rootfs
mkdir -p "$r/bin" "$r/etc" "$r/root" "$r/tmp" "$d/oci/blobs/sha256"
cp "$bb" "$r/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
chmod 1777 "$r/tmp"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$r" -cf "$d/layer.tar" .
blob() { # FILE -> prints "sha256:<hex> <size>", stores the blob
  local h s
  h=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  cp "$1" "$d/oci/blobs/sha256/$h"
  echo "sha256:$h $s"
}
read -r layer lsize < <(blob "$d/layer.tar")
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
  "$arch" "$layer" > "$d/config.json"
read -r cfg csize < <(blob "$d/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
  "$cfg" "$csize" "$layer" "$lsize" > "$d/manifest.json"
read -r man msize < <(blob "$d/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$man" "$msize" "$arch" "$name" "${name##*:}" > "$d/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$d/oci/oci-layout"
tar --owner=0 --group=0 --numeric-owner -C "$d/oci" -cf "$out" oci-layout index.json blobs
echo "make-busybox-image: $name -> $out" >&2
