#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# "make matrix": our KSM compiled the way the kernel test robot compiles a
# patch, in configurations the harness never boots: every file that
# includes <linux/ksm.h> (and our own), with W=1, in
#
#   debian-amd64   Debian's own amd64 config (linux-config-6.12), KSM on
#   i386           32-bit x86 defconfig, KSM on (no NUMA there)
#   arm64          arm64 defconfig, KSM and ARM64_MTE on (gcc-aarch64-linux-gnu)
#   no-ksm         x86_64 defconfig without KSM (the header's stubs)
#   no-numa, no-sysfs, no-hotremove, no-swap
#                  x86_64 defconfig with KSM, without that option
#
# Pass: no error, and no warning in a file we own; a warning elsewhere
# (a caller of the header) only if upstream's KSM, built the same way from
# the same tree (build/base), has it too: that reference is built only for
# a configuration where ours warned.  Output in build/matrix/<config>-
# {ours,upstream}/ and their build.log; a summary line per configuration.
#
# MATRIX_ONLY="i386 arm64" runs only those.  Packages it needs beyond the
# harness's (linux-config-6.12, gcc-aarch64-linux-gnu) are installed if
# missing.  Slow: a kbuild "prepare" per configuration and tree.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

out=$BUILD/matrix
configs=(debian-amd64 i386 arm64 no-ksm no-numa no-sysfs no-hotremove no-swap)
[[ -z ${MATRIX_ONLY:-} ]] || read -r -a configs <<< "$MATRIX_ONLY"
debian_config=/usr/src/linux-config-6.12/config.amd64_none_amd64.xz
ours_files='mm/ksm\.c|mm/ksm-kunit\.h|include/linux/ksm\.h'

apt_install_missing linux-config-6.12 gcc-aarch64-linux-gnu
[[ -f $BUILD/base/.harness-unpacked && -d $BUILD/src ]] ||
	die "no build/base or build/src: run it through make (make matrix)"
harness_lock "make matrix"

# The objects, each with the option without which kbuild does not build
# it ("-": always); the files of the tree that include <linux/ksm.h>, on
# x86 and arm64.
objects=(
	mm/ksm.o:KSM mm/khugepaged.o:TRANSPARENT_HUGEPAGE mm/madvise.o:-
	mm/memory-failure.o:MEMORY_FAILURE mm/memory.o:- mm/mempolicy.o:NUMA
	mm/migrate.o:MIGRATION mm/mmap.o:- mm/mprotect.o:- mm/mremap.o:-
	mm/rmap.o:- mm/swapfile.o:SWAP fs/exec.o:- fs/proc/base.o:PROC_FS
	fs/proc/page.o:PROC_PAGE_MONITOR fs/proc/task_mmu.o:PROC_FS
	kernel/fork.o:- kernel/sys.o:-
)

# kmake TREE DIR ARGS...: kbuild of TREE into DIR for the configuration's
# architecture.
kmake() {
	local tree=$1 dir=$2
	shift 2
	env -u MAKEFLAGS -u MAKEOVERRIDES -u MFLAGS \
		make -C "$tree" O="$dir" ARCH="$arch" \
		${cross:+CROSS_COMPILE=$cross} -j"$JOBS" "$@"
}

# configure TREE DIR: the configuration $cfg in DIR.
configure() {
	local tree=$1 dir=$2 base=defconfig
	local -a opts=()
	case $cfg in
	debian-amd64)
		mkdir -p "$dir"
		xz -dc "$debian_config" > "$dir/.config"
		base=olddefconfig
		# Debian's signing keys are not in the tree.
		opts=(--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS ""
		      -d MODULE_SIG_ALL -e KSM) ;;
	i386) opts=(-e KSM) ;;
	arm64) opts=(-e KSM -e ARM64_MTE) ;;
	no-ksm) opts=(-d KSM) ;;
	no-numa) opts=(-e KSM -d NUMA) ;;
	no-sysfs) opts=(-e KSM -e EXPERT -d SYSFS) ;;
	no-hotremove) opts=(-e KSM -d MEMORY_HOTREMOVE) ;;
	no-swap) opts=(-e KSM -d SWAP) ;;
	*) die "unknown configuration $cfg" ;;
	esac
	kmake "$tree" "$dir" "$base" > /dev/null
	"$tree/scripts/config" --file "$dir/.config" "${opts[@]}"
	kmake "$tree" "$dir" olddefconfig > /dev/null
}

# build TREE DIR: the objects this configuration has, W=1; the warnings
# and errors in DIR/problems (file:message, without line numbers).
build() {
	local tree=$1 dir=$2 o sym
	local -a objs=()
	rm -rf "$dir"
	configure "$tree" "$dir"
	for o in "${objects[@]}"; do
		sym=${o#*:}
		if [[ $sym == - ]] || grep -qx "CONFIG_$sym=y" "$dir/.config"; then
			objs+=("${o%:*}")
		fi
	done
	# An object that does not compile is what we look for: keep going.
	kmake "$tree" "$dir" W=1 -k "${objs[@]}" > "$dir/build.log" 2>&1 || true
	sed -n 's/^\(\.\.\/\)*\([^: ]*\):[0-9]*:[0-9]*: \(warning\|error\): \(.*\)$/\2: \3: \4/p' \
		"$dir/build.log" | sed "s|^$tree/||" | sort -u > "$dir/problems"
	# "make" errors without a compiler message (a missing object rule).
	grep '\*\*\*' "$dir/build.log" | sed 's/^/make: /' >> "$dir/problems" || true
}

failed=0
summary=()
for cfg in "${configs[@]}"; do
	case $cfg in
	i386) arch=i386 cross= ;;
	arm64) arch=arm64 cross=aarch64-linux-gnu- ;;
	*) arch=x86_64 cross= ;;
	esac
	start=$SECONDS
	log "$cfg: ours"
	build "$BUILD/src" "$out/$cfg-ours"
	problems=$out/$cfg-ours/problems
	verdict=ok
	if grep -E "^($ours_files): " "$problems" > /dev/null ||
	   grep -E ": error: |^make: " "$problems" > /dev/null; then
		verdict=FAIL
	elif [[ -s $problems ]]; then
		log "$cfg: ours warned outside our files; upstream's as the reference"
		build "$BUILD/base" "$out/$cfg-upstream"
		# comm -23: lines only ours has
		if [[ -n $(comm -23 "$problems" "$out/$cfg-upstream/problems") ]]; then
			verdict=FAIL
		fi
	fi
	if [[ $verdict == FAIL ]]; then
		failed=1
		warn "$cfg: problems of ours:"
		if [[ -f $out/$cfg-upstream/problems ]]; then
			comm -23 "$problems" "$out/$cfg-upstream/problems" >&2
		else
			cat "$problems" >&2
		fi
	fi
	summary+=("$(printf '%-14s %-4s %4d s  %s' "$cfg" "$verdict" $((SECONDS - start)) \
		"$(wc -l < "$problems") warning/error line(s) in ours; build/matrix/$cfg-ours/build.log")")
done
echo
echo "=== make matrix"
printf '%s\n' "${summary[@]}"
exit $failed
