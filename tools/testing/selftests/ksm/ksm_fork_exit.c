// SPDX-License-Identifier: GPL-2.0
/*
 * KSM across fork and exit: a child inherits merged pages and its
 * mergeable areas (its own copies and its own new areas merge too) without
 * disturbing the parent; processes exit, are killed, unmap and unmerge
 * while ksmd scans them, and ksmd neither hangs nor keeps counting them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

FIXTURE(fork_exit) {
	struct ksm_saved saved;
	struct ksm_worker w[2];
};

FIXTURE_SETUP(fork_exit)
{
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(fork_exit)
{
	KSM_FIXTURE_END();
}

#define FORK_PAGES	16
#define TAG_PARENT	0xf0f0
#define TAG_CHILD_0	0xc000
#define TAG_CHILD_12	0xc012
#define TAG_CHILD_NEW	0xc0de

static const char * const child_steps[] = {
	[1] = "child does not map the parent's KSM page",
	[2] = "child does not see the parent's data",
	[3] = "child's write did not give it a copy of its own",
	[4] = "child's write disturbed its other merged pages",
	[5] = "child's own copies (in an inherited mergeable area) not merged",
	[6] = "child's new mergeable area not merged",
	[7] = "child cannot map memory or read its pagemap",
};

/* Returns 0, or the step of child_steps[] that failed. */
static int fork_child(char *p, unsigned long ksm_pfn)
{
	struct own_range r = { pagemap_open(0), p, 0, FORK_PAGES };
	unsigned long pfn;
	char *q;
	size_t i;

	if (r.pagemap_fd < 0)
		return 7;
	for (i = 0; i < FORK_PAGES; i++)
		if (pagemap_pfn(r.pagemap_fd, p + i * page_size) != ksm_pfn)
			return 1;
	for (i = 0; i < FORK_PAGES; i++)
		if (!page_has(p + i * page_size, TAG_PARENT))
			return 2;

	fill_page(p, TAG_CHILD_0);
	pfn = pagemap_pfn(r.pagemap_fd, p);
	if (!pfn || pfn == ksm_pfn || !page_has(p, TAG_CHILD_0))
		return 3;
	for (i = 1; i < FORK_PAGES; i++)
		if (pagemap_pfn(r.pagemap_fd, p + i * page_size) != ksm_pfn)
			return 4;

	/* Pages 1 and 2 get new, equal data: they merge with each other. */
	fill_page(p + page_size, TAG_CHILD_12);
	fill_page(p + 2 * page_size, TAG_CHILD_12);
	r.first = 1;
	r.nr = 2;
	if (ksm_wait_for(own_one_frame, &r, KSM_WAIT_SECS))
		return 5;
	if (!page_has(p + page_size, TAG_CHILD_12) ||
	    !page_has(p + 2 * page_size, TAG_CHILD_12))
		return 5;

	q = map_same(8, TAG_CHILD_NEW);
	if (!q)
		return 7;
	r.p = q;
	r.first = 0;
	r.nr = 8;
	if (ksm_wait_for(own_one_frame, &r, KSM_WAIT_SECS))
		return 6;
	for (i = 0; i < 8; i++)
		if (!page_has(q + i * page_size, TAG_CHILD_NEW))
			return 6;
	return 0;
}

/*
 * Fork a process whose pages are merged: the child maps the same KSM page
 * and sees the data; its writes copy; its mm is registered with KSM, so its
 * inherited area and a new one merge; the parent is not disturbed.
 */
TEST_F_TIMEOUT(fork_exit, fork_with_merged_pages, KSM_TEST_TIMEOUT)
{
	struct own_range r = { pagemap_open(0), NULL, 0, FORK_PAGES };
	unsigned long ksm_pfn;
	int status, step;
	pid_t child;
	size_t i;

	ASSERT_LE(0, r.pagemap_fd);
	r.p = map_same(FORK_PAGES, TAG_PARENT);
	ASSERT_NE(NULL, r.p);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(own_one_frame, &r, KSM_WAIT_SECS))
		TH_LOG("identical pages were not merged");
	ksm_pfn = pagemap_pfn(r.pagemap_fd, r.p);

	child = fork();
	ASSERT_LE(0, child);
	if (!child)
		_exit(fork_child(r.p, ksm_pfn));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	step = WEXITSTATUS(status);
	EXPECT_EQ(0, step) {
		TH_LOG("%s", step < (int)ARRAY_SIZE(child_steps) &&
		       child_steps[step] ? child_steps[step] : "?");
	}

	/* The parent still maps the KSM page everywhere, with its data. */
	for (i = 0; i < FORK_PAGES; i++) {
		EXPECT_EQ(ksm_pfn, pagemap_pfn(r.pagemap_fd, r.p + i * page_size));
		EXPECT_TRUE(page_has(r.p + i * page_size, TAG_PARENT));
	}
	close(r.pagemap_fd);
}

/*
 * When one of two merged processes exits, the other keeps its data on the
 * KSM pages, can still write (and copy) them, and nothing counts as
 * shared by two any more.
 */
TEST_F_TIMEOUT(fork_exit, partner_exits, KSM_TEST_TIMEOUT)
{
	const size_t n = 16;
	struct same_frames all = { self->w, 2, 0, n };
	struct ksm_worker *a = &self->w[0], *b = &self->w[1];
	unsigned long ksm_pfn[16], pfn;
	struct ksm_counters c;
	uint64_t *tags;
	size_t i;

	tags = make_tags(n, 0xe000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(a, tags, n));
	ASSERT_EQ(0, worker_start(b, tags, n));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &all, KSM_WAIT_SECS))
		TH_LOG("identical pages of two processes were not merged");
	worker_pfns(b, ksm_pfn);

	EXPECT_EQ(0, worker_stop(a));
	for (i = 0; i < n; i++) {
		EXPECT_EQ(ksm_pfn[i], worker_pfn(b, i));
	}
	EXPECT_EQ(0, worker_check(b));
	ASSERT_EQ(0, worker_write(b, 0, 0xe0e0e0));
	pfn = worker_pfn(b, 0);
	EXPECT_NE(0, pfn);
	EXPECT_NE(ksm_pfn[0], pfn);
	EXPECT_EQ(0, worker_check(b));

	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_EQ(0, c.sharing);
	EXPECT_GE(n, c.shared);
	EXPECT_EQ(0, worker_check(b));
}

/*
 * Short-lived processes with mergeable memory, many of them, ending in
 * every way while ksmd scans them in small batches: plain exit, exit once
 * merged, munmap or MADV_UNMERGEABLE first, or SIGKILL in the middle of
 * writing.  Afterwards ksmd still runs and counts only what is left.
 */
#define EXIT_ROUNDS	40
#define EXIT_PAGES	64
#define KEEPER_PAGES	16

enum exit_mode {
	EXIT_PLAIN,
	EXIT_MERGED,
	EXIT_MUNMAP,
	EXIT_UNMERGE,
	EXIT_KILLED,
	NR_EXIT_MODES,
};

static unsigned int next_random(unsigned int *seed)
{
	*seed = *seed * 1103515245 + 12345;
	return (*seed >> 16) & 0x7fff;
}

/* Returns 0, or 1 when its memory did not hold what it wrote. */
static int exit_child(enum exit_mode mode, unsigned int delay_us)
{
	struct own_range r = { pagemap_open(0), NULL, 0, 8 };
	uint64_t round = 0;
	size_t i;
	char *p;

	p = map_anon(EXIT_PAGES, false);
	if (!p || r.pagemap_fd < 0)
		return 1;
	/* Groups of eight identical pages. */
	for (i = 0; i < EXIT_PAGES; i++)
		fill_page(p + i * page_size, 0x8000 + i / 8);
	if (madvise(p, EXIT_PAGES * page_size, MADV_MERGEABLE))
		return 1;

	switch (mode) {
	case EXIT_MERGED:
		/* Exit with KSM pages mapped (or after 30 s without). */
		r.p = p;
		ksm_wait_for(own_one_frame, &r, 30);
		break;
	case EXIT_KILLED:
		/* Keep the pages volatile until the parent kills us. */
		for (;;) {
			fill_page(p + (round % EXIT_PAGES) * page_size, round);
			round++;
		}
	default:
		usleep(delay_us);
		break;
	}
	for (i = 0; i < EXIT_PAGES; i++)
		if (!page_has(p + i * page_size, 0x8000 + i / 8))
			return 1;
	if (mode == EXIT_MUNMAP)
		munmap(p, EXIT_PAGES * page_size);
	else if (mode == EXIT_UNMERGE &&
		 madvise(p, EXIT_PAGES * page_size, MADV_UNMERGEABLE))
		return 1;
	return 0;
}

TEST_F_TIMEOUT(fork_exit, exit_while_scanning, KSM_TEST_TIMEOUT)
{
	struct own_range keeper = { pagemap_open(0), NULL, 0, KEEPER_PAGES };
	unsigned int seed = 1;
	pid_t pids[2] = { 0, 0 };
	int modes[2], status;
	unsigned long deadline;
	struct ksm_counters c;
	int round, slot, bad = 0;
	bool clean;
	size_t i;

	ASSERT_LE(0, keeper.pagemap_fd);
	/* Small batches, short sleeps: processes exit in mid-scan. */
	ASSERT_EQ(0, ksm_set("pages_to_scan", 64));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 1));
	keeper.p = map_same(KEEPER_PAGES, 0x6b6565);
	ASSERT_NE(NULL, keeper.p);
	ASSERT_EQ(0, ksm_set("run", 1));

	for (round = 0; round < EXIT_ROUNDS + 2; round++) {
		slot = round % 2;
		if (pids[slot]) {
			if (modes[slot] == EXIT_KILLED)
				kill(pids[slot], SIGKILL);
			ASSERT_EQ(pids[slot], waitpid(pids[slot], &status, 0));
			if (modes[slot] == EXIT_KILLED) {
				if (!WIFSIGNALED(status))
					bad++;
			} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				bad++;
			}
			pids[slot] = 0;
		}
		if (round >= EXIT_ROUNDS)
			continue;
		modes[slot] = round % NR_EXIT_MODES;
		pids[slot] = fork();
		ASSERT_LE(0, pids[slot]);
		if (!pids[slot])
			_exit(exit_child(modes[slot],
					 next_random(&seed) % 50000));
		/* Let the other child run a while before it is reaped. */
		usleep(next_random(&seed) % 50000);
	}
	EXPECT_EQ(0, bad) TH_LOG("%d children lost their data", bad);

	/* ksmd still makes progress and merges. */
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS))
		TH_LOG("ksmd stopped scanning");
	ASSERT_EQ(0, ksm_wait_for(own_one_frame, &keeper, KSM_WAIT_SECS))
		TH_LOG("ksmd no longer merges");

	/*
	 * Once ksmd has passed the dead processes, only the keeper counts:
	 * one KSM page with KEEPER_PAGES - 1 more mappings.
	 */
	deadline = now_ms() + KSM_WAIT_SECS * 1000UL;
	do {
		ASSERT_EQ(0, ksm_set("run", 1));
		ASSERT_EQ(0, ksm_wait_scans(1, KSM_WAIT_SECS));
		ASSERT_EQ(0, ksm_stop_and_read(&c));
		clean = c.shared == 1 && c.sharing == KEEPER_PAGES - 1 &&
			!c.unshared && !c.volatile_;
	} while (!clean && now_ms() < deadline);
	EXPECT_EQ(1, c.shared);
	EXPECT_EQ(KEEPER_PAGES - 1, c.sharing);
	EXPECT_EQ(0, c.unshared);
	EXPECT_EQ(0, c.volatile_);

	ASSERT_EQ(0, ksm_set("run", 2));
	EXPECT_EQ(0, ksm_get("pages_shared"));
	EXPECT_EQ(0, ksm_get("pages_sharing"));
	EXPECT_FALSE(own_one_frame(&keeper));
	for (i = 0; i < KEEPER_PAGES; i++) {
		EXPECT_TRUE(page_has(keeper.p + i * page_size, 0x6b6565));
	}
	close(keeper.pagemap_fd);
}

TEST_HARNESS_MAIN
