#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# "make check": boot KERNEL_IMAGE once, run the whole test list in the
# guest; boot it again with the clients initramfs (scripts/guest-clients:
# QEMU and ksmtuned, in a 3 GiB VM); judge both console logs on the host
# (scripts/verdict.py), one verdict for both.
#
# usage: check.sh KERNEL_IMAGE NAME [FLAVOUR]
#   NAME     ours | baseline: names the log, build/logs/check-NAME-<time>.log
#            (build/logs/check-NAME.log links to the latest), and that of
#            the clients boot, check-NAME-clients-<time>.log
#   FLAVOUR  debug: the kernel is the debug flavour (configs/debug.config);
#            the log is check-NAME-debug-<time>.log, and every program's
#            timeout is multiplied by TIMEOUT_SCALE (default 4): KASAN,
#            lockdep and SLUB debugging make the kernel several times slower
#
# CLIENTS=0 leaves the clients boot out (CI's debug stage: the plain
# stage runs it, and on the debug kernel it takes 6-8 minutes).
#
# QEMU's timeout is the sum of the per-program timeouts (times attempts,
# times the scale) plus boot time, capped by QEMU_TIMEOUT (default 2400 s,
# debug 3600 s) so that a run that hangs in every program still ends well
# within CI's limit; the same for each boot.
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
# ONLY="prog ...": run (and judge) only these programs, no clients boot.
if [[ -n ${ONLY:-} ]]; then
	awk -v only=" $ONLY " '$1 !~ /^[0-9]+$/ || index(only, " " $4 " ")' \
		"$log_file.list" > "$log_file.list.tmp"
	mv "$log_file.list.tmp" "$log_file.list"
fi
# SKIP="prog ...": run (and judge) all but these programs.
if [[ -n ${SKIP:-} ]]; then
	log "not run, not judged (SKIP): $SKIP"
	awk -v skip=" $SKIP " '$1 !~ /^[0-9]+$/ || !index(skip, " " $4 " ")' \
		"$log_file.list" > "$log_file.list.tmp"
	mv "$log_file.list.tmp" "$log_file.list"
fi
list=$log_file.list
# The clients boot's list (one program) is fixed by mk-clients-initramfs.sh.
clients_initrd=$BUILD/initramfs-clients-${name%%-*}.cpio.gz
clients_log=${log_file/check-$name-/check-$name-clients-}
cp "$BUILD/clients/tests.list" "$clients_log.list"

# boot WHAT LOG INITRD MEM LINK: one boot running the list kept beside LOG.
boot() {
	local what=$1 log=$2 limit
	limit=$(awk -v k="$scale" '$1 ~ /^[0-9]+$/ {s += ($1 * k + 5) * $2}
		END {print s + 120 * k}' "$log.list")
	((limit < cap)) || limit=$cap
	INITRD=$3 QEMU_MEM=$4 \
	QEMU_APPEND="harness_tscale=$scale harness_kernel=${name%%-*}${ONLY:+ harness_only=${ONLY// /,}}${SKIP:+ harness_skip=${SKIP// /,}}" \
		harness_boot "$what on $name kernel: boot and tests" check "$kernel" \
		"$log" "$limit" "$5"
}

harness_lock "make check on $kernel"
boot check "$log_file" "$BUILD/initramfs.cpio.gz" 2G "check-$name.log"
check_rc=$qemu_rc
clients=()
if [[ ${CLIENTS:-1} == 0 ]]; then
	log "clients boot: not run (CLIENTS=0); its tests are not judged"
elif [[ -z ${ONLY:-} || " $ONLY " == *" ksm_clients "* ]]; then
	log "clients boot: QEMU and ksmtuned in the VM (scripts/guest-clients)"
	boot clients "$clients_log" "$clients_initrd" 3G "check-$name-clients.log"
	clients=(--boot clients "$clients_log" "$clients_log.list" "$qemu_rc")
fi
base_version
log "$flavour_line"
exec python3 "$ROOT/scripts/verdict.py" check "$log_file" "$list" \
	"$ROOT/tests/known-failures" --qemu-rc "$check_rc" "${clients[@]}"
