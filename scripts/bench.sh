#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# "make bench": our KSM against upstream's (the baseline kernel: same tree,
# same config), side by side.  See bench/RESULTS.md.
#
#   1. builds bench/ksm_bench.c (static, against build/headers) and an
#      initramfs of its own, build/bench/initramfs.cpio.gz: busybox,
#      bench/bench-init as /init, bench/workloads, ksm_tests, ksm_bench;
#   2. boots the two kernels alternately, ours then baseline, BENCH_ROUNDS
#      times each (default 3), under QEMU TCG with -icount shift=0,sleep=off
#      (guest time counts guest instructions: the figures repeat on a busy
#      host); then, unless BENCH_REALTIME=0, once more each without
#      -icount, as a real-time check;
#   3. scripts/bench-report.py: medians, ratios, the table, raw figures in
#      build/bench/raw.csv, the chart build/bench/convergence.png.
#
# The boots run under the machine-wide harness lock (lib.sh), taken once
# for all of them: one heavy job at a time.
#
# Variables: BENCH_ROUNDS=N, BENCH_REALTIME=0|1, BENCH_ONLY="id ..." (run
# only these workloads of bench/workloads), QEMU_TIMEOUT (per boot, s),
# BENCH_SCALE=1 ("make bench-scale"): bench/workloads-scale in a 12 GiB VM
# (BENCH_MEM), results in build/bench-scale/, its own table,
# BENCH_KERNELS="ours" (or "baseline"): boot only these; the other's logs
# of an earlier run stay and go into the report (kernels.txt says so):
# upstream's figures do not move with our engine, and take three times as
# long at bench-scale,
# BENCH_PROFILE=1: round 1 runs under bench/qemu-prof.c, a TCG plugin that
# counts the kernel's instructions per function (the report prints the
# top functions of each kernel; with -icount the figures do not change).
# The whole script is one block, read before it runs: editing this file
# does not disturb a bench that is running.
{
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scale=${BENCH_SCALE:-0}
rounds=${BENCH_ROUNDS:-3}
realtime=${BENCH_REALTIME:-1}
only=${BENCH_ONLY:-}
profile=${BENCH_PROFILE:-0}
if ((scale)); then
	limit=${QEMU_TIMEOUT:-14400}
	out=$BUILD/bench-scale
	workloads=$ROOT/bench/workloads-scale
	mem=${BENCH_MEM:-12G}
else
	limit=${QEMU_TIMEOUT:-3600}
	out=$BUILD/bench
	workloads=$ROOT/bench/workloads
	mem=${BENCH_MEM:-2G}
fi
bin=$out/bin
logs=$out/logs
kernels=()
for k in ${BENCH_KERNELS:-ours baseline}; do
	case $k in
	ours) kernels+=(ours:$BUILD/kernel/bzImage) ;;
	baseline) kernels+=(baseline:$BUILD/baseline/bzImage) ;;
	*) die "BENCH_KERNELS: no kernel '$k' (ours, baseline)" ;;
	esac
done
((${#kernels[@]})) || die "BENCH_KERNELS is empty"

for k in "${kernels[@]}"; do
	[[ -f ${k#*:} ]] || die "no ${k#*:} (make kernel baseline)"
done
ksm_tests=$BUILD/tests/mm/ksm_tests
[[ -x $ksm_tests ]] || die "no $ksm_tests (make tests)"
busybox=${BUSYBOX:-/bin/busybox}

# gnuplot for the chart (Debian's gnuplot-nox), installed only if missing.
if ! command -v gnuplot > /dev/null; then
	log "installing gnuplot-nox"
	if ! { apt-get install -y -q gnuplot-nox > /dev/null ||
	       { apt-get update -q > /dev/null &&
		 apt-get install -y -q gnuplot-nox > /dev/null; }; }; then
		warn "gnuplot-nox could not be installed: no chart"
	fi
fi

mkdir -p "$bin" "$logs"
log "building bench/ksm_bench.c"
gcc -static -O2 -Wall -Werror -isystem "$BUILD/headers/include" \
	-o "$bin/ksm_bench" "$ROOT/bench/ksm_bench.c"

# The workload list, filtered by BENCH_ONLY.
awk -v only=" $only " '/^#/ || NF == 0 {next}
	only == "  " || index(only, " " $2 " ") {print}' \
	"$workloads" > "$out/workloads"
[[ -s $out/workloads ]] || die "no workload left (BENCH_ONLY=$only)"

rm -rf "$out/prof"
if ((profile)); then
	mkdir -p "$out/prof"
	gcc -shared -fPIC -O2 -Wall -Werror -o "$bin/libqemu-prof.so" \
		"$ROOT/bench/qemu-prof.c"
fi

gen=$bin/gen_init_cpio
if [[ ! -x $gen || $BUILD/base/usr/gen_init_cpio.c -nt $gen ]]; then
	gcc -O2 -o "$gen" "$BUILD/base/usr/gen_init_cpio.c"
fi
{
	for d in /bin /sbin /usr /usr/bin /usr/sbin /dev /proc /sys /tmp \
		 /bench; do
		echo "dir $d 0755 0 0"
	done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "nod /dev/null 0666 0 0 c 1 3"
	echo "file /init $ROOT/bench/bench-init 0755 0 0"
	echo "file /bin/busybox $busybox 0755 0 0"
	"$busybox" --list-full | while read -r applet; do
		[[ $applet == bin/busybox ]] && continue
		echo "slink /$applet /bin/busybox 0777 0 0"
	done
	echo "file /bench/workloads $out/workloads 0644 0 0"
	echo "file /bench/ksm_tests $ksm_tests 0755 0 0"
	echo "file /bench/ksm_bench $bin/ksm_bench 0755 0 0"
} > "$out/initramfs.spec"
"$gen" "$out/initramfs.spec" | gzip -n -6 > "$out/initramfs.cpio.gz"

# One boot: bench_boot NAME KERNEL ICOUNT(0|1) LOG [PROFILE-OUT]
bench_boot() {
	local name=$1 kernel=$2 icount=$3 log_file=$4 prof=${5:-} rc
	# -icount runs every vCPU in one host thread, in turn; with two, an
	# IPI waits for the other vCPU's turn: ksmd's TLB flushes
	# (smp_call_function_many_cond under ksm_pte_take) were seen waiting
	# 20 s of guest time, RCU stalls and all, which made the merge times
	# a measure of QEMU's scheduling.  So one vCPU under -icount; the
	# real-time check keeps two, like make check.
	local cpus=$((icount ? 1 : 2))
	local qemu=(qemu-system-x86_64 -machine q35 -cpu max -smp $cpus -m $mem
		    -nic none -no-reboot -display none -serial stdio
		    -monitor none -kernel "$kernel"
		    -initrd "$out/initramfs.cpio.gz"
		    -append "console=ttyS0 numa=fake=2 panic=-1")
	((icount)) && qemu+=(-icount shift=0,sleep=off)
	[[ -z $prof ]] || qemu+=(-plugin "$bin/libqemu-prof.so,out=$prof")
	(
		log "boot $name: ${kernel#$ROOT/}$( ((icount)) && echo ', -icount')"
		printf '%q ' "${qemu[@]}"; echo
		start=$SECONDS
		set +e
		timeout --foreground "$limit" "${qemu[@]}" < /dev/null \
			> "$log_file" 2>&1
		rc=$?
		set -e
		log "$name: QEMU exit $rc after $((SECONDS - start)) s;" \
		    "$(grep -c '^BENCH ' "$log_file" || true) figures"
	)
}

for k in "${kernels[@]}"; do
	rm -f "$logs"/*-"${k%%:*}"-*.log
done
harness_lock "make bench"
# What is measured: a copy of each image (and its System.map, for the
# profile) taken under the lock, so that a rebuild meanwhile cannot mix
# two versions into one table.
{
	echo "bench of $(date -u +%FT%TZ); tree: $(git -C "$ROOT" describe \
		--always --dirty 2>/dev/null || echo '?')"
	echo "mm/ksm.c of ours: sha256 $(sha256sum < "$BUILD/src/mm/ksm.c" |
		cut -c1-16) (build/src)"
} > "$out/kernels.txt"
booted=()
for k in "${kernels[@]}"; do
	cp "${k#*:}" "$out/${k%%:*}.bzImage"
	cp "$(dirname "${k#*:}")/System.map" "$out/${k%%:*}.System.map"
	echo "${k%%:*}: ${k#*:} $(sha256sum < "${k#*:}" | cut -c1-16)" \
		>> "$out/kernels.txt"
	booted+=("${k%%:*}:$out/${k%%:*}.bzImage")
done
for k in ours baseline; do
	[[ " ${booted[*]%%:*} " != *" $k "* ]] || continue
	old=$(ls -t "$logs"/*-"$k"-*.log 2> /dev/null | head -1 || true)
	[[ -z $old ]] || echo "$k: not booted; its logs are of an earlier" \
		"run ($(date -u -r "$old" +%FT%TZ))" >> "$out/kernels.txt"
done
kernels=("${booted[@]}")
cat "$out/kernels.txt"
start_all=$SECONDS
for ((r = 1; r <= rounds; r++)); do
	for k in "${kernels[@]}"; do
		bench_boot "icount round $r ${k%%:*}" "${k#*:}" 1 \
			"$logs/icount-${k%%:*}-$r.log" \
			"$( ((profile && r == 1)) && echo "$out/prof/${k%%:*}.txt")"
	done
done
if ((realtime)); then
	for k in "${kernels[@]}"; do
		bench_boot "real-time ${k%%:*}" "${k#*:}" 0 \
			"$logs/realtime-${k%%:*}-1.log"
	done
fi
log "all boots took $((SECONDS - start_all)) s; logs in ${logs#$ROOT/}/"
exec python3 "$ROOT/scripts/bench-report.py" "$out" $( ((scale)) && echo scale)
}
