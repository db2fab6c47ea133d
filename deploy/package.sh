#!/usr/bin/env bash
# Builds crust's Debian package, target/deb/crust_<version>_<arch>.deb:
#   /usr/bin/{crustd,crustctl,crust-shim,crust-runc}, /usr/bin/containerd-shim-crust-v2 -> crust-shim
#   /etc/crust/config.toml, /etc/crictl.yaml          (conffiles)
#   /lib/systemd/system/crustd.service                (enabled and started where systemd runs)
#   /usr/share/crust/ (config reference, crictl.yaml, CNI example), /usr/share/doc/crust/
# Depends are computed from the binaries by dpkg-shlibdeps (libc6, libseccomp2, ... as
# linked), plus the programs crust runs (nft for the built-in bridge, ps for crust-runc ps).
# Install: apt install ./target/deb/crust_*.deb (no Rust toolchain needed). Remove keeps
# /etc/crust and /var/lib/crust; purge removes them, the bridge crust0 and its nft table.
#
# Usage: deploy/package.sh [--bin-dir DIR] [--out DIR] [--fast]
#   --bin-dir DIR  package the four binaries found in DIR (default: build the release
#                  binaries with deploy/build.sh, as deploy/install.sh does)
#   --out DIR      where the .deb goes (default target/deb)
#   --fast         gzip -1 instead of xz (for tests)
# Env: CRUST_DEB_MAINTAINER (default "crust developers <crust@localhost>", which lintian
# calls a bogus mail host: set a real address when you publish the package).
# Prints the path of the package. Needs dpkg-dev (dpkg-shlibdeps); no root needed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin_dir= out=$repo/target/deb compress=(-Zxz)
while [ $# -gt 0 ]; do
  case $1 in
    --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --fast) compress=(-Zgzip -z1) ;;
    -h|--help) sed -n '2,/^[^#]/ s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "package: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
command -v dpkg-shlibdeps >/dev/null || { echo "package: needs dpkg-dev (apt-get install dpkg-dev)" >&2; exit 1; }
say() { echo "package: $*" >&2; }

maintainer=${CRUST_DEB_MAINTAINER:-crust developers <crust@localhost>}
version=$(sed -nE '/^\[workspace.package\]/,/^\[/ s/^version *= *"([^"]+)".*/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
BINS=(crustd crustctl crust-shim crust-runc)
work=$(mktemp -d /tmp/crust-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "$bin_dir" ]; then
  say "building the release binaries (deploy/build.sh; the first build takes minutes)"
  bin_dir=$work/bin
  deploy/build.sh "$bin_dir"
fi
for b in "${BINS[@]}"; do
  [ -x "$bin_dir/$b" ] || { echo "package: $bin_dir/$b missing" >&2; exit 1; }
done

root=$work/root
say "staging crust $version ($arch) from $bin_dir"
install -d "$root/usr/bin" "$root/etc/crust" "$root/lib/systemd/system" \
  "$root/usr/share/crust" "$root/usr/share/doc/crust" "$root/DEBIAN"
for b in "${BINS[@]}"; do install -m 0755 "$bin_dir/$b" "$root/usr/bin/$b"; done
# As dh_strip: no symbols or debug info in the package (the release builds are stripped
# already; target/debug's, which the CI test packages, are not).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "${BINS[@]/#/$root/usr/bin/}"
ln -s crust-shim "$root/usr/bin/containerd-shim-crust-v2"
install -m 0644 deploy/config.toml "$root/etc/crust/config.toml"
install -m 0644 deploy/crictl.yaml "$root/etc/crictl.yaml"
sed 's|/usr/local/bin/|/usr/bin/|g; s|/usr/local/share/crust/README.md|/usr/share/doc/crust/README.md|' \
  deploy/crustd.service > "$root/lib/systemd/system/crustd.service"
chmod 0644 "$root/lib/systemd/system/crustd.service"
install -m 0644 deploy/config.toml deploy/crictl.yaml deploy/10-crust-bridge.conflist "$root/usr/share/crust/"
install -m 0644 README.md "$root/usr/share/doc/crust/README.md"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: crust"
  echo
  echo "Files: *"
  echo "Copyright: $(git -C "$repo" log -1 --format=%cd --date=format:%Y 2>/dev/null || date +%Y) crust developers"
  echo "License: Apache-2.0"
  echo " On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0."
} > "$root/usr/share/doc/crust/copyright"
chmod 0644 "$root/usr/share/doc/crust/copyright"
# A native package's changelog: this build, from the git commit when there is one.
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
printf 'crust (%s) unstable; urgency=medium\n\n  * Built from the crust source tree, commit %s.\n\n -- %s  %s\n' \
  "$version" "$commit" "$maintainer" "$(date -R)" | gzip -9n > "$root/usr/share/doc/crust/changelog.gz"
chmod 0644 "$root/usr/share/doc/crust/changelog.gz"
# serde_yaml's unsafe-libyaml is a Rust translation of libyaml that lintian's
# embedded-library check recognises by its strings; it is not a bundled copy of the C library.
# crustctl reads YAML pod/container configs, crustd YAML CDI specs.
install -d "$root/usr/share/lintian/overrides"
printf 'crust: embedded-library libyaml [usr/bin/crustctl]\ncrust: embedded-library libyaml [usr/bin/crustd]\n' > "$root/usr/share/lintian/overrides/crust"
chmod 0644 "$root/usr/share/lintian/overrides/crust"
install -m 0755 deploy/deb/postinst deploy/deb/prerm deploy/deb/postrm "$root/DEBIAN/"
printf '/etc/crust/config.toml\n/etc/crictl.yaml\n' > "$root/DEBIAN/conffiles"

# Shared-library dependencies of the binaries as linked (static ones add none).
mkdir -p "$work/src/debian"
printf 'Source: crust\n\nPackage: crust\nArchitecture: any\n' > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "${BINS[@]/#/$root/usr/bin/}" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
depends="${shlibs:+$shlibs, }nftables, procps"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: crust
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends
Recommends: containernetworking-plugins, iproute2
Section: admin
Priority: optional
Description: Kubernetes node runtime (CRI v1) in Rust
 crust is a container runtime for kubelet: crustd serves the CRI v1 gRPC API
 on /run/crust/crust.sock, runs each pod under a per-pod shim (crust-shim, also
 usable by containerd as containerd-shim-crust-v2) and its containers with
 crust-runc, an OCI runtime compatible with runc. crustctl is a
 crictl-compatible client.
CONTROL
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
  xargs -0 md5sum > DEBIAN/md5sums)
mkdir -p "$out"
deb=$out/crust_${version}_${arch}.deb
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >&2
say "built $deb (Depends: $depends)"
echo "$deb"
