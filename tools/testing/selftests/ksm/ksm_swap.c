// SPDX-License-Identifier: GPL-2.0
/*
 * KSM pages and swap, on a zram swap device the test sets up.  Merged
 * pages of two processes are reclaimed through their memory cgroup's
 * memory.reclaim (MADV_PAGEOUT leaves alone a page mapped more than
 * once, as every KSM page of two processes is): reclaim must find both
 * mappings through rmap_walk_ksm(), the pages must come back intact, the
 * swap-in copies be counted in ksm_swpin_copy, and ksmd merge them
 * again.  A write to a KSM page counts one cow_ksm.  A KSM page that a
 * process maps in an area it never made mergeable (fork left it shared
 * when ksmd made it a KSM page in place) is swapped out from there too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NPAGES		32
#define ZRAM_SIZE	(32UL << 20)

FIXTURE(swap) {
	struct ksm_saved saved;
	struct ksm_worker w[2];
	bool own_swap;		/* we set zram0 up, and take it down */
	char cg[256];		/* our memory cgroup, "" if none */
};

FIXTURE_SETUP(swap)
{
	int ret;

	self->own_swap = false;
	self->cg[0] = '\0';
	KSM_FIXTURE_BEGIN();
	if (access(ZRAM_SYSFS "disksize", F_OK))
		SKIP(return, "no %s (CONFIG_ZRAM)", ZRAM_SYSFS);
	if (!file_has(CGROUP_ROOT "cgroup.controllers", "memory"))
		SKIP(return, "no memory controller in %s (cgroup2, CONFIG_MEMCG)",
		     CGROUP_ROOT);
	ASSERT_EQ(0, ksm_prepare(1000, 10));

	/* zram0 as swap, unless it already is. */
	ret = zram_swap_on(ZRAM_SIZE, &self->own_swap);
	if (ret == -EBUSY)
		SKIP(return, "zram0 is in use, and not as swap");
	ASSERT_EQ(0, ret) TH_LOG("swap on %s: %s", ZRAM_DEV, strerror(-ret));

	/* This test process, and the workers it forks, in a memory cgroup. */
	ret = memcg_enter(self->cg, sizeof(self->cg), "ksm_swap");
	ASSERT_EQ(0, ret) TH_LOG("memory cgroup: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(swap)
{
	int i, ret;

	for (i = 0; i < 2; i++)
		worker_stop(&self->w[i]);
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
 * Reclaim the cgroup until both workers are all out; 0 or -EAGAIN.  A
 * KSM page mapped twice is "referenced" by both at first and goes to the
 * active list; it takes more rounds of reclaim to age it out again.
 */
static int reclaim_workers(struct __test_metadata *_metadata, const char *cg,
			   struct ksm_worker *w)
{
	unsigned long deadline = now_ms() + KSM_WAIT_SECS * 1000UL;
	char path[PATH_MAX];
	int round = 0;

	snprintf(path, sizeof(path), "%s/memory.reclaim", cg);
	while (worker_swapped(&w[0]) != NPAGES || worker_swapped(&w[1]) != NPAGES) {
		if (now_ms() > deadline) {
			TH_LOG("after %d rounds of reclaim, %zu + %zu of 2 x %d KSM pages still in memory",
			       round, NPAGES - worker_swapped(&w[0]),
			       NPAGES - worker_swapped(&w[1]), NPAGES);
			return -EAGAIN;
		}
		/* EAGAIN when less than asked for could be reclaimed. */
		write_file(path, "16M");
		round++;
		usleep(20000);
	}
	return 0;
}

/*
 * Merge, swap out, swap in: contents intact and merged again.  With
 * @counters, also check ksm_swpin_copy and cow_ksm in /proc/vmstat.
 */
static void swap_cycle(struct __test_metadata *_metadata,
		       FIXTURE_DATA(swap) *self, bool counters)
{
	struct same_frames sf = { self->w, 2, 0, NPAGES };
	unsigned long copies_before = 0, copies, cow_before;
	uint64_t *tags = make_tags(NPAGES, 0x5a0000);
	size_t i, apart = 0;

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w[0], tags, NPAGES));
	ASSERT_EQ(0, worker_start(&self->w[1], tags, NPAGES));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS))
		TH_LOG("not merged before swapping");
	ASSERT_EQ(0, ksm_set("run", 0));

	ASSERT_EQ(0, reclaim_workers(_metadata, self->cg, self->w));

	/* Back in, one process after the other. */
	if (counters)
		copies_before = vmstat_get("ksm_swpin_copy");
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
	EXPECT_EQ(0, worker_swapped(&self->w[0]));
	EXPECT_EQ(0, worker_swapped(&self->w[1]));
	if (counters) {
		/*
		 * A page read back from swap belongs to the first process
		 * that faults it in; the second gets a copy, counted, unless
		 * the page was still a KSM page in the swap cache.
		 */
		copies = vmstat_get("ksm_swpin_copy") - copies_before;
		for (i = 0; i < NPAGES; i++)
			if (worker_pfn(&self->w[0], i) !=
			    worker_pfn(&self->w[1], i))
				apart++;
		TH_LOG("after swap-in: %zu of %d pages apart, ksm_swpin_copy +%lu",
		       apart, NPAGES, copies);
		EXPECT_EQ(apart, copies);
	}

	/* ksmd merges them again. */
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS))
		TH_LOG("not merged again after swap-in");
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
	if (!counters)
		return;

	/* A write to a KSM page: one cow_ksm, and a private page. */
	cow_before = vmstat_get("cow_ksm");
	ASSERT_EQ(0, worker_write(&self->w[1], 0, 0x5a5a5a));
	EXPECT_EQ(1, vmstat_get("cow_ksm") - cow_before);
	EXPECT_NE(worker_pfn(&self->w[0], 0), worker_pfn(&self->w[1], 0));
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
}

TEST_F_TIMEOUT(swap, out_and_back_and_merged_again, KSM_TEST_TIMEOUT)
{
	swap_cycle(_metadata, self, false);
}

/* The same, counted: needs CONFIG_VM_EVENT_COUNTERS. */
TEST_F_TIMEOUT(swap, vmstat_events, KSM_TEST_TIMEOUT)
{
	if (vmstat_get("ksm_swpin_copy") == ULONG_MAX ||
	    vmstat_get("cow_ksm") == ULONG_MAX)
		SKIP(return,
		     "no ksm_swpin_copy, cow_ksm in /proc/vmstat (CONFIG_VM_EVENT_COUNTERS=n)");
	swap_cycle(_metadata, self, true);
}

/*
 * Swapped out and then unmerged (run=2) before coming back: the swap
 * cache pages lost their KSM node, and each process gets its own page.
 */
TEST_F_TIMEOUT(swap, unmerged_while_out, KSM_TEST_TIMEOUT)
{
	struct same_frames sf = { self->w, 2, 0, NPAGES };
	uint64_t *tags = make_tags(NPAGES, 0x5b0000);
	size_t i;

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w[0], tags, NPAGES));
	ASSERT_EQ(0, worker_start(&self->w[1], tags, NPAGES));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_EQ(0, reclaim_workers(_metadata, self->cg, self->w));

	ASSERT_EQ(0, ksm_set("run", 2));
	EXPECT_EQ(0, ksm_get("pages_shared"));
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
	for (i = 0; i < NPAGES; i++) {
		EXPECT_NE(worker_pfn(&self->w[0], i), worker_pfn(&self->w[1], i))
			TH_LOG("page %zu shared after run=2", i);
	}
}

#define PAIRS		16
#define PAIR_TAG	0x5c0000

struct pair_frames {
	int fd;		/* the child's pagemap */
	char *r;
};

/* The child maps one frame for both pages of each pair. */
static bool child_pairs_merged(void *arg)
{
	struct pair_frames *pf = arg;
	size_t k;

	for (k = 0; k < PAIRS; k++) {
		unsigned long pfn = pagemap_pfn(pf->fd, pf->r + 2 * k * page_size);

		if (!pfn || pfn != pagemap_pfn(pf->fd,
					       pf->r + (2 * k + 1) * page_size))
			return false;
	}
	return true;
}

/*
 * This process maps pairs of pages alike in an area it never makes
 * mergeable, and forks a child that does; ksmd makes one page of each
 * pair, which fork left shared, a KSM page in place, so this process maps
 * it too, unmerged.  Reclaim must find that mapping (through the page's
 * own anon_vma: an rmap walk of only mergeable areas left it mapped, and
 * the page in memory for good), swap both processes' pages out, and each
 * must read its pages back intact.
 */
TEST_F_TIMEOUT(swap, non_mergeable_sharer_swaps_out, KSM_TEST_TIMEOUT)
{
	unsigned long deadline = now_ms() + KSM_WAIT_SECS * 1000UL;
	size_t len = 2 * PAIRS * page_size, k, at[PAIRS], in = 0;
	struct pair_frames pf;
	char path[PATH_MAX], *r, *buf, c;
	int ready[2], fd, mem, round = 0;
	pid_t child;

	r = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	for (k = 0; k < 2 * PAIRS; k++)
		fill_page(r + k * page_size, PAIR_TAG + k / 2);
	ASSERT_EQ(0, pipe(ready));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (madvise(r, len, MADV_MERGEABLE) ||
		    write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	fd = pagemap_open(0);
	pf.fd = pagemap_open(child);
	pf.r = r;
	ASSERT_LE(0, fd);
	ASSERT_LE(0, pf.fd);
	ASSERT_EQ(0, vma_flag(0, r, "mg"));

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(child_pairs_merged, &pf, KSM_WAIT_SECS))
		TH_LOG("the child's pairs did not merge");
	ASSERT_EQ(0, ksm_set("run", 0));
	for (k = 0; k < PAIRS; k++) {
		unsigned long pfn = pagemap_pfn(pf.fd, r + 2 * k * page_size);
		bool even = pagemap_pfn(fd, r + 2 * k * page_size) == pfn;
		bool odd = pagemap_pfn(fd, r + (2 * k + 1) * page_size) == pfn;

		ASSERT_NE(even, odd) TH_LOG("pair %zu: this process maps %s", k,
					    even ? "it twice" : "no KSM page");
		at[k] = 2 * k + odd;
	}
	ASSERT_EQ(PAIRS * page_size / 1024, smaps_kb(0, r, "KSM"));

	/* Reclaim until every KSM page is out, from both processes. */
	snprintf(path, sizeof(path), "%s/memory.reclaim", self->cg);
	for (;;) {
		in = 2 * PAIRS - pages_swapped(pf.fd, r, 2 * PAIRS);
		for (k = 0; k < PAIRS; k++)
			in += pages_swapped(fd, r + at[k] * page_size, 1) != 1;
		if (!in || now_ms() > deadline)
			break;
		write_file(path, "16M");
		round++;
		usleep(20000);
	}
	EXPECT_EQ(0, in) TH_LOG("after %d rounds of reclaim, %zu KSM mappings in memory",
				round, in);

	/* Back in: this process's pages, then the child's. */
	for (k = 0; k < 2 * PAIRS; k++)
		EXPECT_TRUE(page_has(r + k * page_size, PAIR_TAG + k / 2))
			TH_LOG("page %zu of this process", k);
	buf = malloc(page_size);
	ASSERT_NE(NULL, buf);
	snprintf(path, sizeof(path), "/proc/%d/mem", child);
	mem = open(path, O_RDONLY);
	ASSERT_LE(0, mem);
	for (k = 0; k < 2 * PAIRS; k++) {
		ASSERT_EQ(page_size, pread(mem, buf, page_size,
					   (unsigned long)(r + k * page_size)));
		EXPECT_TRUE(page_has(buf, PAIR_TAG + k / 2))
			TH_LOG("page %zu of the child", k);
	}
	close(mem);
	free(buf);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(pf.fd);
	close(fd);
	munmap(r, len);
}

TEST_HARNESS_MAIN
