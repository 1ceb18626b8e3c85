#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the initramfs of the clients boot of "make check": the test
# initramfs (build/initramfs.cpio.gz) with a second archive appended that
# holds KSM's real clients and what they need:
#
#   /harness/tests.list        replaces the test list: the clients test only
#   /tests/clients/ksm_clients scripts/guest-clients (the test itself)
#   /tests/clients/ksm-frames  scripts/ksm-frames.c, static: the frames
#                              two QEMUs share (merge domains)
#   /nested/bzImage            NESTED_KERNEL, the kernel of the nested guests
#   /nested/initramfs.cpio.gz  their busybox initramfs (scripts/nested-init)
#   Debian's qemu-system-x86_64, its TCG accelerator module and the
#   firmware a -kernel boot of "-M pc -nodefaults" reads (SeaBIOS,
#   linuxboot_dma.bin, kvmvapic.bin)
#   Debian's /usr/sbin/ksmtuned and the programs it runs that busybox does
#   not provide compatibly: bash (its interpreter), procps's ps and pgrep
#   ("pgrep -d", "ps -p LIST -o rsz="; busybox has no pgrep and a ps
#   without -p), mawk as awk
#   all of them with their shared libraries (cpio_spec_with_libs, lib.sh);
#   Debian's binaries replace the busybox applets of the same path.
#
# usage: mk-clients-initramfs.sh NESTED_KERNEL OUT
set -euo pipefail
source "$(dirname "$0")/lib.sh"

nested_kernel=$1 out=$2
busybox=${BUSYBOX:-/bin/busybox}
work=$BUILD/clients
gen=$BUILD/tools/gen_init_cpio
qemu_moddir=/usr/lib/x86_64-linux-gnu/qemu
host_files=(
	/usr/bin/qemu-system-x86_64
	"$qemu_moddir/accel-tcg-x86_64.so"
	/usr/share/seabios/bios-256k.bin
	/usr/share/qemu/linuxboot_dma.bin
	/usr/share/qemu/kvmvapic.bin
	/usr/sbin/ksmtuned
	/bin/bash /bin/ps /usr/bin/pgrep /usr/bin/awk
)

[[ -f $nested_kernel ]] || die "no $nested_kernel"
for f in "${host_files[@]}"; do
	[[ -e $f ]] || die "no $f (apt-get install qemu-system-x86 ksmtuned; make deps)"
done
mkdir -p "$work"
gcc -static -O2 -Wall -Werror -o "$work/ksm-frames" "$ROOT/scripts/ksm-frames.c"

# The nested guests' initramfs: busybox and scripts/nested-init.
{
	for d in /bin /sbin /usr /usr/bin /usr/sbin /dev /proc /sys /tmp; do
		echo "dir $d 0755 0 0"
	done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "file /init $ROOT/scripts/nested-init 0755 0 0"
	busybox_cpio_spec "$busybox"
} > "$work/nested.spec"
"$gen" "$work/nested.spec" | gzip -n -9 > "$work/nested.cpio.gz"

# One program, as scripts/build-tests.sh lists them; the timeout covers
# the nested guests' boot, merging and ksmtuned's reactions with margin
# (see scripts/guest-clients for each deadline).
echo "900  1  /tests/clients  ksm_clients" > "$work/tests.list"

{
	cpio_spec_with_libs "${host_files[@]}"
	echo "dir /nested 0755 0 0"
	echo "file /nested/bzImage $nested_kernel 0644 0 0"
	echo "file /nested/initramfs.cpio.gz $work/nested.cpio.gz 0644 0 0"
	echo "dir /tests/clients 0755 0 0"
	echo "file /tests/clients/ksm_clients $ROOT/scripts/guest-clients 0755 0 0"
	echo "file /tests/clients/ksm-frames $work/ksm-frames 0755 0 0"
	echo "file /harness/tests.list $work/tests.list 0644 0 0"
} > "$work/initramfs.spec"

initramfs_append "$work/initramfs.spec" "$out"
log "clients initramfs ready: ${out#$ROOT/} ($(du -h "$out" | cut -f1));" \
    "nested kernel ${nested_kernel#$ROOT/}"
