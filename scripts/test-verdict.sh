#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Self-test of scripts/verdict.py on made-up console logs: every way a run
# can fail must fail, skips must not pass, known failures must be excused
# only where they may be.  No VM needed; "make harness-test" runs it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# judge NAME "SUMMARY" EXIT_STATUS [patterns...] -- VERDICT.PY ARGS...:
# run verdict.py; its last line must be SUMMARY, its status EXIT_STATUS,
# and every pattern must appear in what it printed.
judge() {
	local name=$1 summary=$2 status=$3 out rc ok=1
	local -a pats=()
	shift 3
	while (($#)) && [[ $1 != -- ]]; do pats+=("$1"); shift; done
	shift
	set +e
	out=$(python3 "$ROOT/scripts/verdict.py" "$@")
	rc=$?
	set -e
	[[ $(tail -n 1 <<< "$out") == "$summary" ]] || ok=0
	[[ $rc == "$status" ]] || ok=0
	for pat in "${pats[@]}"; do
		grep -qF -- "$pat" <<< "$out" || ok=0
	done
	if ((ok)); then
		echo "ok   $name"
	else
		echo "FAIL $name (rc=$rc)"
		sed 's/^/     | /' <<< "$out"
		failures=$((failures + 1))
	fi
}

# expect NAME "SUMMARY" EXIT_STATUS [grep patterns that must appear...]
# BOOT2=<qemu rc>: a second boot (the clients boot), log2 and list2
expect() {
	judge "$@" -- check "$tmp/log" "$tmp/list" "$tmp/known" \
		--qemu-rc "${QEMU_RC:-0}" \
		${BOOT2:+--boot clients "$tmp/log2" "$tmp/list2" "$BOOT2"}
}

# A console log from printf lines, with the serial line's \r\n.
console() { printf '%s\r\n' "$@" > "$tmp/log"; }

cat > "$tmp/list" <<'EOF'
# timeout attempts dir id
180 1 /tests/mm ksm_tests -M -p 10
300 1 /tests/mm multi
EOF
: > "$tmp/known"

good=("[    0.100000] Linux version 6.12.117"
      "### BEGIN ksm_tests -M -p 10" "TAP version 13" "1..1" "ok 1 KSM merging"
      "### END ksm_tests -M -p 10 rc=0 time=1s"
      "### BEGIN multi" "1..2" "# [RUN] test_a" "ok 1 first"
      "# [RUN] test_b" "ok 2 second" "### END multi rc=0 time=2s"
      "### HARNESS DONE")

console "${good[@]}"
expect "all pass" "3 passed, 0 failed, 0 skipped" 0 "PASS ksm_tests -M -p 10" \
	"PASS multi:first" "PASS multi:second" "0 xfailed" "0 flaky"

QEMU_RC=124 expect "host timeout fails" "3 passed, 1 failed, 0 skipped" 1 \
	"FAIL host: QEMU timed out"

console "${good[@]:0:13}"
expect "no completion marker fails" "3 passed, 1 failed, 0 skipped" 1 \
	"FAIL guest: harness did not finish"

console "${good[@]:0:11}" "### HARNESS DONE"
expect "missing END fails" "1 passed, 1 failed, 0 skipped" 1 \
	"FAIL multi  -- no END marker"

console "${good[@]:0:9}" "### TIMEOUT multi after 300s" \
	"### END multi rc=143 time=300s" "### HARNESS DONE"
expect "timeout fails" "1 passed, 1 failed, 0 skipped" 1 "FAIL multi  -- timed out"

console "${good[@]:0:11}" "### END multi rc=0 time=2s" "### HARNESS DONE"
expect "incomplete plan fails" "2 passed, 1 failed, 0 skipped" 1 \
	"no result for [2]"

console "${good[@]:0:6}" "### BEGIN multi" "1..2" "ok 1 first" \
	"ok 2 # SKIP no feature" "### END multi rc=0 time=2s" "### HARNESS DONE"
expect "skip is not a pass" "2 passed, 0 failed, 1 skipped" 0 "SKIP multi:no feature"

console "${good[@]:0:2}" "1..1" "ok 1 KSM merging" \
	"### END ksm_tests -M -p 10 rc=1 time=1s" "${good[@]:6}"
expect "bad exit status fails" "2 passed, 1 failed, 0 skipped" 1 \
	"FAIL ksm_tests -M -p 10"

console "${good[@]:0:12}" "[   12.345678] WARNING: CPU: 1 PID: 42 at mm/ksm.c:1 x" \
	"${good[@]:12}"
expect "splat fails even when all pass" "3 passed, 1 failed, 0 skipped" 1 \
	"FAIL kernel splat during multi"

console "${good[@]:0:10}" "# [RUN] test_b" \
	"not ok 2 'x' updated# [RUN] test_c" "### END multi rc=1 time=2s" "### HARNESS DONE"
echo "multi:test_b not written yet" > "$tmp/known"
expect "known failure by [RUN] name is xfail" "2 passed, 0 failed, 0 skipped" 0 \
	"XFAIL multi:'x' updated (not written yet)" "1 xfailed"

console "${good[@]}"
echo "ksm_tests -M -p 10 not written yet" > "$tmp/known"
expect "known failure that passes is xpass" "3 passed, 0 failed, 0 skipped" 0 \
	"XPASS ksm_tests -M -p 10" "remove it from tests/known-failures"

echo "multi:first listed" > "$tmp/known"
console "${good[@]:0:12}" "[   12.345678] BUG: unable to handle page fault" "${good[@]:12}"
expect "splats are never excused" "3 passed, 1 failed, 0 skipped" 1 "FAIL kernel splat"
: > "$tmp/known"

console "${good[@]:0:3}" "1..1" "not ok 1 KSM merging" \
	"### END ksm_tests -M -p 10 rc=1 time=1s" "### RETRY ksm_tests -M -p 10 attempt 2 of 3" \
	"${good[@]:1}"
expect "pass on retry is flaky, counted once" "3 passed, 0 failed, 0 skipped" 0 \
	"FLAKY ksm_tests -M -p 10: passed on attempt 2" \
	"1 flaky (passed only on a retry): ksm_tests -M -p 10"

console "${good[@]:0:6}" "### BEGIN multi" "1..2" "ok 1 first" "ok 2 second" \
	"# Totals: pass:2" "ok 2 second" "### END multi rc=0 time=2s" "### HARNESS DONE"
expect "duplicate numbers from a forked child count once" \
	"3 passed, 0 failed, 0 skipped" 0

console "${good[@]:0:1}" "[    0.469144] rcu: 	RCU lockdep checking is enabled." \
	"[    0.162325] kasan: KernelAddressSanitizer initialized" "${good[@]:1}"
expect "debug kernel boot banners are no splat" "3 passed, 0 failed, 0 skipped" 0
console "${good[@]:0:12}" "[  12.345678] DEBUG_LOCKS_WARN_ON(1)" "${good[@]:12}"
expect "a lockdep report fails" "3 passed, 1 failed, 0 skipped" 1 "FAIL kernel splat"

printf '%s\n' "! our-selftests missing: no Makefile" >> "$tmp/list"
console "${good[@]}"
expect "an unbuildable group fails" "3 passed, 1 failed, 0 skipped" 1 \
	"FAIL our-selftests"

# The clients boot of make check: judged like the first, one summary.
printf '%s\n' "180 1 /tests/mm ksm_tests -M -p 10" "300 1 /tests/mm multi" > "$tmp/list"
echo "900 1 /tests/clients ksm_clients" > "$tmp/list2"
clients=("### BEGIN ksm_clients" "1..2" "ok 1 ksmtuned stops KSM"
	 "ok 2 KSM merges the guests' RAM" "### END ksm_clients rc=0 time=51s"
	 "### HARNESS DONE")
console "${good[@]}"
printf '%s\r\n' "${clients[@]}" > "$tmp/log2"
BOOT2=0 expect "second boot adds its tests" "5 passed, 0 failed, 0 skipped" 0 \
	"PASS ksm_clients:KSM merges the guests' RAM"
BOOT2=124 expect "second boot's QEMU timeout fails" "5 passed, 1 failed, 0 skipped" 1 \
	"FAIL host: QEMU timed out (clients boot)"
printf '%s\r\n' "${clients[@]:0:3}" "not ok 2 KSM merges the guests' RAM" \
	"${clients[@]:4}" > "$tmp/log2"
BOOT2=0 expect "second boot's not ok fails" "4 passed, 1 failed, 0 skipped" 1 \
	"FAIL ksm_clients:KSM merges the guests' RAM"
printf '%s\r\n' "${clients[@]:0:3}" "# nested1: [    9.000000] BUG: unable to handle page fault" \
	> "$tmp/log2"
BOOT2=0 expect "second boot dying fails" "3 passed, 3 failed, 0 skipped" 1 \
	"FAIL guest: harness did not finish (clients boot)" \
	"FAIL kernel splat during ksm_clients (clients boot)"
: > "$tmp/log2"
BOOT2=0 expect "second boot empty fails" "3 passed, 2 failed, 0 skipped" 1 \
	"FAIL ksm_clients  -- never started"

# make stress: verdict.py stress.
# expect_stress NAME KSM_STRESS_STATE "SUMMARY" EXIT_STATUS [patterns...]
expect_stress() {
	local name=$1 state=$2
	shift 2
	judge "stress: $name" "$@" -- stress "$tmp/log" --ksm-stress "$state" \
		--qemu-rc "${QEMU_RC:-0}"
}

sgood=("[    0.100000] Linux version 6.12.117" "### HARNESS START stress"
       "### BEGIN ksm_stress" "1..2" "ok 1 no mismatch" "ok 2 counters back"
       "### END ksm_stress rc=0 time=40s"
       "### BEGIN stress-ng" "stress-ng: info: passed: 10: vm (2)"
       "### KSM after run=1 full_scans=3 pages_shared=10 pages_sharing=90"
       "### END stress-ng rc=0 time=41s"
       "### BEGIN trinity" "### END trinity rc=124 time=40s"
       "### KSM AFTER run=2 pages_shared=0 pages_sharing=0" "### HARNESS DONE")
console "${sgood[@]}"
expect_stress "all pass" present "5 passed, 0 failed, 0 skipped" 0 \
	"PASS ksm_stress:no mismatch" "PASS trinity ran to its end" \
	"INFO trinity: exit status 124" "PASS counters zero after run=2"
expect_stress "ksm_stress absent is a skip" absent "3 passed, 0 failed, 1 skipped" 0 \
	"SKIP ksm_stress"
expect_stress "ksm_stress broken fails" "broken not built" \
	"3 passed, 1 failed, 0 skipped" 1 "FAIL ksm_stress"
console "${sgood[@]:0:5}" "not ok 2 counters back" "${sgood[@]:6}"
expect_stress "ksm_stress not ok fails" present "4 passed, 1 failed, 0 skipped" 1 \
	"FAIL ksm_stress:counters back"
console "${sgood[@]:0:12}" "[  99.000000] Kernel panic - not syncing: x"
expect_stress "kernel died in trinity fails" present "3 passed, 4 failed, 0 skipped" 1 \
	"FAIL trinity" "FAIL kernel splat during trinity" "FAIL guest: harness did not finish"
console "${sgood[@]:0:13}" "### KSM AFTER run=2 pages_shared=0 pages_sharing=7" \
	"### HARNESS DONE"
expect_stress "merged pages after run=2 fail" present "4 passed, 1 failed, 0 skipped" 1 \
	"FAIL counters zero after run=2"
console "${sgood[@]:0:8}" "[  50.000000] BUG: KASAN: use-after-free in x" "${sgood[@]:8}"
expect_stress "a splat fails" present "5 passed, 1 failed, 0 skipped" 1 \
	"FAIL kernel splat during stress-ng"

if ((failures)); then
	echo "verdict self-test: $failures case(s) failed"
	exit 1
fi
echo "verdict self-test: all cases passed"
