#!/usr/bin/env bash
# Assembles the test VM of lsdn's qemu lab test from Debian packages, cached and idempotent:
#   .cache/vm/vmlinuz         the distribution kernel (linux-image-<abi>-amd64, fetched with
#                             `apt-get download`, never installed into the system)
#   .cache/vm/initramfs.cpio  busybox-static's /bin/busybox, the virtio-net modules of that
#                             kernel, and an /init that configures eth0 from the kernel command
#                             line, runs the requested pings and prints markers, then powers off.
#   .cache/vm/guest-initramfs.cpio, .cache/vm/lib/modules/<kver>
#                             the test guest of test/vm (test/vm/guest-init.sh as /init, the
#                             9p/overlay modules; all the package's modules with modules.dep)
# Prints the cache directory. Re-running does nothing when every file is current.
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
repo=$PWD
dir=${LSDN_VM_CACHE:-$PWD/.cache/vm}
mkdir -p "$dir"
cd "$dir"

version=5 # bump when /init or the module list changes (the lab's qemu clients need >= 5)
# the test guest's initramfs: bump when its module list changes (its /init is hashed in)
guest_version="1-$(sha256sum "$repo/test/vm/guest-init.sh" | cut -c1-12)"
lab_ok() { [ -s vmlinuz ] && [ -s initramfs.cpio ] && [ "$(cat stamp 2>/dev/null)" = "$version" ]; }
guest_ok() {
  [ -s guest-initramfs.cpio ] && [ "$(cat guest-stamp 2>/dev/null)" = "$guest_version" ] &&
    [ -s "lib/modules/$(cat kernel-version 2>/dev/null)/modules.dep" ]
}
if lab_ok && guest_ok; then
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
mv vmlinuz.new vmlinuz
echo "$kver" >kernel-version

# Copy module $1 of the kernel (decompressed) to $2/$1.ko; a module built into the kernel is
# skipped (status 2).
copy_module() {
  local f
  f=$(find "x/lib/modules/$kver" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" | head -1)
  if [ -z "$f" ]; then
    grep -q "/$1.ko" "x/lib/modules/$kver/modules.builtin" 2>/dev/null && return 2
    echo "vm-assets: module $1 is neither built in nor shipped by $deb" >&2
    exit 1
  fi
  case "$f" in
    *.xz) xz -dc "$f" >"$2/$1.ko" ;;
    *.zst) zstd -qdc "$f" >"$2/$1.ko" ;;
    *) cp "$f" "$2/$1.ko" ;;
  esac
}

if ! lab_ok; then
# virtio-net and what it needs, in load order; modules built into this kernel are skipped.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules,etc}
cp /bin/busybox "$root/bin/busybox"
mods=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net)
: >"$root/lib/modules/order"
for m in "${mods[@]}"; do
  copy_module "$m" "$root/lib/modules" || continue
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
mv initramfs.cpio.new initramfs.cpio
echo "$version" >stamp
rm -rf "$root"
fi

if ! guest_ok; then
  # The test guest (test/vm/guest.ts): this machine's own / over virtio-9p, read-only, as the
  # lower layer of an overlay (tmpfs upper), so the guest runs this machine's node, iproute2,
  # nft and checkout under the distribution kernel. Its initramfs has what mounts that root;
  # every other module comes from modules/<kver> (all of the package's, decompressed, with
  # busybox depmod's modules.dep: this machine has no kmod), loaded on demand by the kernel.
  rm -rf lib && mkdir -p lib/modules
  mv "x/lib/modules/$kver" "lib/modules/$kver"
  find "lib/modules/$kver" -name '*.ko.xz' -exec xz -d {} + 2>/dev/null || true
  find "lib/modules/$kver" -name '*.ko.zst' -exec zstd -q --rm -d {} + 2>/dev/null || true
  groot=$(mktemp -d)
  mkdir -p "$groot"/{bin,sbin,dev,proc,sys,mnt/lower,mnt/rw,mnt/root,mnt/out,boot-modules,lib/modules}
  cp /bin/busybox "$groot/bin/busybox"
  : >"$groot/boot-modules/order"
  for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay; do
    f=$(find "lib/modules/$kver" -name "$m.ko" | head -1)
    if [ -z "$f" ]; then
      grep -q "/$m.ko" "lib/modules/$kver/modules.builtin" 2>/dev/null && continue
      echo "vm-assets: module $m is neither built in nor shipped by $deb" >&2
      exit 1
    fi
    cp "$f" "$groot/boot-modules/$m.ko"
    echo "$m" >>"$groot/boot-modules/order"
  done
  /bin/busybox depmod -b "$PWD" "$kver"
  [ -s "lib/modules/$kver/modules.dep" ] || { echo "vm-assets: busybox depmod wrote no modules.dep" >&2; exit 1; }
  cp "$repo/test/vm/guest-init.sh" "$groot/init"
  chmod +x "$groot/init"
  (cd "$groot" && find . | sort | /bin/busybox cpio -o -H newc 2>/dev/null) >guest-initramfs.cpio.new
  mv guest-initramfs.cpio.new guest-initramfs.cpio
  rm -rf "$groot"
  echo "$guest_version" >guest-stamp
fi
rm -rf x
echo "$dir"
