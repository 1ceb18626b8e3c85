#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# "make stress": boot the debug kernel with build/initramfs-stress.cpio.gz
# and let scripts/guest-stress run ksm_stress, stress-ng and trinity for
# STRESS_SECS in all (default 120); the host judges the console log
# (scripts/verdict.py stress).
#
# usage: stress.sh KERNEL_IMAGE NAME
#   NAME  ours | baseline: log build/logs/stress-NAME-<time>.log
#         (build/logs/stress-NAME.log links to the latest)
#
# STRESS_SKIP_KSM_STRESS=1 leaves ksm_stress out (reported as a skip).
# QEMU's timeout: QEMU_TIMEOUT, default STRESS_SECS * 2 + 900 s (boot,
# ksm_stress's verification and teardown, unmerging at the end, all on a
# debug kernel under TCG).
# The last line printed is the verdict's "N passed, N failed, N skipped".
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kernel=$1 name=$2
secs=${STRESS_SECS:-120}
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "STRESS_SECS must be a positive integer"
limit=${QEMU_TIMEOUT:-$((secs * 2 + 900))}
flavour_line="kernel: $name KSM, debug flavour (configs/debug.config), ${kernel#$ROOT/}"

base_version
log "$flavour_line; stress for ${secs}s"
mkdir -p "$BUILD/logs"
log_file=$BUILD/logs/stress-$name-$(date +%Y%m%d-%H%M%S).log
harness_lock "make stress on $kernel"
set +e
state=$(cat "$BUILD/stress/ksm_stress.state")
append="harness_stress_secs=$secs"
# STRESS_SKIP_KSM_STRESS=1: the real stressors alone (e.g. while ksm_stress
# is known to bring the kernel down)
if [[ ${STRESS_SKIP_KSM_STRESS:-0} == 1 ]]; then
	append+=" harness_stress_skip_ksm_stress"
	state=skipped
fi
set -e
INITRD=$BUILD/initramfs-stress.cpio.gz QEMU_APPEND="$append" \
	harness_boot "stress on $name kernel: boot and stress" stress "$kernel" \
	"$log_file" "$limit" "stress-$name.log"
base_version
log "$flavour_line"
exec python3 "$ROOT/scripts/verdict.py" stress "$log_file" \
	--ksm-stress "$state" --qemu-rc "$qemu_rc"
