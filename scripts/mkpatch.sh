#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make patch: our work as a git format-patch series against the base tree,
# in build/patches/, each patch checked with checkpatch --strict.
#
# The series is built in a throw-away git repository (build/series/) whose
# first commit is the pristine base.  Each step below lays some of our files
# over it (or applies one of patches/) and commits with a real message, so
# the series reads: the engine with its interface, the changes to the rest
# of mm, the documentation, the selftests.  The tree is a hard-linked copy
# of build/base; every step replaces files (never writes into them), so the
# base is never touched.
#
# With VERIFY=1 the series is then applied with git am to a fresh copy of the
# base and the kernel is built after every patch (make patch-check).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SERIES=$BUILD/series
OUT=$BUILD/patches
AUTHOR=${PATCH_AUTHOR:-"KSM for Linux 6.12 <ksm@localhost>"}

[[ -f $BUILD/base/.harness-unpacked ]] || "$ROOT/scripts/unpack-base.sh"
# Hashing the whole tree is heavy: not beside a test boot.
harness_lock "make patch"

log "series tree: $SERIES (hard links into build/base)"
rm -rf "$SERIES" "$OUT"
cp -al "$BUILD/base" "$SERIES"
rm -f "$SERIES/.harness-unpacked"

git_s() {
	git -C "$SERIES" -c user.name="${AUTHOR% <*}" \
		-c user.email="$(sed 's/.*<\(.*\)>/\1/' <<<"$AUTHOR")" "$@"
}

git_s init -q
log "committing the base (takes a minute)"
git_s add -A -f .
git_s commit -q -m "base: $(base_version | sed 's/^base: //')"
git_s tag base

# Replace (not overwrite: the files are hard links into build/base).
lay() {
	local f
	for f in "$@"; do
		rm -f "$SERIES/$f"
		mkdir -p "$(dirname "$SERIES/$f")"
		cp "$ROOT/$f" "$SERIES/$f"
	done
}

commit() {
	local msg=$1
	git_s add -A -f .
	git_s commit -q -s -F - <<<"$msg"
}

# 1. The engine and its header replace upstream's.
lay include/linux/ksm.h mm/ksm.c
commit "mm/ksm: a new Kernel Samepage Merging engine

Replace mm/ksm.c and include/linux/ksm.h with a new implementation of
the same interface: every hook the rest of the kernel calls (madvise,
prctl, fork, exec, exit, rmap walks, migration, swap-in, memory
failure) and every file in /sys/kernel/mm/ksm/, plus the two files of
the original 2009 interface, kernel_pages_allocated and
max_kernel_pages.

The design keeps the two trees of the original KSM (a stable tree of
merged pages, an unstable tree rebuilt every pass), but orders both by
a 32-bit checksum of the content, with ties in insertion order.  A
key never changes once inserted, so the unstable tree stays a valid
search tree however its pages change, and a search compares contents
only for the candidates with an equal checksum: it takes no page
reference and no other mm's mmap_lock on its way down.  A page met for
the first time goes into the unstable tree at once, so that memory
just filled with duplicates merges in one pass.

A merge into an existing KSM page clears the PTE, flushes the TLB,
checks for pins, compares and installs the KSM page under one page
table lock: one flush per merged page.

Pages that keep failing to merge are skipped for growing numbers of
passes (smart_scan), the scan-time advisor sizes pages_to_scan, page
table holes are skipped a page middle directory at a time, and a KSM
page is kept dirty so that one process's MADV_FREE cannot let reclaim
drop it for all.  The DOC: Overview and DOC: Locking comments explain
the design, the lock order and the races."

# 2. Our changes to the rest of the tree, one commit each, with the
#    message the patch file carries.
for p in "$ROOT"/patches/*.patch; do
	[[ -e $p ]] || continue
	subject=$(sed -n 's/^Subject: \(\[PATCH[^]]*\] \)\{0,1\}//p' "$p" | head -n 1)
	body=$(awk 'f && /^---$/ {exit} f {print} /^Subject:/ {f=1}' "$p")
	(cd "$SERIES" && patch -p1 -s --no-backup-if-mismatch) < "$p"
	commit "$subject
$body"
done

# 3. Documentation.
lay Documentation/mm/ksm.rst
commit "Documentation/mm: KSM design

How the new KSM works inside: the two checksum-ordered trees, the data
structures and their sizes, the lock order and each race it handles.
The overview and the locking rules come from the DOC: comments in
mm/ksm.c, so that one text serves both readers."

lay Documentation/admin-guide/mm/ksm.rst
commit "Documentation/admin-guide/mm: KSM for administrators

Every knob and counter of /sys/kernel/mm/ksm/ with its default, range
and errors, the madvise and prctl interfaces, and the per-process
files."

# 4. Selftests.
mapfile -t tests < <(cd "$ROOT" && git ls-files tools/testing/selftests/ksm)
lay "${tests[@]}"
commit "selftests/ksm: behaviour tests for KSM

Programs in the kselftest harness that check, in a VM, what KSM does:
every knob written, read back and given junk; identical pages merged
across processes (decided from page frame numbers in pagemap), copy on
write, unmerging, fork and exit under scanning, zero pages, prctl,
per-process statistics, the sharing limit, NUMA, the 2009 files, and
more.  ksm_stress is a torture test, built but not run by default."

log "writing the series to $OUT"
git_s format-patch -q -B -M --cover-letter -o "$OUT" base..HEAD
cover=$(ls "$OUT"/0000-*.patch)
summary=$(sed -n '/^## Benchmark/,/^## /p' "$ROOT/README.md" | sed '$d')
python3 - "$cover" "$summary" <<'EOF'
import sys
path, bench = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace("*** SUBJECT HERE ***", "A new KSM engine for Linux 6.12")
blurb = """This series replaces mm/ksm.c with a new implementation of the same
interface, faster and with the races written down, and adds its
documentation and selftests.  Upstream's KSM selftests
(ksm_tests, ksm_functional_tests) pass unchanged.

""" + (bench + "\n" if bench.strip() else "")
text = text.replace("*** BLURB HERE ***", blurb)
open(path, "w").write(text)
EOF

log "checkpatch --strict on every patch"
total_e=0 total_w=0 total_c=0
for p in "$OUT"/0*.patch; do
	[[ $p == */0000-* ]] && continue
	res=$(cd "$BUILD/base" && perl scripts/checkpatch.pl --strict -q "$p" 2>&1 | grep '^total:' || true)
	e=$(sed -n 's/.*total: \([0-9]*\) errors.*/\1/p' <<<"$res")
	w=$(sed -n 's/.* \([0-9]*\) warnings.*/\1/p' <<<"$res")
	c=$(sed -n 's/.* \([0-9]*\) checks.*/\1/p' <<<"$res")
	printf '  %-62s %s errors, %s warnings, %s checks\n' "$(basename "$p")" \
		"${e:-0}" "${w:-0}" "${c:-0}"
	total_e=$((total_e + ${e:-0}))
	total_w=$((total_w + ${w:-0}))
	total_c=$((total_c + ${c:-0}))
done
log "checkpatch --strict: $total_e errors, $total_w warnings, $total_c checks in all"
log "series: $(ls "$OUT" | wc -l) files in $OUT"
