#!/usr/bin/env bash
# One-time, idempotent set-up of a machine for lsdn: the system tools it drives and its npm
# dependencies. Safe to run again: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A need=(
  [ip]=iproute2 [bridge]=iproute2 [tc]=iproute2
  [nft]=nftables
  [ping]=iputils-ping
  [tclsh]=tcl
  [iperf3]=iperf3
  [vde_plug]=vdeplug [vdens]=vdens [ethtool]=ethtool [nsenter]=util-linux
  [sysctl]=procps
  [dnsmasq]=dnsmasq-base [busybox]=busybox-static
  [qemu-system-x86_64]=qemu-system-x86
  [systemd-analyze]=systemd
  [dot]=graphviz
  [etcd]=etcd-server [etcdctl]=etcd-client
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages: $pkgs(run this script as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
# The test VM (a Debian kernel + busybox initramfs, cached in .cache/vm) of the qemu lab test.
if ! scripts/vm-assets.sh >/dev/null; then
  echo "setup: warning: scripts/vm-assets.sh failed; the qemu test will try again (and say why)" >&2
fi
echo "setup: ready"
