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
#define EARLY_KILL	"/proc/sys/vm/memory_failure_early_kill"

FIXTURE(hwpoison) {
	struct ksm_saved saved;
	struct ksm_worker w[NWORKERS];
	int early_kill;		/* saved sysctl, -1 if unknown */
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
	const char *skip = ksm_skip_reason(true);

	memset(self->w, 0, sizeof(self->w));
	self->early_kill = -1;
	if (skip)
		SKIP(return, "%s", skip);
	self->early_kill = read_early_kill();
	if (self->early_kill < 0)
		SKIP(return, "no %s (CONFIG_MEMORY_FAILURE)", EARLY_KILL);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(hwpoison)
{
	int i;

	for (i = 0; i < NWORKERS; i++)
		worker_stop(&self->w[i]);
	if (self->early_kill >= 0)
		write_early_kill(self->early_kill);
	ksm_restore(&self->saved);
}

/* NWORKERS workers alike, merged; page 0 is the one to poison. */
static void merge_all(struct __test_metadata *_metadata,
		      struct ksm_worker *w, uint64_t base)
{
	struct same_frames sf = { w, NWORKERS, 0, NPAGES };
	uint64_t *tags = make_tags(NPAGES, base);
	int i;

	ASSERT_NE(NULL, tags);
	for (i = 0; i < NWORKERS; i++)
		ASSERT_EQ(0, worker_start(&w[i], tags, NPAGES));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_TRUE(kpageflags(worker_pfn(&w[0], 0)) & (1ULL << KPF_KSM));
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

static void poison(struct __test_metadata *_metadata,
		   FIXTURE_DATA(hwpoison) *self, bool early, uint64_t base)
{
	unsigned long pfn;
	int i, ret;

	ASSERT_EQ(0, write_early_kill(early));
	merge_all(_metadata, self->w, base);
	pfn = worker_pfn(&self->w[0], 0);

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
		/* ... until it reads the page. */
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

/* Soft offline: the KSM page moves, still one frame for all, intact. */
TEST_F_TIMEOUT(hwpoison, soft_offline_migrates, KSM_TEST_TIMEOUT)
{
	struct same_frames sf = { self->w, NWORKERS, 0, NPAGES };
	unsigned long old, new;
	int i;

	merge_all(_metadata, self->w, 0x4c0000 + getpid() * 0x100ULL);
	old = worker_pfn(&self->w[0], 0);
	ASSERT_EQ(0, worker_madvise(&self->w[1], 0, 1, MADV_SOFT_OFFLINE));
	new = worker_pfn(&self->w[0], 0);
	EXPECT_NE(old, new);
	EXPECT_TRUE(frames_shared(&sf)) TH_LOG("soft offline split the sharers");
	EXPECT_TRUE(kpageflags(new) & (1ULL << KPF_KSM));
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
