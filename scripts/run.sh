#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# "make run": boot KERNEL_IMAGE and let /demo/ksm_demo show KSM at work
# (see demo/ksm_demo.c).  Exit status 0 only if the demo succeeded and the
# kernel printed no splat.
#
# usage: run.sh KERNEL_IMAGE NAME [DEMO]
#   DEMO  vms (default), many or slow: which settings the guest runs the
#         demo with (scripts/guest-init, harness_demo=)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kernel=$1 name=$2 demo=${3:-vms}
case $demo in
vms|many|slow) ;;
*) die "unknown demo $demo (vms, many or slow)" ;;
esac
log_file=$BUILD/logs/run-$name.log

base_version
harness_lock "make run on $kernel"
set +e
QEMU_APPEND="harness_demo=$demo" \
	"$ROOT/scripts/qemu-run.sh" run "$kernel" "$log_file" "${QEMU_TIMEOUT:-600}"
qemu_rc=$?
set -e
echo
exec python3 "$ROOT/scripts/verdict.py" run "$log_file" --qemu-rc "$qemu_rc"
