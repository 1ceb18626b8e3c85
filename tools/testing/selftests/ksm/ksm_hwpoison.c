// SPDX-License-Identifier: GPL-2.0
/*
 * Memory failure on a KSM page (CONFIG_MEMORY_FAILURE, MADV_HWPOISON and
 * MADV_SOFT_OFFLINE, root).  Three processes share one KSM page; one of
 * them poisons it:
 *
 *   - the poisoner dies of SIGBUS at once;
 *   - with vm.memory_failure_early_kill=1, so do the others, found by
 *     collect_procs_ksm();
 *   - with early kill off, the others live until they touch the page, and
 *     then die of SIGBUS (their mappings were unmapped through
 *     rmap_walk_ksm()).
 *
 * Unless a healthy copy of the content exists: then no one dies.
 *
 *   - A duplicate KSM page of the same content (max_page_sharing made
 *     it): every mapping moves to a copy of it, even with early kill.
 *   - A clean swap cache page: its swap slot holds the content, and the
 *     next read brings it back from there.
 *
 * Whatever happened, the poisoned frame is never mapped again: new pages
 * of its content merge elsewhere.
 *
 * Soft offline migrates a KSM page instead: every sharer follows it to a
 * new frame, the content stays, the old frame is withdrawn.
 *
 * Every test poisons a fresh page of its own: a poisoned frame never
 * returns to the allocator, so no other test can meet it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#ifndef MADV_HWPOISON
#define MADV_HWPOISON		100
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE	101
#endif

#define NPAGES		2
#define NWORKERS	3
#define NFRESH		2	/* more workers, started after a poisoning */
#define EARLY_KILL	"/proc/sys/vm/memory_failure_early_kill"
#define SWAP_SIZE	(16UL << 20)
#define SWAP_ROUNDS	10

#define KPF_DIRTY	4
#define KPF_SWAPCACHE	13

FIXTURE(hwpoison) {
	struct ksm_saved saved;
	struct ksm_worker w[NWORKERS + NFRESH];
	int early_kill;		/* saved sysctl, -1 if unknown */
	int pagemap_fd;		/* ours */
	char *map[2];		/* ours, unmapped by the teardown */
	size_t map_len[2];
	char loop_dev[32];	/* our swap device, "" if none */
};

static int read_early_kill(void)
{
	int val = -1;
	FILE *f = fopen(EARLY_KILL, "r");

	if (f) {
		if (fscanf(f, "%d", &val) != 1)
			val = -1;
		fclose(f);
	}
	return val;
}

static int write_early_kill(int val)
{
	FILE *f = fopen(EARLY_KILL, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%d\n", val) < 0 ? -EIO : 0;
	if (fclose(f))
		ret = -errno;
	return ret;
}

FIXTURE_SETUP(hwpoison)
{
	self->early_kill = -1;
	self->pagemap_fd = -1;
	self->map[0] = self->map[1] = NULL;
	self->loop_dev[0] = '\0';
	KSM_FIXTURE_BEGIN();
	self->early_kill = read_early_kill();
	if (self->early_kill < 0)
		SKIP(return, "no %s (CONFIG_MEMORY_FAILURE)", EARLY_KILL);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	self->pagemap_fd = pagemap_open(0);
	ASSERT_LE(0, self->pagemap_fd);
}

FIXTURE_TEARDOWN(hwpoison)
{
	int i;

	for (i = 0; i < NWORKERS + NFRESH; i++)
		worker_stop(&self->w[i]);
	for (i = 0; i < 2; i++)
		if (self->map[i])
			munmap(self->map[i], self->map_len[i]);
	if (self->pagemap_fd >= 0)
		close(self->pagemap_fd);
	if (loop_swap_off(self->loop_dev))
		TH_LOG("taking down the swap on %s failed", self->loop_dev);
	if (self->early_kill >= 0)
		write_early_kill(self->early_kill);
	ksm_restore(&self->saved);
}

/* @n workers alike, merged; page 0 is the one to poison. */
static void merge_all(struct __test_metadata *_metadata,
		      struct ksm_worker *w, int n, uint64_t base)
{
	struct same_frames sf = { w, n, 0, NPAGES };
	uint64_t *tags = make_tags(NPAGES, base);
	int i;

	ASSERT_NE(NULL, tags);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, worker_start(&w[i], tags, NPAGES));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_TRUE(worker_all_ksm(&w[0]));
}

/*
 * How @w ended: the signal that killed it, 0 for a clean exit, -1 if it
 * is still alive after @wait_s seconds (then it is left running).
 */
static int how_it_died(struct ksm_worker *w, int wait_s)
{
	unsigned long deadline = now_ms() + wait_s * 1000UL;
	int status;
	pid_t ret;

	do {
		ret = waitpid(w->pid, &status, WNOHANG);
		if (ret == w->pid) {
			close(w->cmd_fd);
			close(w->reply_fd);
			close(w->pagemap_fd);
			w->pid = 0;
			return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		}
		usleep(20000);
	} while (now_ms() < deadline);
	return -1;
}

/*
 * Stop ksmd between two passes, so that the next one starts with the mm
 * registered first: a pass ends a batch, and ksmd then sleeps 2 s.
 */
static void stop_between_passes(struct __test_metadata *_metadata)
{
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 2000));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(1, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
}

static void poison(struct __test_metadata *_metadata,
		   FIXTURE_DATA(hwpoison) *self, bool early, uint64_t base)
{
	struct same_frames fresh = { self->w + NWORKERS, NFRESH, 0, 1 };
	uint64_t *tags = make_tags(NPAGES, base + 0x80);
	unsigned long pfn;
	int i, ret;

	ASSERT_EQ(0, write_early_kill(early));
	/* Registered first, so first in every pass: see below. */
	ASSERT_NE(NULL, tags);
	for (i = NWORKERS; i < NWORKERS + NFRESH; i++)
		ASSERT_EQ(0, worker_start(&self->w[i], tags, NPAGES));
	free(tags);
	merge_all(_metadata, self->w, NWORKERS, base);
	pfn = worker_pfn(&self->w[0], 0);
	stop_between_passes(_metadata);

	/* The poisoner does not come back from madvise(). */
	ret = worker_madvise(&self->w[0], 0, 1, MADV_HWPOISON);
	EXPECT_EQ(-EPIPE, ret) TH_LOG("madvise(MADV_HWPOISON) returned %d", ret);
	EXPECT_EQ(SIGBUS, how_it_died(&self->w[0], 10));
	EXPECT_TRUE(kpageflags(pfn) & (1ULL << KPF_HWPOISON))
		TH_LOG("frame %lu not marked poisoned", pfn);

	for (i = 1; i < NWORKERS; i++) {
		if (early) {
			/* Killed without touching anything. */
			EXPECT_EQ(SIGBUS, how_it_died(&self->w[i], 10))
				TH_LOG("worker %d not killed early", i);
			continue;
		}
		/* Alive, and no longer mapping the poisoned frame ... */
		EXPECT_EQ(-1, how_it_died(&self->w[i], 1));
		EXPECT_NE(pfn, worker_pfn(&self->w[i], 0));
	}

	if (!early) {
		/*
		 * The two left still have items of the KSM page, as ksmd
		 * has not met their pages since, and the fresh workers come
		 * first in the next pass: their new pages of its content
		 * must merge, but never into the poisoned frame.
		 */
		for (i = NWORKERS; i < NWORKERS + NFRESH; i++)
			ASSERT_EQ(0, worker_write(&self->w[i], 0, base));
		ASSERT_EQ(0, ksm_set("run", 1));
		ASSERT_EQ(0, ksm_wait_for(frames_shared, &fresh, KSM_WAIT_SECS));
		ASSERT_EQ(0, ksm_set("run", 0));
		EXPECT_NE(pfn, worker_pfn(&self->w[NWORKERS], 0))
			TH_LOG("new pages merged into the poisoned frame");
	}

	/* ... until they read the page. */
	for (i = 1; !early && i < NWORKERS; i++) {
		ret = worker_check(&self->w[i]);
		EXPECT_EQ(-EPIPE, ret) TH_LOG("worker %d read the poisoned page: %d",
					      i, ret);
		EXPECT_EQ(SIGBUS, how_it_died(&self->w[i], 10));
	}
}

TEST_F_TIMEOUT(hwpoison, late_kill_on_access, KSM_TEST_TIMEOUT)
{
	poison(_metadata, self, false, 0x4a0000 + getpid() * 0x100ULL);
}

TEST_F_TIMEOUT(hwpoison, early_kill_of_every_sharer, KSM_TEST_TIMEOUT)
{
	poison(_metadata, self, true, 0x4b0000 + getpid() * 0x100ULL);
}

static bool two_full_pages(void *arg)
{
	unsigned long *want = arg;
	struct ksm_counters c;

	return !ksm_read_counters(&c) && c.shared == want[0] &&
	       c.sharing == want[1];
}

/*
 * max_page_sharing 2, and four pages of one content, two in each of two
 * workers: two KSM pages of that content, a duplicate of each other.
 * Poisoning one moves its mappings to a copy of the other: no one dies,
 * even with early kill; every page reads back and is still merged, the
 * counters do not change, and no page maps the poisoned frame, then or
 * after ksmd merges more of that content.
 */
TEST_F_TIMEOUT(hwpoison, duplicate_spares_every_sharer, KSM_TEST_TIMEOUT)
{
	uint64_t tag = 0x4d0000 + getpid() * 0x100ULL;
	uint64_t tags[NPAGES] = { tag, tag };
	unsigned long want[2] = { 2, 2 }, pfns[2 * NPAGES], bad;
	struct ksm_counters before, after;
	int i, j, ret, frames;

	ASSERT_EQ(0, ksm_set("max_page_sharing", 2));
	ASSERT_EQ(0, write_early_kill(1));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, worker_start(&self->w[i], tags, NPAGES));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(two_full_pages, want, KSM_WAIT_SECS))
		TH_LOG("four pages alike did not make two full KSM pages");
	ASSERT_EQ(0, ksm_stop_and_read(&before));

	bad = worker_pfn(&self->w[0], 0);
	ASSERT_TRUE(worker_all_ksm(&self->w[0]));
	ret = worker_madvise(&self->w[0], 0, 1, MADV_HWPOISON);
	EXPECT_EQ(0, ret) TH_LOG("madvise(MADV_HWPOISON): %s", strerror(-ret));
	EXPECT_TRUE(kpageflags(bad) & (1ULL << KPF_HWPOISON))
		TH_LOG("frame %lu not marked poisoned", bad);

	for (i = 0; i < 2; i++) {
		EXPECT_EQ(-1, how_it_died(&self->w[i], 1))
			TH_LOG("worker %d was killed", i);
		for (j = 0; j < NPAGES; j++) {
			pfns[i * NPAGES + j] = worker_pfn(&self->w[i], j);
			EXPECT_NE(bad, pfns[i * NPAGES + j]);
		}
		EXPECT_TRUE(worker_all_ksm(&self->w[i]))
			TH_LOG("worker %d: not all its pages merged", i);
		EXPECT_EQ(0, worker_check(&self->w[i]));
	}
	/* Four mappings of two frames, as before. */
	for (i = 0, frames = 0; i < 2 * NPAGES; i++) {
		for (j = 0; j < i && pfns[j] != pfns[i]; j++)
			;
		frames += j == i;
	}
	EXPECT_EQ(2, frames);
	ASSERT_EQ(0, ksm_read_counters(&after));
	EXPECT_EQ(before.shared, after.shared);
	EXPECT_EQ(before.sharing, after.sharing);

	/* More of that content merges, never into the poisoned frame. */
	ASSERT_EQ(0, worker_start(&self->w[2], tags, NPAGES));
	want[0] = want[1] = 3;
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(two_full_pages, want, KSM_WAIT_SECS))
		TH_LOG("two more pages of that content did not merge");
	for (j = 0; j < NPAGES; j++)
		EXPECT_NE(bad, worker_pfn(&self->w[2], j));
	for (i = 0; i < NWORKERS; i++)
		EXPECT_EQ(0, worker_check(&self->w[i]));
}

/*
 * The same in an mlocked area, as QEMU's guest RAM is with mem-lock: the
 * mappings move without leaving the poisoned page referenced (munlock
 * batches hold references), or memory_failure() would call the recovery
 * failed (EBUSY) and, for a real error, kill the process.
 */
TEST_F_TIMEOUT(hwpoison, duplicate_spares_mlocked_sharers, KSM_TEST_TIMEOUT)
{
	struct own_range r = { self->pagemap_fd, NULL, 0, 2 * NPAGES };
	unsigned long want[2] = { 2, 2 }, bad;
	uint64_t tag = 0x4f0000 + getpid() * 0x100ULL;
	char *p;
	int i;

	ASSERT_EQ(0, ksm_set("max_page_sharing", 2));
	p = map_same(2 * NPAGES, tag);
	ASSERT_NE(NULL, p);
	self->map[0] = p;
	self->map_len[0] = 2 * NPAGES * page_size;
	r.p = p;
	ASSERT_EQ(0, mlock(p, 2 * NPAGES * page_size));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(two_full_pages, want, KSM_WAIT_SECS))
		TH_LOG("four pages alike did not make two full KSM pages");
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_FALSE(own_one_frame(&r));

	bad = pagemap_pfn(self->pagemap_fd, p);
	ASSERT_EQ(0, madvise(p, page_size, MADV_HWPOISON))
		TH_LOG("madvise(MADV_HWPOISON): %s", strerror(errno));
	for (i = 0; i < 2 * NPAGES; i++) {
		EXPECT_TRUE(page_has(p + i * page_size, tag));
		EXPECT_NE(bad, pagemap_pfn(self->pagemap_fd,
					   p + i * page_size));
	}
	EXPECT_EQ(0, munlock(p, 2 * NPAGES * page_size));
}

/*
 * NPAGES of this process's own, alike and merged, as self->map[@slot];
 * NULL if they did not merge.
 */
static char *merged_pages(FIXTURE_DATA(hwpoison) *self, int slot,
			  uint64_t tag)
{
	struct own_range r = { self->pagemap_fd, NULL, 0, NPAGES };
	char *p = map_same(NPAGES, tag);

	if (!p)
		return NULL;
	self->map[slot] = p;
	self->map_len[slot] = NPAGES * page_size;
	r.p = p;
	if (ksm_set("run", 1) ||
	    ksm_wait_for(own_one_frame, &r, KSM_WAIT_SECS) ||
	    ksm_set("run", 0))
		return NULL;
	return p;
}

/*
 * A KSM page mapped by this process alone, swapped out by MADV_PAGEOUT to
 * a device whose writes complete later (a loop device, as a disk), and
 * read back before reclaim frees it: the swap cache's KSM page is mapped
 * again, and clean, its swap slot a copy of it.  Poisoned, its mapping
 * becomes a swap entry again and the next read brings the content back
 * from the slot: no SIGBUS.  New pages of that content merge, but not
 * into the poisoned frame.
 */
TEST_F_TIMEOUT(hwpoison, swap_slot_spares_the_sharer, KSM_TEST_TIMEOUT)
{
	uint64_t tag = 0x4e0000 + getpid() * 0x100ULL;
	unsigned long kpfn = 0, pfn;
	uint64_t flags = 0;
	int ret, round;
	char *a = NULL;

	if (access("/dev/loop-control", F_OK))
		SKIP(return, "no /dev/loop-control (CONFIG_BLK_DEV_LOOP)");
	ret = loop_swap_on(SWAP_SIZE, self->loop_dev, sizeof(self->loop_dev));
	ASSERT_EQ(0, ret) TH_LOG("swap on a loop device: %s", strerror(-ret));

	/* Rounds, in case a write ends before reclaim looks at the page. */
	for (round = 0; round < SWAP_ROUNDS; round++) {
		if (a)
			munmap(a, NPAGES * page_size);
		self->map[0] = NULL;
		a = merged_pages(self, 0, tag);
		ASSERT_NE(NULL, a) TH_LOG("two pages alike did not merge");
		kpfn = pagemap_pfn(self->pagemap_fd, a);

		/* One mapping left: MADV_PAGEOUT passes shared pages by. */
		ASSERT_EQ(0, madvise(a + page_size, page_size, MADV_DONTNEED));
		ASSERT_TRUE(page_out(self->pagemap_fd, a))
			TH_LOG("MADV_PAGEOUT did not swap the KSM page out");
		ASSERT_TRUE(page_has(a, tag));
		flags = kpageflags(kpfn);
		if (pagemap_pfn(self->pagemap_fd, a) == kpfn &&
		    (flags & (1ULL << KPF_SWAPCACHE)) &&
		    !(flags & (1ULL << KPF_DIRTY)))
			break;
	}
	ASSERT_LT(round, SWAP_ROUNDS)
		TH_LOG("never mapped back clean from the swap cache (flags %#llx)",
		       (unsigned long long)flags);
	TH_LOG("mapped back clean from the swap cache in round %d", round);

	ASSERT_EQ(0, madvise(a, page_size, MADV_HWPOISON))
		TH_LOG("madvise(MADV_HWPOISON): %s", strerror(errno));
	EXPECT_TRUE(kpageflags(kpfn) & (1ULL << KPF_HWPOISON));
	EXPECT_TRUE(page_has(a, tag)) TH_LOG("the content did not come back");
	pfn = pagemap_pfn(self->pagemap_fd, a);
	EXPECT_NE(kpfn, pfn);
	EXPECT_NE(0, pfn);

	/* No page of that content may merge into the frame again. */
	a = merged_pages(self, 1, tag);
	ASSERT_NE(NULL, a) TH_LOG("two pages alike did not merge");
	EXPECT_NE(kpfn, pagemap_pfn(self->pagemap_fd, a))
		TH_LOG("new pages merged into the poisoned frame");
}

/* Soft offline: the KSM page moves, still one frame for all, intact. */
TEST_F_TIMEOUT(hwpoison, soft_offline_migrates, KSM_TEST_TIMEOUT)
{
	struct same_frames sf = { self->w, NWORKERS, 0, NPAGES };
	unsigned long old, new;
	int i;

	merge_all(_metadata, self->w, NWORKERS, 0x4c0000 + getpid() * 0x100ULL);
	old = worker_pfn(&self->w[0], 0);
	ASSERT_EQ(0, worker_madvise(&self->w[1], 0, 1, MADV_SOFT_OFFLINE));
	new = worker_pfn(&self->w[0], 0);
	EXPECT_NE(old, new);
	EXPECT_TRUE(frames_shared(&sf)) TH_LOG("soft offline split the sharers");
	EXPECT_TRUE(worker_all_ksm(&self->w[0]));
	EXPECT_TRUE(kpageflags(old) & (1ULL << KPF_HWPOISON));
	for (i = 0; i < NWORKERS; i++) {
		EXPECT_EQ(0, worker_check(&self->w[i]));
	}
	/* Still a KSM page that unmerges cleanly. */
	ASSERT_EQ(0, ksm_set("run", 2));
	for (i = 0; i < NWORKERS; i++) {
		EXPECT_EQ(0, worker_check(&self->w[i]));
	}
	EXPECT_NE(worker_pfn(&self->w[0], 0), worker_pfn(&self->w[1], 0));
}

TEST_HARNESS_MAIN
