#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the guest's initramfs, build/initramfs.cpio.gz (cpio newc, gzip):
#
#   /init                 scripts/guest-init
#   /bin/busybox + links  busybox-static, one symlink per applet
#   /dev/console, /dev/null  (the kernel opens /dev/console for /init
#                         before devtmpfs is mounted)
#   /harness/tests.list   what "check" runs (from build-tests.sh)
#   /tests/mm/, /tests/ksm/  the test programs
#   /demo/ksm_demo        the demo of "make run"
#
# The archive is written by the kernel's usr/gen_init_cpio from a spec
# file: no root needed, no staging tree, owners and modes stated
# explicitly.  One initramfs serves every mode (check/run/shell) and both
# kernels; the mode comes from the kernel command line.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

tests=$BUILD/tests
demo=$BUILD/demo/ksm_demo
busybox=${BUSYBOX:-/bin/busybox}
gen=$BUILD/tools/gen_init_cpio
out=$BUILD/initramfs.cpio.gz
spec=$BUILD/initramfs.spec

[[ -f $tests/tests.list ]] || die "no $tests/tests.list (scripts/build-tests.sh)"
[[ -x $demo ]] || die "no $demo"
if readelf -d "$busybox" | grep NEEDED > /dev/null; then
	die "$busybox is not static (apt-get install busybox-static)"
fi

# gen_init_cpio is a single C file of the kernel tree; build our own copy so
# that no kernel build has to come first.
if [[ ! -x $gen || $BUILD/base/usr/gen_init_cpio.c -nt $gen ]]; then
	mkdir -p "$(dirname "$gen")"
	gcc -O2 -o "$gen" "$BUILD/base/usr/gen_init_cpio.c"
fi

{
	for d in /bin /sbin /usr /usr/bin /usr/sbin /dev /proc /sys /tmp \
		 /root /etc /harness /tests /tests/mm /tests/ksm /demo; do
		echo "dir $d 0755 0 0"
	done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "nod /dev/null 0666 0 0 c 1 3"
	echo "file /init $ROOT/scripts/guest-init 0755 0 0"
	busybox_cpio_spec "$busybox"
	echo "file /harness/tests.list $tests/tests.list 0644 0 0"
	# Every program the list names (upstream ones and ours).
	awk '$1 ~ /^[0-9]+$/ {print $3, $4}' "$tests/tests.list" | sort -u |
	while read -r dir prog; do
		echo "file $dir/$prog $tests/${dir#/tests/}/$prog 0755 0 0"
	done
	echo "file /demo/ksm_demo $demo 0755 0 0"
} > "$spec.tmp.$$"
mv -f "$spec.tmp.$$" "$spec"

"$gen" "$spec" | gzip -n -6 > "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
log "initramfs ready: ${out#$ROOT/} ($(du -h "$out" | cut -f1))"
