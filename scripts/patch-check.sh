#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make patch-check: is the series in build/patches/ (make patch) bisectable?
#
# Applies it with git am, patch by patch, to a fresh copy of the base, and
# after every patch builds the kernel with our config (scripts/
# kernel-config.sh), runs kernel-doc -none -Wall on our sources present at
# that point, and builds our selftests if the patch touched them.  One line
# per patch; the exit status is 1 if any patch does not apply or any of
# these fails.
#
# Everything is under build/patch-check/: tree/ (the hard-linked copy, made
# anew every run), kernel/ (the O= directory, kept between runs, so only the
# first build ever is cold), logs/ (one build log per patch), headers/ and
# selftests/.  Files the series touches get copies of their own with a
# fresh mtime before the first patch: the hard links would otherwise let
# git write into build/base, and an object built from last run's patched
# file would look newer than the base's version and not be rebuilt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PC=$BUILD/patch-check
TREE=$PC/tree
KOUT=$PC/kernel
LOGS=$PC/logs
PATCHES=$BUILD/patches
SELFTESTS=tools/testing/selftests/ksm

[[ -f $BUILD/base/.harness-unpacked ]] || die "no build/base (make base)"
series=()
for p in "$PATCHES"/0*.patch; do
	[[ -f $p && $p != */0000-cover-letter.patch ]] && series+=("$p")
done
((${#series[@]})) || die "no patches in $PATCHES (make patch)"

# One kernel build at a time on this machine; held for the whole check
# (so kbuild is called directly: build-kernel.sh would wait for us).
harness_lock "make patch-check: a kernel build at each of ${#series[@]} patches"
start_all=$SECONDS

log "fresh copy of build/base in ${TREE#$ROOT/}"
rm -rf "$TREE" "$LOGS" "$PC/headers" "$PC/selftests"
mkdir -p "$LOGS" "$PC/selftests"
cp -al "$BUILD/base" "$TREE"
rm -f "$TREE/.harness-unpacked"
# Every path a patch names, either side (renames, rewrites, deletions).
sed -n 's|^diff --git a/\([^ ]*\) b/\([^ ]*\)$|\1\n\2|p' "${series[@]}" |
	sort -u | while read -r f; do
		if [[ -f $TREE/$f ]]; then
			cp "$BUILD/base/$f" "$TREE/$f.tmp"
			mv -f "$TREE/$f.tmp" "$TREE/$f"
		fi
	done

# No automatic gc, and fd 9 (the harness lock) closed for git: see mkpatch.sh.
git_t() {
	git -C "$TREE" -c gc.auto=0 -c maintenance.auto=false \
		-c user.name=patch-check -c user.email=patch-check@localhost "$@" 9>&-
}
git_t init -q
git_t add -A -f .
git_t commit -q -m "base: $(base_version | sed 's/^base: //')"
git_t tag base
log "base committed ($((SECONDS - start_all)) s)"

"$ROOT/scripts/kernel-config.sh" "$TREE" "$KOUT"

ok=0 failed=0 headers_done=0
for p in "${series[@]}"; do
	name=$(basename "$p" .patch)
	blog=$LOGS/$name.log
	if ! git_t am -q "$p" > "$blog" 2>&1; then
		printf '%s FAILED: does not apply (git am), see %s\n' "$name" "${blog#$ROOT/}"
		git_t am --abort > /dev/null 2>&1 || true
		failed=$((failed + 1))
		break
	fi
	notes=() bad=0

	t=$SECONDS
	if make -C "$TREE" O="$KOUT" ARCH=$KARCH -j"$JOBS" bzImage >> "$blog" 2>&1; then
		notes+=("built OK in $((SECONDS - t)) s")
	else
		notes+=("build FAILED after $((SECONDS - t)) s")
		bad=1
		grep -E ': error:|undefined reference|\*\*\*' "$blog" | sed -n 1,5p |
			sed 's/^/    /' >&2
	fi

	# Our sources so far: the KSM files the series has changed.
	mapfile -t ours < <(git_t diff --name-only base HEAD -- \
		'mm/ksm*.c' include/linux/ksm.h)
	kd=""
	if ((${#ours[@]})); then
		kd=$(cd "$TREE" && perl scripts/kernel-doc -none -Wall "${ours[@]}" 2>&1 || true)
	fi
	if [[ -z $kd ]]; then
		notes+=("kernel-doc clean")
	else
		notes+=("kernel-doc: $(wc -l <<<"$kd") lines")
		echo "$kd" | sed -n 1,5p | sed 's/^/    /' >&2
		bad=1
	fi

	if grep -q "^diff --git a/$SELFTESTS/" "$p"; then
		t=$SECONDS
		if ((!headers_done)); then
			make -s -C "$TREE" O="$KOUT" ARCH=$KARCH headers_install \
				INSTALL_HDR_PATH="$PC/headers" >> "$blog" 2>&1
			headers_done=1
		fi
		if make -C "$TREE/$SELFTESTS" OUTPUT="$PC/selftests" \
			KHDR_INCLUDES="-isystem $PC/headers/include" -j"$JOBS" \
			>> "$blog" 2>&1; then
			notes+=("selftests built in $((SECONDS - t)) s")
		else
			notes+=("selftests build FAILED")
			bad=1
		fi
	fi

	(IFS=';'; printf '%s %s\n' "$name" "$(sed 's/;/; /g' <<<"${notes[*]}")")
	if ((bad)); then
		failed=$((failed + 1))
	else
		ok=$((ok + 1))
	fi
done

log "patch-check: $ok of ${#series[@]} patches OK, $failed failed;" \
    "$((SECONDS - start_all)) s in all; logs in ${LOGS#$ROOT/}"
((failed == 0 && ok == ${#series[@]}))
