#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the test programs that run inside the guest, all statically linked
# against the uapi headers exported from our tree (build/headers):
#
#   build/tests/mm/   ksm_tests, ksm_functional_tests: upstream's
#                     conformance tests, built from build/src unchanged
#   build/tests/ksm/  our selftests (tools/testing/selftests/ksm), every
#                     program of their TEST_GEN_PROGS
#   build/tests/tests.list   what the guest runs, one line per program:
#                     "<timeout-s> <attempts> <dir-in-guest> <test-id>";
#                     the guest runs "cd <dir> && ./<test-id>", again while
#                     it fails and attempts remain ("<n>b": n attempts on
#                     the baseline kernel, 1 on ours).  A line "! <group>
#                     <reason>" stands for a group that could not be built:
#                     the verdict counts it as a failure.
#
# Our selftests failing to build does not stop the run (the upstream tests
# still tell us something); it is reported as a failed group instead.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

src=$BUILD/src
hdr=$BUILD/headers
out=$BUILD/tests
logs=$BUILD/logs
mkdir -p "$out/mm" "$out/ksm" "$logs"
# Not while build/src changes under us (see harness_lock in lib.sh).
harness_lock "test build in $out"

# Common make arguments for a kselftest directory (lib.mk): out-of-tree
# OUTPUT, our exported headers, static binaries (the initramfs carries no
# shared libraries).
kselftest_make() {
	local dir=$1 output=$2
	shift 2
	make -C "$src/tools/testing/selftests/$dir" OUTPUT="$output" \
		KHDR_INCLUDES="-isystem $hdr/include" LDFLAGS=-static "$@"
}

# Fail if a binary is dynamically linked.
check_static() {
	local f
	for f in "$@"; do
		if readelf -d "$f" 2>/dev/null | grep NEEDED > /dev/null; then
			die "$f is dynamically linked (missing static library?)"
		fi
	done
}

log "installing uapi headers of ${src#$ROOT/} into ${hdr#$ROOT/}"
make -s -C "$src" O="$BUILD/kernel" ARCH=$KARCH headers_install \
	INSTALL_HDR_PATH="$hdr"

log "building upstream ksm_tests and ksm_functional_tests"
kselftest_make mm "$out/mm" -j"$JOBS" \
	"$out/mm/ksm_tests" "$out/mm/ksm_functional_tests"
check_static "$out/mm/ksm_tests" "$out/mm/ksm_functional_tests"

# The list of programs; the upstream part is fixed (see README.md).
# Timeouts: ksm_tests gives up by itself after 120 s (its -l default), so
# 180 s only catches a hang; on the baseline kernel under TCG each of these
# programs takes 0-15 s, ksm_functional_tests about 8 s.
# Attempts: 1, except where an upstream test races with ksmd on SMP.  An
# attempts field "3" holds for every kernel; "3b" means 3 on the baseline
# (upstream's KSM) and 1 on ours: our kernel gets a retry only where the
# race was shown on it too (HARNESS.md, "Retries").
#   -U       breaks COW on both pages, then waits for ONE full scan and
#            wants pages_shared 0; if ksmd's scan in progress had already
#            passed the pages, that scan ends without seeing the change.
#            On ours 6 of 40 runs failed; with a 2-scan wait (a local copy
#            of the test) 0 of 40: the race, so 3 attempts on both kernels.
#   -N -m 1  madvises its second page, waits 2 scans (merging needs 2);
#            fails 1 run in 40 on upstream's KSM (1 in 8 seen before).
#            On ours it failed 3 of 40, and still 2 of 40 with a 3-scan
#            wait, until smart_scan waited 7 passes (0 of 40).  On the
#            debug kernel it failed again (4 of 60, 3 of 60): ksmd runs a
#            pass in 30 us there with sleep_millisecs 0, so the first page
#            had been skipped by smart_scan for 7 passes by the time the
#            second came, and was let go by for a few more.  smart_scan now
#            looks at a page anyway when a new page of its checksum came in
#            this pass or the last (mm/ksm.c, ksm_new_twin_may_exist()):
#            60 of 60 on the debug kernel, 1 attempt on ours again.
# The verdict reports a pass on a later attempt as FLAKY.
list=$out/tests.list.tmp
cat > "$list" <<'LIST'
# timeout-s  attempts  dir-in-guest  test-id (the command, run as ./<test-id>)
180  1  /tests/mm  ksm_tests -M -p 10
180  3b /tests/mm  ksm_tests -U
180  1  /tests/mm  ksm_tests -Z -p 10 -z 0
180  1  /tests/mm  ksm_tests -Z -p 10 -z 1
180  3b /tests/mm  ksm_tests -N -m 1
180  1  /tests/mm  ksm_tests -N -m 0
180  1  /tests/mm  ksm_tests -P -s 100
180  1  /tests/mm  ksm_tests -H -s 100
180  1  /tests/mm  ksm_tests -D -s 100
180  1  /tests/mm  ksm_tests -C -p 100
300  1  /tests/mm  ksm_functional_tests
LIST

# Our selftests.  Their program list comes from their own Makefile.
ksm_dir=$src/tools/testing/selftests/ksm
ksm_log=$logs/selftests-ksm-build.log
if [[ ! -f $ksm_dir/Makefile ]]; then
	warn "our selftests: missing (no tools/testing/selftests/ksm/Makefile)"
	echo "! our-selftests missing: tools/testing/selftests/ksm/Makefile not found" >> "$list"
else
	progs=$(kselftest_make ksm "$out/ksm" -s \
		-f Makefile -f <(printf 'harness-print-progs:\n\t@echo $(TEST_GEN_PROGS)\n') \
		harness-print-progs 2>/dev/null) || progs=""
	progs=$(for p in $progs; do basename "$p"; done)
	log "building our selftests: ${progs//$'\n'/ } (log: ${ksm_log#$ROOT/})"
	if [[ -z $progs ]]; then
		warn "our selftests: no TEST_GEN_PROGS"
		echo "! our-selftests missing: no TEST_GEN_PROGS in their Makefile" >> "$list"
	elif ! kselftest_make ksm "$out/ksm" -j"$JOBS" > "$ksm_log" 2>&1; then
		tail -n 30 "$ksm_log" >&2
		warn "our selftests: build failed (see ${ksm_log#$ROOT/})"
		echo "! our-selftests build failed: see ${ksm_log#$ROOT/}" >> "$list"
	else
		for p in $progs; do
			if [[ -x $out/ksm/$p ]]; then
				check_static "$out/ksm/$p"
				# Their own harness timeouts are longer (a
				# defective engine is quadratic there).
				case $p in
				ksm_collide|ksm_waits|ksm_domains) t=900 ;;
				*) t=300 ;;
				esac
				echo "$t  1  /tests/ksm  $p" >> "$list"
			else
				echo "! $p missing: not built by their Makefile" >> "$list"
			fi
		done
	fi
fi
install_if_changed "$list" "$out/tests.list"
rm -f "$list"
log "tests ready: $(grep -c '^[0-9]' "$out/tests.list") programs," \
    "$(grep -c '^!' "$out/tests.list" || true) unbuildable groups"
