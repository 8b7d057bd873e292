#!/usr/bin/env bash
# Assembles the test VM of lsdn's qemu lab test from Debian packages, cached and idempotent:
#   .cache/vm/vmlinuz         the distribution kernel (linux-image-<abi>-amd64, fetched with
#                             `apt-get download`, never installed into the system)
#   .cache/vm/initramfs.cpio  busybox-static's /bin/busybox, the virtio-net modules of that
#                             kernel, and an /init that configures eth0 from the kernel command
#                             line, runs the requested pings and prints markers, then powers off.
# Prints the cache directory. Re-running does nothing when both files are current.
#
# Kernel command line understood by /init (all optional):
#   lsdn.ip=ADDR/LEN       address of eth0          lsdn.ping=IP[,IP...]    must answer
#   lsdn.noping=IP[,...]   pinged too (the test expects no answer)
#   lsdn.wait=SECONDS      keep running (answering pings) this long after the pings
#   lsdn.shell=1           then run the console's lines as shell commands (the lab's qemu
#                          clients: their pings come in that way), until the console closes
# Markers (one line each): LSDN-MTU <eth0 mtu>, LSDN-PING-OK IP, LSDN-PING-FAIL IP, LSDN-DONE,
# LSDN-READY (lsdn.shell: reading commands now).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${LSDN_VM_CACHE:-$PWD/.cache/vm}
mkdir -p "$dir"
cd "$dir"

version=5 # bump when /init or the module list changes
if [ -s vmlinuz ] && [ -s initramfs.cpio ] && [ "$(cat stamp 2>/dev/null)" = "$version" ]; then
  echo "$dir"
  exit 0
fi

for t in dpkg-deb apt-get; do command -v "$t" >/dev/null || { echo "vm-assets: $t is missing" >&2; exit 1; }; done
[ -x /bin/busybox ] || { echo "vm-assets: /bin/busybox is missing (apt-get install busybox-static)" >&2; exit 1; }
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
  { echo "vm-assets: busybox-static is not installed (the guest needs a static busybox)" >&2; exit 1; }

# The kernel: whatever linux-image-amd64 (the metapackage) depends on.
if ! ls linux-image-*.deb >/dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || { echo "vm-assets: cannot resolve linux-image-amd64" >&2; exit 1; }
  apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true
fi
deb=$(ls linux-image-*.deb | head -1)
rm -rf x && mkdir x && dpkg-deb -x "$deb" x
kver=$(ls x/lib/modules | head -1)
cp "x/boot/vmlinuz-$kver" vmlinuz.new

# virtio-net and what it needs, in load order; modules built into this kernel are skipped.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules,etc}
cp /bin/busybox "$root/bin/busybox"
mods=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net)
: >"$root/lib/modules/order"
for m in "${mods[@]}"; do
  f=$(find "x/lib/modules/$kver" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
  if [ -z "$f" ]; then
    grep -q "/$m.ko" "x/lib/modules/$kver/modules.builtin" 2>/dev/null && continue
    echo "vm-assets: module $m is neither built in nor shipped by $deb" >&2
    exit 1
  fi
  case "$f" in
    *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
  echo "$m" >>"$root/lib/modules/order"
done

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
# load order without modules.dep: retry the failed ones while any pass makes progress
todo=$(cat /lib/modules/order)
while [ -n "$todo" ]; do
  left=""
  for m in $todo; do insmod /lib/modules/$m.ko 2>/dev/null || left="$left $m"; done
  [ "$(echo $left)" = "$(echo $todo)" ] && { echo "LSDN-INSMOD-FAIL$left"; break; }
  todo=$left
done
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^lsdn\.$1=//p" | tail -1; }
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up
ip link set eth0 up
echo "LSDN-MTU $(cat /sys/class/net/eth0/mtu)"
echo "LSDN-MAC $(cat /sys/class/net/eth0/address)"
[ -n "$(arg ip)" ] && ip addr add "$(arg ip)" dev eth0
for t in $(arg ping | tr ',' ' '); do
  # the first answer may take a moment (ARP, the host's bridge); up to 10 tries.
  if ping -c 1 -w 10 -W 1 "$t" >/dev/null 2>&1; then echo "LSDN-PING-OK $t"; else echo "LSDN-PING-FAIL $t"; fi
done
for t in $(arg noping | tr ',' ' '); do
  if ping -c 2 -w 2 -W 1 "$t" >/dev/null 2>&1; then echo "LSDN-PING-OK $t"; else echo "LSDN-PING-FAIL $t"; fi
done
echo "LSDN-DONE"
if [ -n "$(arg shell)" ]; then
  stty -echo 2>/dev/null
  echo "LSDN-READY"
  while read -r line; do eval "$line"; done
fi
w=$(arg wait); [ -n "$w" ] && sleep "$w"
poweroff -f
EOF
chmod +x "$root/init"
# busybox's cpio: no extra package (Debian's cpio is not always installed)
(cd "$root" && find . | sort | /bin/busybox cpio -o -H newc 2>/dev/null) >initramfs.cpio.new
mv vmlinuz.new vmlinuz
mv initramfs.cpio.new initramfs.cpio
echo "$kver" >kernel-version
echo "$version" >stamp
rm -rf x
echo "$dir"
