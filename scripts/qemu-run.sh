#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot a kernel with our initramfs in QEMU (TCG: there is no KVM here) and
# keep a copy of the console.
#
# usage: qemu-run.sh MODE BZIMAGE LOG [TIMEOUT_S]
#   MODE     check | run | stress | shell (harness=MODE for the guest init)
#   LOG      console copy (not for the shell, which is not logged)
#
# Environment: INITRD, another initramfs (default build/initramfs.cpio.gz);
# QEMU_APPEND, more words for the kernel command line; QEMU_MEM, the guest's
# RAM (default 2G).
#
# The guest powers off with "reboot -f"; -no-reboot turns that into a QEMU
# exit.  QEMU always runs under timeout(1), so a hung guest cannot hang the
# host; the exit status is timeout's (124 when it fired).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mode=$1 kernel=$2 log=$3 limit=${4:-600}
initrd=${INITRD:-$BUILD/initramfs.cpio.gz}
[[ -f $kernel ]] || die "no kernel image $kernel"
[[ -f $initrd ]] || die "no initramfs $initrd"

# console=ttyS0: everything on the serial port.  numa=fake=2: two nodes for
# ksm_tests -N.  No panic_on_oops: we want to see a splat and carry on;
# panic=-1 reboots (= QEMU exits) at once should the kernel panic anyway.
# The demo's console shows warnings and worse only (loglevel=5: splats are
# still seen), the tests' console shows everything.
append="console=ttyS0 numa=fake=2 panic=-1 harness=$mode"
[[ $mode != run ]] || append+=" loglevel=5"
[[ -z ${QEMU_APPEND:-} ]] || append+=" $QEMU_APPEND"
# -nic none: no network, and no iPXE option ROM to wait for.
qemu=(qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m "${QEMU_MEM:-2G}" -nic none
      -no-reboot -kernel "$kernel" -initrd "$initrd" -append "$append")
if [[ $mode == shell ]]; then
	# Interactive: the terminal in raw mode, QEMU's monitor on Ctrl-A c.
	qemu+=(-nographic)
else
	# Serial console on stdio and nothing else: unlike -nographic this
	# keeps the firmware from clearing the terminal, and reads no input.
	qemu+=(-display none -serial stdio -monitor none)
fi

log "boot: ${kernel#$ROOT/} (QEMU TCG, timeout ${limit}s)"
printf '%q ' "${qemu[@]}"; echo

if [[ $mode == shell ]]; then
	exec timeout --foreground "$limit" "${qemu[@]}"
fi

mkdir -p "$(dirname "$log")"
set +e
# No stdin: nothing to type into a test run.
timeout --foreground "$limit" "${qemu[@]}" < /dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
((rc != 124)) || warn "QEMU timed out after ${limit}s"
exit "$rc"
