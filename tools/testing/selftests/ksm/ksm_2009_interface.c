// SPDX-License-Identifier: GPL-2.0
/*
 * The two files of the original 2009 KSM interface (upstream has
 * dropped them, so this program fails on an upstream kernel):
 *
 *   kernel_pages_allocated  read-only: the number of KSM pages now, that
 *                           is pages_shared;
 *   max_kernel_pages        writable: at most this many KSM pages are
 *                           created, 0 (the default) for no limit.  At the
 *                           limit pages can still join existing KSM pages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

FIXTURE(kpages) {
	struct ksm_saved saved;
	struct ksm_worker w[3];
};

FIXTURE_SETUP(kpages)
{
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	ASSERT_TRUE(ksm_knob_exists("kernel_pages_allocated"))
		TH_LOG("no %skernel_pages_allocated", KSM_SYSFS_DIR);
	ASSERT_TRUE(ksm_knob_exists("max_kernel_pages"))
		TH_LOG("no %smax_kernel_pages", KSM_SYSFS_DIR);
}

FIXTURE_TEARDOWN(kpages)
{
	KSM_FIXTURE_END();
}

TEST_F(kpages, files_and_values)
{
	static const struct { const char *in; unsigned long val; } good[] = {
		{ "0", 0 }, { "1", 1 }, { "+7", 7 }, { "8\n", 8 },
		{ "4294967295", 4294967295UL }, { "0\n", 0 },
	};
	static const char * const junk[] = {
		"\n", "-1", "abc", "12abc", "0x10", " 5",
		"99999999999999999999999",
	};
	struct stat st;
	int fd;
	size_t i;

	ASSERT_EQ(0, stat(KSM_SYSFS_DIR "kernel_pages_allocated", &st));
	EXPECT_EQ(0444, st.st_mode & 0777);
	ASSERT_EQ(0, stat(KSM_SYSFS_DIR "max_kernel_pages", &st));
	EXPECT_EQ(0644, st.st_mode & 0777);

	/* Nothing is merged after run=2. */
	EXPECT_EQ(0, ksm_get("kernel_pages_allocated"));
	fd = open(KSM_SYSFS_DIR "kernel_pages_allocated", O_WRONLY);
	EXPECT_GT(0, fd);
	if (fd >= 0)
		close(fd);

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		EXPECT_EQ(0, ksm_write_str("max_kernel_pages", good[i].in))
			TH_LOG("\"%s\" refused", good[i].in);
		EXPECT_EQ(good[i].val, ksm_get("max_kernel_pages"))
			TH_LOG("after \"%s\"", good[i].in);
	}
	ASSERT_EQ(0, ksm_set("max_kernel_pages", 9));
	for (i = 0; i < ARRAY_SIZE(junk); i++) {
		EXPECT_EQ(-EINVAL, ksm_write_str("max_kernel_pages", junk[i]))
			TH_LOG("\"%s\"", junk[i]);
		EXPECT_EQ(9, ksm_get("max_kernel_pages"));
	}
}

/* The default is 0: no limit. */
TEST_F(kpages, default_is_unlimited)
{
	EXPECT_EQ(0, self->saved.value[KNOB_MAX_KERNEL_PAGES])
		TH_LOG("max_kernel_pages was %lu when the test started",
		       self->saved.value[KNOB_MAX_KERNEL_PAGES]);
}

/* Number of pages [0, n) where workers a and b share a frame. */
static size_t count_shared(struct ksm_worker *a, struct ksm_worker *b,
			   size_t n)
{
	size_t i, nr = 0;

	for (i = 0; i < n; i++)
		if (worker_pfn(a, i) && worker_pfn(a, i) == worker_pfn(b, i))
			nr++;
	return nr;
}

/*
 * With a limit of 4, two processes alike in 16 pages get exactly 4 KSM
 * pages; a third joins those 4 without creating more; lifting the limit
 * merges the rest.  kernel_pages_allocated follows pages_shared throughout.
 */
TEST_F_TIMEOUT(kpages, limit_stops_new_ksm_pages, KSM_TEST_TIMEOUT)
{
	const size_t n = 16, limit = 4;
	struct same_frames all = { self->w, 2, 0, n };
	struct ksm_counters c;
	uint64_t *tags;
	size_t i, joined;

	ASSERT_EQ(0, ksm_set("max_kernel_pages", limit));
	tags = make_tags(n, 0x2009);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w[0], tags, n));
	ASSERT_EQ(0, worker_start(&self->w[1], tags, n));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2 * KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_EQ(limit, count_shared(&self->w[0], &self->w[1], n));
	EXPECT_EQ(limit, c.shared);
	EXPECT_EQ(limit, c.sharing);
	EXPECT_EQ(c.shared, ksm_get("kernel_pages_allocated"));

	/* A third process can join the existing KSM pages. */
	ASSERT_EQ(0, worker_start(&self->w[2], tags, n));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2 * KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	joined = 0;
	for (i = 0; i < n; i++)
		if (worker_pfn(&self->w[2], i) &&
		    worker_pfn(&self->w[2], i) == worker_pfn(&self->w[0], i))
			joined++;
	EXPECT_EQ(limit, joined);
	EXPECT_EQ(limit, c.shared);
	EXPECT_EQ(2 * limit, c.sharing);
	EXPECT_EQ(c.shared, ksm_get("kernel_pages_allocated"));

	/* No limit: everything merges. */
	ASSERT_EQ(0, ksm_set("max_kernel_pages", 0));
	ASSERT_EQ(0, ksm_set("run", 1));
	all.nr_workers = 3;
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &all, KSM_WAIT_SECS))
		TH_LOG("max_kernel_pages=0: not everything merged");
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_EQ(n, c.shared);
	EXPECT_EQ(c.shared, ksm_get("kernel_pages_allocated"));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, worker_check(&self->w[i]));
	}

	/* run=2 frees them all. */
	ASSERT_EQ(0, ksm_set("run", 2));
	EXPECT_EQ(0, ksm_get("kernel_pages_allocated"));
	free(tags);
}

TEST_HARNESS_MAIN
