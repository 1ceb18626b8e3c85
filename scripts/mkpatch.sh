#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make patch: our work as a git format-patch series against the base tree,
# in build/patches/, each patch checked with checkpatch --strict.
#
# The series is made of a commit of this repository (PATCH_REV, default
# HEAD): uncommitted changes are not in it.  It is built in a throw-away git
# repository (build/series/) whose first commit is the pristine base.  Each
# step below lays some of our files over it (or applies one of patches/)
# and commits with a real message, so that the series reads: the interface
# with the engine, the changes to the rest of mm, the documentation, the
# selftests in groups.  The tree is a hard-linked copy of build/base; every
# step replaces files (never writes into them), so the base is never
# touched.  At the end the series tree must hold exactly our files.
#
# PATCH_HEADER_FIRST=1 commits include/linux/ksm.h on its own before the
# engine: the order a reviewer would like, which does not build (see the
# engine's message); make patch-check shows it.
#
# make patch-check (scripts/patch-check.sh) applies the series with git am
# to a fresh copy of the base and builds the kernel after every patch.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SERIES=$BUILD/series
OUT=$BUILD/patches
# Author and Signed-off-by: PATCH_AUTHOR, else git's user.name and
# user.email (of this repository or global), else a placeholder.
if [[ -n ${PATCH_AUTHOR:-} ]]; then
	AUTHOR=$PATCH_AUTHOR author_from="PATCH_AUTHOR"
elif gname=$(git -C "$ROOT" config user.name) &&
     gmail=$(git -C "$ROOT" config user.email) && [[ -n $gname && -n $gmail ]]; then
	AUTHOR="$gname <$gmail>" author_from="git config user.name/user.email"
else
	AUTHOR="KSM for Linux 6.12 <ksm@localhost>"
	author_from="a placeholder: set git config user.name and user.email, or PATCH_AUTHOR"
fi
REV=${PATCH_REV:-HEAD}
rev=$(git -C "$ROOT" rev-parse --short "$REV^{commit}")
SELFTESTS=tools/testing/selftests/ksm

[[ -f $BUILD/base/.harness-unpacked ]] || "$ROOT/scripts/unpack-base.sh"
# Hashing the whole tree is heavy: not beside a test boot.
harness_lock "make patch"

# Our files in the series: what commit $rev holds.
rev_files() {
	git -C "$ROOT" ls-tree -r --name-only "$rev" -- "$@"
}
log "series of commit $rev ($(git -C "$ROOT" log -1 --format=%s "$rev"))"
log "author and Signed-off-by: $AUTHOR ($author_from)"
if [[ $REV == HEAD ]] && [[ -n $(git -C "$ROOT" status --porcelain -- \
		mm include Documentation patches "$SELFTESTS") ]]; then
	warn "uncommitted changes to our files are not in the series"
fi

log "series tree: $SERIES (hard links into build/base)"
rm -rf "$SERIES" "$OUT"
cp -al "$BUILD/base" "$SERIES"
rm -f "$SERIES/.harness-unpacked"

# No automatic gc in our own trees, and no git (nor anything it leaves
# running, such as a detached gc) holding fd 9, the harness lock.
git_s() {
	git -C "$SERIES" -c gc.auto=0 -c maintenance.auto=false \
		-c user.name="${AUTHOR% <*}" \
		-c user.email="$(sed 's/.*<\(.*\)>/\1/' <<<"$AUTHOR")" "$@" 9>&-
}

git_s init -q
log "committing the base (takes a minute)"
git_s add -A -f .
git_s commit -q -m "base: $(base_version | sed 's/^base: //')"
git_s tag base

# Write FILE of the series tree from stdin, replacing (not overwriting: the
# files are hard links into build/base).
put() {
	local f=$SERIES/$1
	mkdir -p "$(dirname "$f")"
	cat > "$f.tmp"
	mv -f "$f.tmp" "$f"
}

# Lay our FILEs, as commit $rev has them, over the series tree.
lay() {
	local f
	for f in "$@"; do
		git -C "$ROOT" show "$rev:$f" | put "$f"
	done
}

commit() {
	local msg=$1
	git_s add -A -f .
	git_s commit -q -s -F - <<<"$msg"
}

# 1. The interface and the engine.
engine_why="The header comes with the engine in one patch: on its own, with the old
mm/ksm.c, the tree compiles but does not link, because the new
ksm_fork() calls __ksm_fork(), which only the new mm/ksm.c defines.

The engine is one file, mm/ksm.c, so its features (smart_scan, the
advisor, max_page_sharing, merge_across_nodes, use_zero_pages, the 2009
files, merge domains) are not separate patches here; the cover letter
has a table of which functions implement which."
if [[ -n ${PATCH_HEADER_FIRST:-} ]]; then
	lay include/linux/ksm.h
	commit "ksm: the interface of the new KSM engine

include/linux/ksm.h alone, ahead of the engine: this order does not
build (the new ksm_fork() calls __ksm_fork(), which the old mm/ksm.c
does not define).  Made with PATCH_HEADER_FIRST=1 to show that."
	engine_why=""
fi
mapfile -t engine < <(rev_files mm include)
lay "${engine[@]}"
commit "ksm: a new Kernel Samepage Merging engine

Replace mm/ksm.c and include/linux/ksm.h with a new implementation of
the same interface: every hook the rest of the kernel calls (madvise,
prctl, fork, exec, exit, rmap walks, migration, swap-in, memory
failure, memory hot-remove) and every file in /sys/kernel/mm/ksm/,
plus the two files of the original 2009 interface,
kernel_pages_allocated and max_kernel_pages.

The design keeps the two trees of the original KSM (a stable tree of
merged pages, an unstable tree rebuilt every pass), but orders both by
a 32-bit checksum of the content first and by the content second: a
search reads pages only among equal checksums, usually the match
alone.  Contents are chosen by tenants, and the checksum is unkeyed
and easy to collide, so the order among equal checksums is what
bounds a search: O(log n) page comparisons whatever the pages hold,
and a page whose content has a KSM page with room always finds it.
A page met for the first time goes into the unstable tree at once, so
that memory just filled with duplicates merges in one pass.  ksmd ends
a batch as soon as anyone waits for ksm_lock or the freezer wants it.
The KUnit tests in mm/ksm-kunit.h (CONFIG_KSM_KUNIT_TEST, next patch)
check the checksum, the order and the bound on comparisons.
checkpatch asks whether MAINTAINERS needs updating for that new file:
mm/ is MEMORY MANAGEMENT's, which covers it as it covers mm/ksm.c.

A merge into an existing KSM page clears the PTE, flushes the TLB,
checks for pins, compares and installs the KSM page under one page
table lock: one flush per merged page.

Pages that keep failing to merge are skipped for growing numbers of
passes (smart_scan), the scan-time advisor sizes pages_to_scan, page
table holes are skipped a page middle directory at a time, and a KSM
page is kept dirty so that one process's MADV_FREE cannot let reclaim
drop it for all.  The DOC: Overview and DOC: Locking comments explain
the design, the lock order and the races.
${engine_why:+
$engine_why}"

# 2. Our changes to the rest of the tree, one commit each, with the
#    message the patch file carries.
while read -r p; do
	[[ -n $p ]] || continue
	text=$(git -C "$ROOT" show "$rev:$p")
	subject=$(sed -n 's/^Subject: \(\[PATCH[^]]*\] \)\{0,1\}//p' <<<"$text" | sed -n 1p)
	body=$(awk 'f && /^---$/ {exit} f {print} /^Subject:/ {f=1}' <<<"$text")
	(cd "$SERIES" && patch -p1 -s --no-backup-if-mismatch) <<<"$text"
	commit "$subject
$body"
done < <(rev_files patches | grep '\.patch$' || true)

# 3. Documentation.
lay Documentation/admin-guide/mm/ksm.rst
commit "Documentation/admin-guide/mm: KSM for administrators

Rewrite the administrator's guide for the new engine: how memory is
registered (madvise, prctl, what can and cannot be merged), every knob
and counter of /sys/kernel/mm/ksm/ with its default, range, errors and
an example, the per-process files, how to size and tune KSM for a KVM
host, and the side channel that merging across security domains opens
(a write to a merged page is measurably slower) and how to limit it."

lay Documentation/mm/ksm.rst
commit "Documentation/mm: KSM design

How the new KSM works inside, for a newcomer to the code: a batch and
a page followed step by step through ksmd, the two checksum-ordered
trees, the data structures and their sizes, who holds which lock and
in which order, and every race the engine handles.  The overview and
the locking rules are pulled from the DOC: comments in mm/ksm.c, so
that one text serves both readers."

# 4. Selftests, in groups.  Until the last group, the Makefile lists only
#    the programs added so far (comments above a list that is left out
#    entirely are left out with it), so that every step builds.
mapfile -t tests < <(rev_files "$SELFTESTS")
added=()
# Our Makefile with only the programs in ADDED (the final Makefile when
# every program is in).
selftests_makefile() {
	git -C "$ROOT" show "$rev:$SELFTESTS/Makefile" |
		awk -v keep=" ${added[*]} " '
		/^#/ { held = held $0 "\n"; next }
		/^TEST_GEN_PROGS(_EXTENDED)? *[:+]?=/ {
			n = split($0, w, /[ \t]+/); line = w[1] " " w[2]
			kept = 0
			for (i = 3; i <= n; i++)
				if (index(keep, " " w[i] ".c ")) { line = line " " w[i]; kept++ }
			if (kept) { printf "%s%s\n", held, line }
			held = ""; next
		}
		{ printf "%s%s\n", held, $0; held = "" }
		END { printf "%s", held }'
}
# A group: the subject, the message, then its files (names in $SELFTESTS).
selftests_group() {
	local subject=$1 body=$2 f
	shift 2
	for f in "$@"; do
		[[ " ${tests[*]} " == *" $SELFTESTS/$f "* ]] ||
			die "$SELFTESTS/$f is not in commit $rev (update scripts/mkpatch.sh)"
		lay "$SELFTESTS/$f"
		added+=("$f")
	done
	selftests_makefile | put "$SELFTESTS/Makefile"
	commit "$subject

$body"
}

# MAINTAINERS: the new directory is memory management's, like
# tools/testing/selftests/mm/ (checkpatch asks for it).
awk '/^MEMORY MANAGEMENT$/ {mm = 1} /^$/ {mm = 0}
     mm && $0 == "F:\ttools/testing/selftests/mm/" {
	print "F:\ttools/testing/selftests/ksm/"
     } {print}' "$SERIES/MAINTAINERS" | put MAINTAINERS
grep -qxF "F:	tools/testing/selftests/ksm/" "$SERIES/MAINTAINERS" ||
	die "MAINTAINERS: no MEMORY MANAGEMENT entry for tools/testing/selftests/mm/"

# What checkpatch --strict reports in the selftests and why it stays.
harness_note="checkpatch: the kselftest harness's EXPECT_*() and ASSERT_*() are two
statements each (the check, then a for loop that runs an optional
TH_LOG() and aborts the test on a failed ASSERT_*()), so the braces
checkpatch calls unnecessary around one of them in a loop or an if are
needed: without them the log and the abort would run after the loop,
and an else would not compile.  \"FIXTURE_DATA(name) *self\" is the
harness's own type, not a multiplication."
maint_note="checkpatch asks whether MAINTAINERS needs updating: the directory went
into it with the first selftests patch."
volatile_note="The volatile accesses are the test's own memory accesses, each of which
must really happen (a read of what the page holds now, a write that
faults), which the compiler could otherwise merge or drop."
bit_note="(1 << n) for MPOL_MF_* and the pagemap bits: these are the uapi values
spelt out for userspace, which has no BIT()."

selftests_group "selftests/ksm: helpers, and tests of merging, unmerging, fork and exit" \
"A new selftest directory for KSM, in the kselftest harness, for the
behaviour of KSM as a process sees it, on any KSM implementation.
Upstream's tools/testing/selftests/mm/ksm_tests.c and
ksm_functional_tests.c stay as they are.

ksm_common.c holds what every test needs: the sysfs knobs (saved and
restored around each test), waiting for full scans with a timeout,
worker processes that fork before they map and fill their memory (so
nothing is shared by copy-on-write, only by KSM) and answer requests
over a pipe, and \"merged\" decided from the page frame numbers in
/proc/PID/pagemap rather than from the counters, which are then checked
against the frames.

The first tests: ksm_knobs (run, pages_to_scan and sleep_millisecs:
what they accept, what they refuse, and their effect, with bounds slow
machines cannot break), ksm_merge (identical pages merge across and
within processes, unique pages do not, counters agree, a write breaks
COW for the writer only), ksm_unmerge (MADV_UNMERGEABLE on a range or
part of it, run=2, refused ranges), ksm_fork_exit (a child inherits
merged pages and mergeable areas; processes exit, are killed, unmap and
unmerge while ksmd scans them).

MAINTAINERS: the directory goes with tools/testing/selftests/mm/ under
MEMORY MANAGEMENT.

$harness_note

checkpatch: \"prefer '%s', __func__\" in ksm_common.c is about the
path \"/proc/kpageflags\" opened by the helper kpageflags(), not a
function name in a message.  \"Macros with flow control statements\"
is KSM_FIXTURE_BEGIN(), the setup most programs share: it skips the test
through the harness's SKIP(return, ...), which must return from the
FIXTURE_SETUP() itself, as the harness's own ASSERT_*() do.

$bit_note" \
	config ksm_common.h ksm_common.c ksm_knobs.c ksm_merge.c ksm_unmerge.c \
	ksm_fork_exit.c

selftests_group "selftests/ksm: zero pages, merge-any and per-process accounting" \
"ksm_zero_pages: with use_zero_pages, pages of zeroes are mapped to the
shared zero page, counted in ksm_zero_pages (globally and per process)
and unmerged by a write or MADV_UNMERGEABLE (or moved away by
UFFDIO_MOVE); without it they merge like any other content.

ksm_prctl: PR_SET_MEMORY_MERGE makes every anonymous private mapping of
the process mergeable, old and new, survives fork and exec, reads back
with PR_GET_MEMORY_MERGE, and unmerges when turned off.

ksm_proc_stat: /proc/PID/ksm_stat and /proc/PID/ksm_merging_pages agree
with what was merged; the profit has the documented form; a unique page
between passes costs at most 16 bytes of slab (its record), charged to
its process's memory cgroup.

ksm_smaps: the KSM line of /proc/PID/smaps, the mg VmFlag, and KPF_KSM
in /proc/kpageflags.

$harness_note

$maint_note" \
	ksm_zero_pages.c ksm_prctl.c ksm_proc_stat.c ksm_smaps.c

selftests_group "selftests/ksm: sharing limit, NUMA, smart scan and the advisor" \
"ksm_sharing_limit: no KSM page is mapped more than max_page_sharing
times; duplicates beyond that go to further KSM pages of the same
content; the knob changes only while no KSM page exists.

ksm_numa: merge_across_nodes=0 merges only pages of the same node, 1
merges across nodes; the knob changes only while no KSM page exists.
Needs two NUMA nodes with memory (numa=fake=2 in a VM).

ksm_smart_scan: with smart_scan, pages that keep failing to merge are
skipped for growing numbers of passes and counted in pages_skipped,
and skipping does not stop new duplicates from merging.

ksm_advisor: advisor_mode=scan-time takes over pages_to_scan within
its bounds and reports each decision through the ksm_advisor
tracepoint; advisor_mode=none gives pages_to_scan back.

$harness_note

$maint_note" \
	ksm_sharing_limit.c ksm_numa.c ksm_smart_scan.c ksm_advisor.c

selftests_group "selftests/ksm: the sysfs interface, the 2009 files and the tracepoints" \
"ksm_sysfs: every file of /sys/kernel/mm/ksm/ against 6.12's: the same
files, modes, formats and defaults; bad input to every writable file
fails with the errno 6.12 gives and leaves the value alone; only root
may write.

ksm_2009_interface: kernel_pages_allocated and max_kernel_pages, the
two files of the original 2009 interface that this engine brings back
(the test fails on an engine without them).

ksm_trace: the tracepoints of include/trace/events/ksm.h fire where
their names say, with the fields 6.12 gives them.

checkpatch: the UINT_JUNK(), ULONG_JUNK() and BOOL_JUNK() macros of
ksm_sysfs.c expand to lists of array initialisers, which cannot be put
in parentheses (the \"complex values\" error), and use their argument
once per initialiser, a string literal every time.

$harness_note

$maint_note" \
	ksm_sysfs.c ksm_2009_interface.c ksm_trace.c

selftests_group "selftests/ksm: swap, migration, THP, memory failure, hot-remove, khugepaged" \
"What the rest of mm does to KSM pages, each test checking that every
sharer keeps its content and that KSM pages stay shared or merge again:

ksm_swap: reclaim through the memory cgroup swaps merged pages out to a
zram device set up by the test, finds every mapping through the rmap
walk, brings them back intact (counted in ksm_swpin_copy) and ksmd
merges them again.
ksm_migrate: move_pages() and migrate_pages() move a KSM page with all
its mappings; with merge_across_nodes=0 a moved page serves its new
node only.
ksm_thp: KSM splits a THP to merge its subpages, and leaves a THP with
nothing to merge whole.
ksm_hwpoison: memory failure on a KSM page kills its sharers (at once
with early kill, on access otherwise); soft offline migrates it.
ksm_hotplug: offlining a movable memory block migrates the KSM pages on
it.
ksm_khugepaged: khugepaged leaves alone a range holding KSM pages, and
MADV_COLLAPSE still collapses it (fails without the khugepaged patch of
this series).

$harness_note

$maint_note

$volatile_note

The one TH_LOG() in ksm_swap longer than 100 columns keeps its message
whole; the format string is its first argument, so it cannot stand on
a line of its own.

$bit_note" \
	ksm_swap.c ksm_migrate.c ksm_thp.c ksm_hwpoison.c ksm_hotplug.c \
	ksm_khugepaged.c

selftests_group "selftests/ksm: hostile contents, bounded waits, reproducers, KUnit results" \
"ksm_collide: pages crafted to have the checksum of another content
(flipping bit 63 of two words one lane step apart leaves it unchanged)
must not keep that content from merging as upstream merges it, nor make
ksmd's work per pass grow with their number.
ksm_waits: with such pages keeping ksmd busy, knob writes, run=0/1/2,
madvise, prctl, fork and exit each come back within 250 ms.
ksm_regress: reproducers of defects a review found: a migration entry
left behind after mremap of a swapped-out KSM page (a kernel BUG from
an unprivileged process), fork splitting the child's huge pages, a
swapped-out KSM page losing its merge, an exited process lingering a
whole pass, and the advisor's bounds depending on the order of writes.
ksm_kunit: the results of the KUnit suite as TAP.

$maint_note

$bit_note" \
	ksm_collide.c ksm_waits.c ksm_regress.c ksm_kunit.c

selftests_group "selftests/ksm: merge domains" \
"ksm_domains: merge_domain and merge_zero_across_domains: input refused
and EBUSY as merge_across_nodes; two processes with the same pages
merge in the default mode and not in the process or cgroup mode, but
in one cgroup, and part again when one is moved out; pages of zeroes
across domains only with the option; a forked child keeps the pages it
inherited and merges anew with its parent only in the cgroup mode; and
the side channel as an attacker runs it (time a write to a page of
guessed content): right nearly always with one domain, at chance with a
domain per process.

checkpatch: the timed write goes through a volatile pointer so that the
compiler keeps it; the message that reports the two rates is longer
than 100 columns to stay one line of output.

$maint_note" \
	ksm_domains.c

selftests_group "selftests/ksm: ksm_stress, a torture test" \
"Worker processes own mergeable memory full of duplicates and know what
every page must hold; each does at random writes, fork, exit, munmap and
mmap, mremap, mprotect, MADV_DONTNEED, MADV_(UN)MERGEABLE, merge-any,
swap-out, migration between nodes, THP collapse and split, and checks
its pages after every step, while another process flips the KSM knobs
and asks for reclaim.  Built (TEST_GEN_PROGS_EXTENDED) but not run by
default: it takes minutes and wants a debug kernel.

$maint_note

$volatile_note

The format strings split across lines are say()'s, its first argument:
whole, they would not fit in 100 columns beside the call; each is still
one line of output.

$bit_note" \
	ksm_stress.c

# Anything the groups above do not name (a test added since) goes last.
rest=()
for f in "${tests[@]}"; do
	f=${f#"$SELFTESTS/"}
	[[ $f == Makefile || " ${added[*]} " == *" $f "* ]] || rest+=("$f")
done
if ((${#rest[@]})); then
	warn "not in a group of scripts/mkpatch.sh: ${rest[*]}"
	selftests_group "selftests/ksm: ${rest[*]}" \
"Tests not yet described in the series: ${rest[*]}.

$maint_note" "${rest[@]}"
fi

# The series must end in exactly our files.
for f in "${engine[@]}" "${tests[@]}" Documentation/admin-guide/mm/ksm.rst \
		Documentation/mm/ksm.rst; do
	cmp -s <(git -C "$ROOT" show "$rev:$f") "$SERIES/$f" ||
		die "the series leaves $f different from commit $rev"
done

log "writing the series to $OUT"
git_s format-patch -q -B -M --cover-letter -o "$OUT" base..HEAD

# The benchmark table: build/bench's, if it was measured on this very
# commit, else the latest in bench/RESULTS.md.
kernels=$BUILD/bench/kernels.txt
if [[ -f $BUILD/bench/table.md && -f $kernels ]] &&
   grep -qx "bench of .*; tree: $rev" <(head -n 1 "$kernels"); then
	bench="From make bench ($(head -n 1 "$kernels")):

$(cat "$BUILD/bench/table.md")"
else
	# The readers read to the end (no early exit): under pipefail a
	# writer killed by SIGPIPE would fail the whole step.
	bench=$(git -C "$ROOT" show "$rev:bench/RESULTS.md" |
		awk '/^## Latest results/ && !d {f = 1; next}
		     f && /^(#|!\[)/ {f = 0; d = 1} f')
	bench="From bench/RESULTS.md, \"Latest results\" of make bench:
$bench"
fi
features=$(git -C "$ROOT" show "$rev:README.md" |
	awk '/^Where each upstream 6.12 KSM feature lives/ && !d {f = 1}
	     f && /^#/ {f = 0; d = 1} f')
cover=$(ls "$OUT"/0000-*.patch)
python3 - "$cover" "$features" "$bench" <<'EOF'
import sys
path, features, bench = sys.argv[1:]
text = open(path).read()
text = text.replace("*** SUBJECT HERE ***", "A new KSM engine for Linux 6.12")
blurb = f"""This series replaces the Kernel Samepage Merging engine (mm/ksm.c and
include/linux/ksm.h) with a new implementation of the same interface,
faster and with its races written down, and adds its documentation and
selftests.  Against linux-source-6.12 (Debian 6.12.117).

The interface comes with the engine in one patch: the header alone does
not build with the old engine (the new ksm_fork() calls __ksm_fork(),
which only the new mm/ksm.c defines).  The engine is one file, so its
features are not separate patches; the table below says where each
lives.  Then khugepaged's change, the two documents, and the selftests
in groups; the test harness we used (QEMU, config fragments, scripts)
is not part of the series.  The kernel builds after every patch.

Tested under QEMU: upstream's KSM selftests
(tools/testing/selftests/mm/ksm_tests and ksm_functional_tests)
unchanged and the new selftests, on a plain kernel and on one with
KASAN, lockdep and DEBUG_VM; stress-ng and trinity with ksmd scanning
flat out.

{features}

Benchmark, our engine against 6.12's on the same tree and config, under
QEMU TCG with -icount (times are guest instructions, 1 ns each):

{bench}
"""
text = text.replace("*** BLURB HERE ***", blurb)
open(path, "w").write(text)
EOF

log "checkpatch --strict on every patch (reasons for what remains are in the messages)"
total_e=0 total_w=0 total_c=0
for p in "$OUT"/0*.patch; do
	[[ $p == */0000-* ]] && continue
	res=$(cd "$BUILD/base" && perl scripts/checkpatch.pl --strict -q "$p" 2>&1 | grep '^total:' || true)
	e=$(sed -n 's/.*total: \([0-9]*\) errors.*/\1/p' <<<"$res")
	w=$(sed -n 's/.* \([0-9]*\) warnings.*/\1/p' <<<"$res")
	c=$(sed -n 's/.* \([0-9]*\) checks.*/\1/p' <<<"$res")
	printf '  %-72s %s errors, %s warnings, %s checks\n' "$(basename "$p")" \
		"${e:-0}" "${w:-0}" "${c:-0}"
	total_e=$((total_e + ${e:-0}))
	total_w=$((total_w + ${w:-0}))
	total_c=$((total_c + ${c:-0}))
done
log "checkpatch --strict: $total_e errors, $total_w warnings, $total_c checks in all"
log "series: $(ls "$OUT" | wc -l) files in ${OUT#"$ROOT"/} (commit $rev); apply with:" \
    "git am \$(ls ${OUT#"$ROOT"/}/*.patch | grep -v cover-letter)"
