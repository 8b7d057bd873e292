#!/bin/busybox sh
# /init of the test guest (scripts/vm-assets.sh packs it into .cache/vm/guest-initramfs.cpio;
# test/vm/guest.ts boots it). The guest's root is this machine's own / (virtio-9p tag "root",
# read-only) under an overlay with a tmpfs upper layer; the distribution kernel's modules come
# from the cache (lsdn.modules=HOST_PATH, bound at /lib/modules/<kver> here, where the kernel's
# on-demand /sbin/modprobe looks, and in the new root). The 9p tag "out" (read-write, a
# directory of the harness) holds the job: /run/lsdn-guest/job.sh runs in the new root, in
# lsdn.cwd; its exit status goes to out/rc (lsdn.modprobe=M[,M...]: modules loaded first). Then the guest powers off, whatever happened.
# Console markers: LSDN-GUEST-UP (the job starts), LSDN-GUEST-RC <status>, LSDN-GUEST-FAIL <why>.
/bin/busybox --install -s /bin
/bin/busybox ln -s /bin/busybox /sbin/modprobe
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo /sbin/modprobe >/proc/sys/kernel/modprobe
fail() { echo "LSDN-GUEST-FAIL $*"; poweroff -f; sleep 10; }
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^lsdn\.$1=//p" | tail -1; }
for m in $(cat /boot-modules/order); do insmod "/boot-modules/$m.ko" || fail "insmod $m"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 root /mnt/lower || fail "mount 9p root"
mount -t tmpfs -o mode=0755 rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /mnt/root || fail "mount overlay"
kver=$(uname -r)
mods=$(arg modules)
[ -d "/mnt/lower$mods/$kver" ] || fail "no modules at $mods/$kver"
mkdir -p "/lib/modules/$kver"
mount --bind "/mnt/lower$mods/$kver" "/lib/modules/$kver"
R=/mnt/root
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs shm $R/dev/shm
# A checkout under /tmp or /run (a clean clone in /tmp) stays visible: held aside, then put
# back over the fresh tmpfs (its writes still go to the overlay).
cwd=$(arg cwd)
case "$cwd" in /tmp/*|/run/*) mkdir -p /mnt/keep && mount --bind "$R$cwd" /mnt/keep || fail "bind $cwd" ;; esac
mount -t tmpfs run $R/run
mount -t tmpfs tmp $R/tmp
case "$cwd" in /tmp/*|/run/*) mkdir -p "$R$cwd" && mount --move /mnt/keep "$R$cwd" || fail "move $cwd" ;; esac
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mkdir -p "$R/lib/modules/$kver" $R/run/lsdn-guest
mount --bind "/lib/modules/$kver" "$R/lib/modules/$kver"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out $R/run/lsdn-guest || fail "mount 9p out"
# modules a host of lsdn loads at boot (lsdn.modprobe=a,b: br_netfilter is never loaded on demand)
for m in $(arg modprobe | tr ',' ' '); do modprobe "$m" || fail "modprobe $m"; done
ip link set lo up
echo "LSDN-GUEST-UP $kver"
chroot $R /bin/sh -c "cd '${cwd:-/}' && exec /bin/sh /run/lsdn-guest/job.sh" </dev/console
rc=$?
echo "$rc" >$R/run/lsdn-guest/rc
sync
umount $R/run/lsdn-guest
echo "LSDN-GUEST-RC $rc"
poweroff -f
