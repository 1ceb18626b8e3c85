// SPDX-License-Identifier: GPL-2.0
/*
 * smart_scan (6.7+): with smart_scan=1, ksmd skips for a growing number
 * of passes the pages that keep failing to merge, and counts them in
 * pages_skipped; with smart_scan=0 it looks at every page every pass.
 * Skipping must not stop new duplicates from merging.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NPAGES		64
/* Both kernels skip a page from about its 4th failed pass on. */
#define SKIP_SCANS	10

FIXTURE(smart) {
	struct ksm_saved saved;
	struct ksm_worker w[2];
};

FIXTURE_SETUP(smart)
{
	KSM_FIXTURE_BEGIN();
	if (!ksm_knob_exists("smart_scan"))
		SKIP(return, "no %ssmart_scan", KSM_SYSFS_DIR);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(smart)
{
	KSM_FIXTURE_END();
}

/* pages_skipped grows over SKIP_SCANS passes over @npages unique pages. */
static unsigned long skipped_over_scans(struct __test_metadata *_metadata,
					struct ksm_worker *w)
{
	unsigned long before, after;
	uint64_t *tags = make_tags(NPAGES, 0x5c0000);

	if (!tags)
		return ULONG_MAX;
	if (worker_start(w, tags, NPAGES)) {
		free(tags);
		return ULONG_MAX;
	}
	free(tags);
	before = ksm_get("pages_skipped");
	if (ksm_set("run", 1) || ksm_wait_scans(SKIP_SCANS, KSM_WAIT_SECS))
		return ULONG_MAX;
	if (ksm_set("run", 0))
		return ULONG_MAX;
	after = ksm_get("pages_skipped");
	TH_LOG("pages_skipped %lu -> %lu over %d scans of %d unique pages",
	       before, after, SKIP_SCANS, NPAGES);
	return after - before;
}

TEST_F_TIMEOUT(smart, unique_pages_skipped, KSM_TEST_TIMEOUT)
{
	unsigned long skipped;

	ASSERT_EQ(0, ksm_set("smart_scan", 1));
	skipped = skipped_over_scans(_metadata, &self->w[0]);
	ASSERT_NE(ULONG_MAX, skipped);
	EXPECT_LT(0, skipped);
	EXPECT_EQ(0, worker_check(&self->w[0]));
}

TEST_F_TIMEOUT(smart, off_means_no_skips, KSM_TEST_TIMEOUT)
{
	unsigned long skipped;

	ASSERT_EQ(0, ksm_set("smart_scan", 0));
	skipped = skipped_over_scans(_metadata, &self->w[0]);
	ASSERT_NE(ULONG_MAX, skipped);
	EXPECT_EQ(0, skipped);
}

/*
 * Pages skipped for failing to merge still merge once a duplicate turns
 * up: worker 1 copies worker 0's contents over its own unique pages.
 */
TEST_F_TIMEOUT(smart, new_duplicates_merge, KSM_TEST_TIMEOUT)
{
	struct same_frames sf = { self->w, 2, 0, NPAGES };
	uint64_t *tags0 = make_tags(NPAGES, 0x5d0000);
	uint64_t *tags1 = make_tags(NPAGES, 0x5e0000);
	unsigned long before;
	size_t i;

	ASSERT_NE(NULL, tags0);
	ASSERT_NE(NULL, tags1);
	ASSERT_EQ(0, ksm_set("smart_scan", 1));
	ASSERT_EQ(0, worker_start(&self->w[0], tags0, NPAGES));
	ASSERT_EQ(0, worker_start(&self->w[1], tags1, NPAGES));
	before = ksm_get("pages_skipped");
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(SKIP_SCANS, KSM_WAIT_SECS));
	ASSERT_LT(before, ksm_get("pages_skipped"))
		TH_LOG("nothing skipped: cannot test merging after skips");
	for (i = 0; i < NPAGES; i++)
		ASSERT_EQ(0, worker_write(&self->w[1], i, tags0[i]));
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS))
		TH_LOG("new duplicates of skipped pages were not merged");
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
	free(tags0);
	free(tags1);
}

TEST_HARNESS_MAIN
