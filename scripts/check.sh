#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# "make check": boot KERNEL_IMAGE once, run the whole test list in the
# guest, and judge the console log on the host (scripts/verdict.py).
#
# usage: check.sh KERNEL_IMAGE NAME [FLAVOUR]
#   NAME     ours | baseline: names the log, build/logs/check-NAME-<time>.log
#            (build/logs/check-NAME.log links to the latest)
#   FLAVOUR  debug: the kernel is the debug flavour (configs/debug.config);
#            the log is check-NAME-debug-<time>.log, and every program's
#            timeout is multiplied by TIMEOUT_SCALE (default 4): KASAN,
#            lockdep and SLUB debugging make the kernel several times slower
#
# QEMU's timeout is the sum of the per-program timeouts (times attempts,
# times the scale) plus boot time, capped by QEMU_TIMEOUT (default 2400 s,
# debug 3600 s) so that a run that hangs in every program still ends well
# within CI's limit.
# The last line printed is the verdict's "N passed, N failed, N skipped".
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kernel=$1 name=$2 flavour=${3:-}
if [[ $flavour == debug ]]; then
	scale=${TIMEOUT_SCALE:-4}
	cap=${QEMU_TIMEOUT:-3600}
	what="debug flavour (configs/debug.config)"
	name+=-debug
else
	[[ -z $flavour ]] || die "unknown flavour $flavour"
	scale=${TIMEOUT_SCALE:-1}
	cap=${QEMU_TIMEOUT:-2400}
	what="plain flavour (no debug options)"
fi
[[ $scale =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT_SCALE must be a positive integer"
flavour_line="kernel: ${name%%-*} KSM, $what, ${kernel#$ROOT/}; test timeouts x$scale"

base_version
log "$flavour_line"
log_file=$BUILD/logs/check-$name-$(date +%Y%m%d-%H%M%S).log
# The list the guest will run, taken from the initramfs and kept beside the
# log: the verdict judges against it even if the tests are rebuilt meanwhile.
mkdir -p "$BUILD/logs"
gzip -dc "$BUILD/initramfs.cpio.gz" |
	cpio -i --quiet --to-stdout harness/tests.list > "$log_file.list"
list=$log_file.list
sum=$(awk -v k="$scale" '$1 ~ /^[0-9]+$/ {s += ($1 * k + 5) * $2}
	END {print s + 120 * k}' "$list")
limit=$((sum < cap ? sum : cap))
harness_lock "make check on $kernel"
start=$SECONDS
set +e
QEMU_APPEND="harness_tscale=$scale harness_kernel=${name%%-*}" \
	"$ROOT/scripts/qemu-run.sh" check "$kernel" "$log_file" "$limit"
qemu_rc=$?
set -e
ln -sfn "$(basename "$log_file")" "$BUILD/logs/check-$name.log"

echo
log "check on $name kernel: boot and tests took $((SECONDS - start)) s;" \
    "console log: ${log_file#$ROOT/}"
base_version
log "$flavour_line"
exec python3 "$ROOT/scripts/verdict.py" check "$log_file" "$list" \
	"$ROOT/tests/known-failures" --qemu-rc "$qemu_rc"
