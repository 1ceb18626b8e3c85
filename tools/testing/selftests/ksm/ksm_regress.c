// SPDX-License-Identifier: GPL-2.0
/*
 * Regression tests: each reproduces a defect once found in our KSM and
 * checks for upstream's behaviour instead.
 *
 * migration_after_mremap_of_swapped_ksm_page: a KSM page kept in the swap
 *   cache (by a vmsplice() reference, drained once the page is mapped
 *   back), its PTE moved by mremap() to where another mapping of it was
 *   unmapped, swapped in there and then migrated with move_pages().  The
 *   two rmap walks of the migration (one to put migration entries in,
 *   one to take them out) must find the same mappings: a migration entry
 *   left behind makes the next touch hit "kernel BUG at
 *   include/linux/swapops.h" (caught on the console).  The test checks
 *   the contents after each round, and that most rounds both mapped the
 *   KSM page back and moved it (else it proved nothing).
 *
 * fork_keeps_child_thp: a process with KSM zero pages forks.  Counting the
 *   child's zero pages with a page table walk that has only a PTE callback
 *   splits every PMD-mapped THP of the child; the child must keep them.
 *
 * swapped_out_ksm_page_keeps_merge: a KSM page of two processes, swapped
 *   out but still in the swap cache, must keep its stable node while ksmd
 *   passes the swap entries: then each process's swap-in maps the KSM page
 *   again.  Without the node every swap-in makes a private copy
 *   (ksm_swpin_copy) and the processes no longer share the page.  Where
 *   the area was made unmergeable meanwhile, the swap-in must copy.
 *
 * exited_mm_released_promptly: the items of a process that exits are
 *   dropped (and pages_sharing falls) by ksmd's next batches, as upstream
 *   moves the exiting mm next to the scan cursor; not a whole pass later,
 *   when the cursor reaches the mm where it was.
 *
 * one_content_one_ksm_page: pages of three processes rewritten to one
 *   content end up in one KSM page, not two, when max_page_sharing has
 *   room for all of them.
 *
 * advisor_bounds_any_order: advisor_max_pages_to_scan may be set below
 *   advisor_min_pages_to_scan and the minimum above the maximum, as
 *   upstream allows (so the pair can be changed in either order); 0 stays
 *   refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#define MPOL_MF_MOVE	(1 << 1)

#define ZRAM_SIZE	(32UL << 20)

/* exited_mm_released_promptly: the workers */
#define BIG_WORKERS	64
#define BIG_PAGES	256
#define PAIR_PAGES	64
#define NR_WORKERS	(BIG_WORKERS + 2)

FIXTURE(regress) {
	struct ksm_saved saved;
	struct ksm_worker w[NR_WORKERS];
	int pagemap_fd;
	int pipe_fd[2];
	char *map[2];		/* unmapped by the teardown */
	size_t map_len[2];
	bool own_swap;		/* we set zram0 up, and take it down */
	char cg[256];		/* our memory cgroup, "" if none */
};

FIXTURE_SETUP(regress)
{
	self->pagemap_fd = -1;
	self->pipe_fd[0] = -1;
	self->pipe_fd[1] = -1;
	memset(self->map, 0, sizeof(self->map));
	self->own_swap = false;
	self->cg[0] = '\0';
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	self->pagemap_fd = pagemap_open(0);
	ASSERT_LE(0, self->pagemap_fd);
}

static void close_pipe(FIXTURE_DATA(regress) *self)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (self->pipe_fd[i] >= 0)
			close(self->pipe_fd[i]);
		self->pipe_fd[i] = -1;
	}
}

FIXTURE_TEARDOWN(regress)
{
	int i, ret;

	close_pipe(self);
	for (i = 0; i < 2; i++)
		if (self->map[i])
			munmap(self->map[i], self->map_len[i]);
	for (i = 0; i < NR_WORKERS; i++)
		worker_stop(&self->w[i]);
	if (self->pagemap_fd >= 0)
		close(self->pagemap_fd);
	if (self->cg[0]) {
		ret = memcg_leave(self->cg);
		if (ret)
			TH_LOG("rmdir(%s): %s", self->cg, strerror(-ret));
	}
	if (self->own_swap) {
		ret = zram_swap_off();
		if (ret)
			TH_LOG("swapoff(%s): %s", ZRAM_DEV, strerror(-ret));
	}
	ksm_restore(&self->saved);
}

/*
 * Swap on zram for this test and, with @memcg, this process (and the
 * workers it forks from now on) in a memory cgroup of its own.  False
 * when the test is skipped.
 */
static bool swap_ready(struct __test_metadata *_metadata,
		       FIXTURE_DATA(regress) *self, bool memcg)
{
	int ret;

	if (access(ZRAM_SYSFS "disksize", F_OK))
		SKIP(return false, "no %s (CONFIG_ZRAM)", ZRAM_SYSFS);
	if (memcg && !file_has(CGROUP_ROOT "cgroup.controllers", "memory"))
		SKIP(return false,
		     "no memory controller in %s (cgroup2, CONFIG_MEMCG)",
		     CGROUP_ROOT);
	ret = zram_swap_on(ZRAM_SIZE, &self->own_swap);
	if (ret == -EBUSY)
		SKIP(return false, "zram0 is in use, and not as swap");
	ASSERT_EQ(0, ret) TH_LOG("swap on %s: %s", ZRAM_DEV, strerror(-ret));
	if (memcg) {
		ret = memcg_enter(self->cg, sizeof(self->cg), "ksm_regress");
		ASSERT_EQ(0, ret) TH_LOG("memory cgroup: %s", strerror(-ret));
	}
	return true;
}

/* A read the compiler keeps, of the first word (fill_page()'s tag). */
static uint64_t first_word(const char *p)
{
	return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
}

#define MREMAP_ROUNDS	20
#define TAG_MREMAP	0x6d72656d0000ULL
#define TAG_WRITTEN	0x77000000ULL

/*
 * The crash reproducer; see the top of the file.  Every round, with fresh
 * mappings: two pages at A alike and merged into one KSM page (ksmd then
 * stopped, so both stay merged and keep their items), a pipe holding a
 * reference to the page through A + 4K (which keeps it in the swap cache
 * once swapped out), A unmapped, A + 4K paged out and moved by mremap()
 * to A, A read (the swap cache's KSM page is mapped back, at another
 * address than the one it was merged at), the page migrated to the other
 * node, A read and written.  The bug is reachable unprivileged; only the
 * knobs need root.
 */
TEST_F_TIMEOUT(regress, migration_after_mremap_of_swapped_ksm_page,
	       KSM_TEST_TIMEOUT)
{
	int fd = self->pagemap_fd, round, node, target, status;
	int mapped_back = 0, moved = 0;
	struct own_range r = { fd, NULL, 0, 2 };
	unsigned long ksm_pfn;
	struct iovec iov;
	void *pages[1];
	int nodes[1];
	char *a, *buf;
	long ret;

	if (access("/sys/devices/system/node/node1", F_OK))
		SKIP(return, "needs two NUMA nodes");
	if (!swap_ready(_metadata, self, false))
		return;
	buf = malloc(page_size);
	ASSERT_NE(NULL, buf);

	for (round = 0; round < MREMAP_ROUNDS; round++) {
		uint64_t tag = TAG_MREMAP + round;

		a = map_same(2, tag);
		ASSERT_NE(NULL, a);
		self->map[0] = a;
		self->map_len[0] = 2 * page_size;
		r.p = a;
		ASSERT_EQ(0, ksm_set("run", 1));
		ASSERT_EQ(0, ksm_wait_for(own_one_frame, &r, KSM_WAIT_SECS))
			TH_LOG("round %d: two pages alike were not merged",
			       round);
		ASSERT_EQ(0, ksm_set("run", 0));
		ASSERT_TRUE(own_one_frame(&r));
		ksm_pfn = pagemap_pfn(fd, a);

		/* A reference that keeps the page in the swap cache. */
		ASSERT_EQ(0, pipe(self->pipe_fd));
		iov.iov_base = a + page_size;
		iov.iov_len = page_size;
		ASSERT_EQ((ssize_t)page_size,
			  vmsplice(self->pipe_fd[1], &iov, 1, 0));

		ASSERT_EQ(0, munmap(a, page_size));
		ASSERT_TRUE(page_out(fd, a + page_size))
			TH_LOG("round %d: MADV_PAGEOUT did not swap the KSM page out",
			       round);
		ASSERT_EQ(a, mremap(a + page_size, page_size, page_size,
				    MREMAP_MAYMOVE | MREMAP_FIXED, a));
		EXPECT_EQ(tag, first_word(a))
			TH_LOG("round %d: wrong content after swap-in", round);
		if (pagemap_pfn(fd, a) == ksm_pfn)
			mapped_back++;

		/*
		 * Drained now, or its reference would keep migration from
		 * moving the page at all.
		 */
		ASSERT_EQ((ssize_t)page_size,
			  read(self->pipe_fd[0], buf, page_size));
		EXPECT_TRUE(page_has(buf, tag))
			TH_LOG("round %d: the pipe's copy of the page changed",
			       round);
		close_pipe(self);

		node = page_node(0, a);
		ASSERT_LE(0, node) TH_LOG("round %d: no page at A", round);
		target = node ? 0 : 1;
		pages[0] = a;
		nodes[0] = target;
		status = -1;
		ret = syscall(SYS_move_pages, 0, 1UL, pages, nodes, &status,
			      MPOL_MF_MOVE);
		if (!ret && status == target)
			moved++;
		else
			TH_LOG("round %d: not moved from node %d to %d (move_pages %ld, status %d)",
			       round, node, target, ret, status);

		/* A touch: a read, then a write. */
		EXPECT_TRUE(page_has(a, tag))
			TH_LOG("round %d: content lost after the migration",
			       round);
		fill_page(a, tag + TAG_WRITTEN);
		EXPECT_TRUE(page_has(a, tag + TAG_WRITTEN))
			TH_LOG("round %d: A does not hold what was written",
			       round);
		ASSERT_EQ(0, munmap(a, page_size));
		self->map[0] = NULL;
	}
	free(buf);
	TH_LOG("%d rounds: KSM page mapped back at A in %d, moved in %d",
	       MREMAP_ROUNDS, mapped_back, moved);
	/* Without both, the sequence did not reach the migration walks. */
	EXPECT_LE(MREMAP_ROUNDS / 2, mapped_back);
	EXPECT_LE(MREMAP_ROUNDS / 2, moved);
}

#define THP_REGION	(32UL << 20)
#define ZERO_NR		16

/* This process has at least *@arg KSM zero pages. */
static bool zero_pages_at_least(void *arg)
{
	long want = *(long *)arg, n;

	if (read_ksm_stat(0, "ksm_zero_pages", &n))
		n = (long)ksm_get("ksm_zero_pages");
	return n >= want;
}

/*
 * A 32 MiB THP-backed mergeable region of unique pages (nothing merges,
 * so ksmd splits nothing) and 16 pages that ksmd maps to the zero page
 * (use_zero_pages=1); ksmd stopped; then fork.  The child must see the
 * region PMD-mapped as the parent does, and the fork split no PMD.
 */
TEST_F_TIMEOUT(regress, fork_keeps_child_thp, KSM_TEST_TIMEOUT)
{
	size_t hpage = thp_pmd_size(), len, i;
	unsigned long split_before, split_after;
	long thp_kb, kb, child_kb = -1, want = ZERO_NR;
	uint64_t seed = ((uint64_t)getpid() << 32) | 0x7d000000;
	char *raw, *thp, *zero;
	int status, p[2];
	pid_t child;

	if (!hpage)
		SKIP(return, "no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE)");
	ASSERT_TRUE(ksm_knob_exists("use_zero_pages"));
	ASSERT_EQ(0, ksm_set("use_zero_pages", 1));

	/* The region, aligned to huge pages: one VMA of exactly 32 MiB. */
	len = THP_REGION + hpage;
	raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	thp = (char *)(((uintptr_t)raw + hpage - 1) & ~(hpage - 1));
	if (thp > raw) {
		ASSERT_EQ(0, munmap(raw, thp - raw));
	}
	if (raw + len > thp + THP_REGION) {
		ASSERT_EQ(0, munmap(thp + THP_REGION,
				    raw + len - (thp + THP_REGION)));
	}
	self->map[0] = thp;
	self->map_len[0] = THP_REGION;
	ASSERT_EQ(0, madvise(thp, THP_REGION, MADV_HUGEPAGE));
	ASSERT_EQ(0, madvise(thp, THP_REGION, MADV_MERGEABLE));
	for (i = 0; i < THP_REGION / page_size; i++)
		fill_page(thp + i * page_size, seed + i);
	thp_kb = smaps_kb(0, thp, "AnonHugePages");
	if (thp_kb <= 0)
		SKIP(return, "could not get huge pages (AnonHugePages %ld)",
		     thp_kb);
	if (thp_kb != (long)(THP_REGION >> 10))
		TH_LOG("only %ld of %lu kB in huge pages", thp_kb,
		       THP_REGION >> 10);

	/* Real pages of zeroes, which ksmd maps to the zero page. */
	zero = map_anon(ZERO_NR, false);
	ASSERT_NE(NULL, zero);
	self->map[1] = zero;
	self->map_len[1] = ZERO_NR * page_size;
	for (i = 0; i < ZERO_NR; i++) {
		fill_page(zero + i * page_size, 0x7a0000 + i);
		fill_page(zero + i * page_size, TAG_ZERO);
	}
	ASSERT_EQ(0, madvise(zero, ZERO_NR * page_size, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(zero_pages_at_least, &want, KSM_WAIT_SECS))
		TH_LOG("pages of zeroes not mapped to the zero page");
	ASSERT_EQ(0, ksm_set("run", 0));

	kb = smaps_kb(0, thp, "AnonHugePages");
	ASSERT_EQ(thp_kb, kb)
		TH_LOG("ksmd split huge pages with nothing to merge");

	split_before = vmstat_get("thp_split_pmd");
	ASSERT_EQ(0, pipe(p));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		/* No harness calls here: report and go. */
		close(p[0]);
		kb = smaps_kb(0, thp, "AnonHugePages");
		_exit(write(p[1], &kb, sizeof(kb)) == sizeof(kb) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], &child_kb, sizeof(child_kb)) != sizeof(child_kb))
		child_kb = -1;
	close(p[0]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	split_after = vmstat_get("thp_split_pmd");
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("the child could not report");

	EXPECT_EQ(thp_kb, child_kb)
		TH_LOG("the child's huge pages were split at fork");
	if (split_before == ULONG_MAX) {
		TH_LOG("no thp_split_pmd in /proc/vmstat: not checked");
	} else {
		EXPECT_EQ(split_before, split_after)
			TH_LOG("%lu PMDs split during the fork",
			       split_after - split_before);
	}
	EXPECT_EQ(thp_kb, smaps_kb(0, thp, "AnonHugePages"));
	for (i = 0; i < THP_REGION / page_size; i++) {
		if (!page_has(thp + i * page_size, seed + i)) {
			EXPECT_TRUE(false) TH_LOG("page %zu changed", i);
			break;
		}
	}
	for (i = 0; i < ZERO_NR; i++) {
		EXPECT_TRUE(page_has(zero + i * page_size, TAG_ZERO));
	}
}

#define SWAP_PAGES	16

struct own_and_worker {
	int fd;
	char *p;
	struct ksm_worker *w;
};

/* Each page of @p is on the frame of the worker's page of that index. */
static bool shares_with_worker(void *arg)
{
	struct own_and_worker *s = arg;
	unsigned long pfn;
	size_t i;

	for (i = 0; i < s->w->npages; i++) {
		pfn = pagemap_pfn(s->fd, s->p + i * page_size);
		if (!pfn || pfn != worker_pfn(s->w, i))
			return false;
	}
	return true;
}

/*
 * This process and a worker hold the same 16 pages, merged; this process
 * keeps a reference to each KSM page in a pipe (vmsplice()), so that
 * reclaim (memory.reclaim: MADV_PAGEOUT leaves a page mapped twice alone)
 * leaves them in the swap cache while both page tables hold swap entries.
 * After ksmd's passes over those entries, a read by each process must map
 * the KSM page again, without a copy.
 */
TEST_F_TIMEOUT(regress, swapped_out_ksm_page_keeps_merge, KSM_TEST_TIMEOUT)
{
	struct own_and_worker s = { self->pagemap_fd, NULL, &self->w[0] };
	unsigned long copies_before, copies, deadline;
	size_t i, apart = 0, in_p = 0, in_w = 0;
	char path[PATH_MAX], *p, *buf;
	struct ksm_counters c;
	struct iovec iov;
	uint64_t *tags;
	ssize_t ret;
	int rounds = 0;

	if (!swap_ready(_metadata, self, true))
		return;
	tags = make_tags(SWAP_PAGES, 0x5c0000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w[0], tags, SWAP_PAGES));
	p = map_anon(SWAP_PAGES, false);
	ASSERT_NE(NULL, p);
	self->map[0] = p;
	self->map_len[0] = SWAP_PAGES * page_size;
	for (i = 0; i < SWAP_PAGES; i++)
		fill_page(p + i * page_size, tags[i]);
	ASSERT_EQ(0, madvise(p, SWAP_PAGES * page_size, MADV_MERGEABLE));
	s.p = p;

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(shares_with_worker, &s, KSM_WAIT_SECS))
		TH_LOG("the two processes' pages were not merged");
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_EQ(SWAP_PAGES, c.shared);
	EXPECT_EQ(SWAP_PAGES, c.sharing);

	ASSERT_EQ(0, pipe(self->pipe_fd));
	fcntl(self->pipe_fd[1], F_SETPIPE_SZ, 2 * SWAP_PAGES * page_size);
	iov.iov_base = p;
	iov.iov_len = SWAP_PAGES * page_size;
	ret = vmsplice(self->pipe_fd[1], &iov, 1, SPLICE_F_NONBLOCK);
	ASSERT_EQ((ssize_t)(SWAP_PAGES * page_size), ret)
		TH_LOG("vmsplice: %s", ret < 0 ? strerror(errno) : "short");

	/* Out, both mappings of each page: it takes rounds of reclaim. */
	snprintf(path, sizeof(path), "%s/memory.reclaim", self->cg);
	deadline = now_ms() + KSM_WAIT_SECS * 1000UL;
	for (;;) {
		in_p = SWAP_PAGES - pages_swapped(self->pagemap_fd, p, SWAP_PAGES);
		in_w = SWAP_PAGES - pages_swapped(self->w[0].pagemap_fd,
					       self->w[0].addr, SWAP_PAGES);
		if ((!in_p && !in_w) || now_ms() > deadline)
			break;
		/* EAGAIN when less than asked for could be reclaimed. */
		write_file(path, "16M");
		rounds++;
		usleep(20000);
	}
	ASSERT_TRUE(!in_p && !in_w)
		TH_LOG("after %d rounds of reclaim, %zu + %zu of 2 x %d mappings still present",
		       rounds, in_p, in_w, SWAP_PAGES);

	/* ksmd passes the swap entries (and forgets their items). */
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ(SWAP_PAGES, pages_swapped(self->pagemap_fd, p, SWAP_PAGES));

	/*
	 * The first half unmerged while swapped out: unmerging passes swap
	 * entries by, so the swap-in there must make a copy, not map a KSM
	 * page into an area that is no longer mergeable (where mremap would
	 * not unmerge it).
	 */
	ASSERT_EQ(0, madvise(p, SWAP_PAGES / 2 * page_size,
			     MADV_UNMERGEABLE));

	/* Read back by both, ksmd stopped: the same KSM pages, no copies. */
	copies_before = vmstat_get("ksm_swpin_copy");
	for (i = 0; i < SWAP_PAGES; i++) {
		EXPECT_TRUE(page_has(p + i * page_size, tags[i]))
			TH_LOG("page %zu", i);
	}
	EXPECT_EQ(0, worker_check(&self->w[0]));
	copies = vmstat_get("ksm_swpin_copy");
	for (i = 0; i < SWAP_PAGES; i++) {
		unsigned long pfn = pagemap_pfn(self->pagemap_fd,
						p + i * page_size);

		if (i < SWAP_PAGES / 2) {
			EXPECT_NE(pfn, worker_pfn(&self->w[0], i))
				TH_LOG("page %zu: a KSM page in an unmergeable area",
				       i);
		} else if (!pfn || pfn != worker_pfn(&self->w[0], i)) {
			apart++;
		}
	}
	if (copies_before == ULONG_MAX) {
		TH_LOG("no ksm_swpin_copy in /proc/vmstat: not checked");
	} else {
		EXPECT_EQ(copies_before + SWAP_PAGES / 2, copies)
			TH_LOG("%lu swap-ins made private copies, %d expected",
			       copies - copies_before, SWAP_PAGES / 2);
	}
	EXPECT_EQ(0, apart)
		TH_LOG("%zu of %d mergeable pages no longer shared after swap-in",
		       apart, SWAP_PAGES / 2);

	/* The pipe still has what was written. */
	buf = malloc(page_size);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < SWAP_PAGES; i++) {
		ASSERT_EQ((ssize_t)page_size,
			  read(self->pipe_fd[0], buf, page_size));
		EXPECT_TRUE(page_has(buf, tags[i])) TH_LOG("pipe, page %zu", i);
	}
	free(buf);
	free(tags);
	close_pipe(self);
}

#define SLOW_PAGES	100
#define SLOW_SLEEP_MS	50
#define PROMPT_MS	1500

struct pair_merged {
	struct same_frames sf;
	unsigned long sharing;
};

static bool pair_merged(void *arg)
{
	struct pair_merged *m = arg;

	return frames_shared(&m->sf) && ksm_get("pages_sharing") >= m->sharing;
}

/*
 * 64 MiB of unique mergeable pages make ksmd's pass long at 100 pages per
 * 50 ms wake-up: 16384 / 100 * 50 ms, 8 s and more.  They are spread over
 * 64 processes of 1 MiB, since upstream puts an exiting mm right after the
 * mm the cursor is in: ksmd reaches it within one small process.  Two more
 * workers (registered last) hold 64 pages alike and merge.  Just after a
 * pass began, so that the cursor has a whole pass to go to the second
 * worker, the second worker exits: pages_sharing must fall by its 64
 * within 1.5 s, and before full_scans moves on (else the pass was too
 * short for the check to mean anything, and the test fails).
 */
TEST_F_TIMEOUT(regress, exited_mm_released_promptly, KSM_TEST_TIMEOUT)
{
	struct ksm_worker *gone = &self->w[BIG_WORKERS];
	struct ksm_worker *stays = &self->w[BIG_WORKERS + 1];
	struct pair_merged m = { { gone, 2, 0, PAIR_PAGES }, PAIR_PAGES };
	unsigned long sharing0, sharing, scans0, scans, t0, elapsed;
	bool dropped = false;
	uint64_t *tags;
	int i;

	for (i = 0; i < BIG_WORKERS; i++) {
		tags = make_tags(BIG_PAGES, 0x40000000 + i * 0x10000);
		ASSERT_NE(NULL, tags);
		ASSERT_EQ(0, worker_start(&self->w[i], tags, BIG_PAGES));
		free(tags);
	}
	tags = make_tags(PAIR_PAGES, 0x4f0000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(gone, tags, PAIR_PAGES));
	ASSERT_EQ(0, worker_start(stays, tags, PAIR_PAGES));
	free(tags);

	/* Merge the pair at full speed. */
	ASSERT_EQ(0, ksm_set("pages_to_scan", 5000));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(pair_merged, &m, KSM_WAIT_SECS))
		TH_LOG("the pair of workers was not merged");
	ASSERT_EQ(0, ksm_set("run", 0));

	/* Slow passes; wait for one to begin. */
	ASSERT_EQ(0, ksm_set("pages_to_scan", SLOW_PAGES));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", SLOW_SLEEP_MS));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(1, KSM_WAIT_SECS))
		TH_LOG("no full scan in %d s", KSM_WAIT_SECS);
	sharing0 = ksm_get("pages_sharing");
	scans0 = ksm_get("full_scans");
	ASSERT_LE(PAIR_PAGES, sharing0);
	ASSERT_NE(ULONG_MAX, scans0);

	ASSERT_EQ(0, worker_stop(gone));
	t0 = now_ms();
	do {
		sharing = ksm_get("pages_sharing");
		scans = ksm_get("full_scans");
		elapsed = now_ms() - t0;
		if (sharing != ULONG_MAX && sharing <= sharing0 - PAIR_PAGES) {
			dropped = true;
			break;
		}
		usleep(10000);
	} while (scans == scans0 && elapsed < KSM_WAIT_SECS * 1000UL);
	if (!dropped) {
		/* Dropped at the end of the pass, between the two reads? */
		sharing = ksm_get("pages_sharing");
		elapsed = now_ms() - t0;
		dropped = sharing <= sharing0 - PAIR_PAGES;
	}
	ASSERT_EQ(0, ksm_set("run", 0));

	TH_LOG("pages_sharing %lu -> %lu, %lu ms after the exit; full_scans %lu -> %lu",
	       sharing0, sharing, elapsed, scans0, scans);
	ASSERT_TRUE(dropped)
		TH_LOG("the exited worker's pages still counted after ksmd's pass");
	if (elapsed > PROMPT_MS) {
		EXPECT_GE(PROMPT_MS, elapsed)
			TH_LOG("the exited mm waited for the cursor to reach it");
	} else {
		/* Prompt, but only meaningful within one long pass. */
		EXPECT_EQ(scans0, scans)
			TH_LOG("a pass ended within %d ms: too short to tell prompt from late",
			       PROMPT_MS);
	}
	EXPECT_EQ(0, worker_check(stays));
}

/*
 * Each bound may cross the other, as upstream allows, so that the pair
 * can be moved in either order; 0 is refused.
 */
TEST_F(regress, advisor_bounds_any_order)
{
	static const char min[] = "advisor_min_pages_to_scan";
	static const char max[] = "advisor_max_pages_to_scan";

	if (!ksm_knob_exists(min) || !ksm_knob_exists(max))
		SKIP(return, "no %s%s", KSM_SYSFS_DIR, min);

	/* Upstream's defaults. */
	ASSERT_EQ(0, ksm_set(max, 30000));
	ASSERT_EQ(0, ksm_set(min, 500));

	/* Down: the maximum first, below the minimum. */
	EXPECT_EQ(0, ksm_set(max, 100))
		TH_LOG("%s=100 with %s=500", max, min);
	EXPECT_EQ(100, ksm_get(max));
	EXPECT_EQ(0, ksm_set(min, 50));
	EXPECT_EQ(50, ksm_get(min));

	EXPECT_EQ(-EINVAL, ksm_set(min, 0));
	EXPECT_EQ(50, ksm_get(min));
	EXPECT_EQ(-EINVAL, ksm_set(max, 0));
	EXPECT_EQ(100, ksm_get(max));

	/* Up: the minimum first, above the maximum. */
	EXPECT_EQ(0, ksm_set(min, 40000))
		TH_LOG("%s=40000 with %s=100", min, max);
	EXPECT_EQ(40000, ksm_get(min));
	EXPECT_EQ(0, ksm_set(max, 30000))
		TH_LOG("%s=30000 with %s=40000", max, min);
	EXPECT_EQ(30000, ksm_get(max));

	/* Back to the defaults (the teardown restores what was there). */
	EXPECT_EQ(0, ksm_set(min, 500));
	EXPECT_EQ(0, ksm_set(max, 30000));
	EXPECT_EQ(500, ksm_get(min));
	EXPECT_EQ(30000, ksm_get(max));
}

#define COMMON_WORKERS	3
#define COMMON_PAGES	1024
#define TAG_OWN		0x6f776e000000ULL
#define TAG_COMMON	0x636f6d6d6f6eULL

/*
 * Three processes, each with pages of a content of its own, merged into
 * three KSM pages; then, with ksmd stopped, every page of all three is
 * rewritten to one common content.  With max_page_sharing at the number
 * of pages, two full scans must leave one KSM page with every other page
 * sharing it, as upstream does (pages_shared 1, pages_sharing N - 1).  A
 * page that could not join the KSM page of its content at once (a
 * reference of the LRU batch it was just put in, say) used to pair with
 * another such page in the unstable tree, making a second KSM page of
 * the same content while the first had room.
 */
TEST_F_TIMEOUT(regress, one_content_one_ksm_page, KSM_TEST_TIMEOUT)
{
	const size_t n = COMMON_WORKERS * COMMON_PAGES;
	struct ksm_counters c;
	uint64_t *tags;
	size_t i, j;

	tags = malloc(COMMON_PAGES * sizeof(*tags));
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, ksm_set("max_page_sharing", n));
	ASSERT_EQ(0, ksm_set("pages_to_scan", n));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 0));
	for (i = 0; i < COMMON_WORKERS; i++) {
		for (j = 0; j < COMMON_PAGES; j++)
			tags[j] = TAG_OWN + i;
		ASSERT_EQ(0, worker_start(&self->w[i], tags, COMMON_PAGES));
	}
	free(tags);

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	ASSERT_EQ(COMMON_WORKERS, c.shared);
	ASSERT_EQ(n - COMMON_WORKERS, c.sharing);

	for (i = 0; i < COMMON_WORKERS; i++)
		for (j = 0; j < COMMON_PAGES; j++)
			ASSERT_EQ(0, worker_write(&self->w[i], j, TAG_COMMON));

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_EQ(1, c.shared);
	EXPECT_EQ(n - 1, c.sharing);
	for (i = 0; i < COMMON_WORKERS; i++)
		EXPECT_EQ(0, worker_check(&self->w[i]));
}

TEST_HARNESS_MAIN
