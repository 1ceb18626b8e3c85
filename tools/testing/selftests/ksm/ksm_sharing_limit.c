// SPDX-License-Identifier: GPL-2.0
/*
 * max_page_sharing: no KSM page is mapped more often than the
 * limit; identical pages beyond it go to further KSM pages of the same
 * content (a chain of "dups").  The knob takes values of 2 and more, and
 * changes only while no KSM page exists (EBUSY otherwise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NPAGES		32
#define LIMIT		4

FIXTURE(sharing) {
	struct ksm_saved saved;
	struct ksm_worker w;
};

FIXTURE_SETUP(sharing)
{
	const char *skip = ksm_skip_reason(true);

	memset(&self->w, 0, sizeof(self->w));
	if (skip)
		SKIP(return, "%s", skip);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	ASSERT_TRUE(ksm_knob_exists("max_page_sharing"))
		TH_LOG("no %smax_page_sharing", KSM_SYSFS_DIR);
}

FIXTURE_TEARDOWN(sharing)
{
	worker_stop(&self->w);
	ksm_restore(&self->saved);
}

/*
 * kstrtoint() and a minimum of 2.  An overflow is ERANGE upstream (the
 * error of kstrtoint() passes through) and EINVAL by our rule that every
 * malformed value is EINVAL: either is accepted.
 */
TEST_F(sharing, knob_values)
{
	static const struct { const char *in; int err; } junk[] = {
		{ "1", -EINVAL }, { "0", -EINVAL }, { "-1", -EINVAL },
		{ "\n", -EINVAL }, { "abc", -EINVAL }, { "12abc", -EINVAL },
		{ "99999999999999999999", -ERANGE },
	};
	size_t i;

	EXPECT_EQ(0, ksm_write_str("max_page_sharing", "2"));
	EXPECT_EQ(2, ksm_get("max_page_sharing"));
	EXPECT_EQ(0, ksm_write_str("max_page_sharing", "1000\n"));
	EXPECT_EQ(1000, ksm_get("max_page_sharing"));
	EXPECT_EQ(0, ksm_write_str("max_page_sharing", "256"));
	for (i = 0; i < ARRAY_SIZE(junk); i++) {
		int err = ksm_write_str("max_page_sharing", junk[i].in);

		if (junk[i].err == -ERANGE && err == -EINVAL)
			err = -ERANGE;
		EXPECT_EQ(junk[i].err, err) TH_LOG("\"%s\"", junk[i].in);
		EXPECT_EQ(256, ksm_get("max_page_sharing"));
	}
}

static bool all_merged(void *arg)
{
	struct ksm_worker *w = arg;
	size_t i, j, with;

	for (i = 0; i < w->npages; i++) {
		unsigned long pfn = worker_pfn(w, i);

		if (!pfn)
			return false;
		for (with = 0, j = 0; j < w->npages; j++)
			with += worker_pfn(w, j) == pfn;
		if (with < 2)
			return false;
	}
	return true;
}

TEST_F_TIMEOUT(sharing, limit_splits_ksm_pages, KSM_TEST_TIMEOUT)
{
	unsigned long pfns[NPAGES];
	uint64_t tags[NPAGES];
	struct ksm_counters c;
	size_t i, j, frames = 0, with;

	ASSERT_EQ(0, ksm_set("max_page_sharing", LIMIT));
	for (i = 0; i < NPAGES; i++)
		tags[i] = 0x5a5a5a;
	ASSERT_EQ(0, worker_start(&self->w, tags, NPAGES));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_merged, &self->w, KSM_WAIT_SECS))
		TH_LOG("not every page was merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));

	/* While KSM pages exist the limit cannot change. */
	EXPECT_EQ(-EBUSY, ksm_set("max_page_sharing", 8));
	EXPECT_EQ(LIMIT, ksm_get("max_page_sharing"));

	ASSERT_EQ(0, ksm_stop_and_read(&c));
	worker_pfns(&self->w, pfns);
	for (i = 0; i < NPAGES; i++) {
		for (with = 0, j = 0; j < NPAGES; j++)
			with += pfns[j] == pfns[i];
		EXPECT_GE(LIMIT, with) TH_LOG("frame %lx mapped %zu times",
					      pfns[i], with);
		for (j = 0; j < i && pfns[j] != pfns[i]; j++)
			;
		frames += j == i;
	}
	EXPECT_EQ(NPAGES / LIMIT, frames);
	EXPECT_EQ(NPAGES / LIMIT, c.shared);
	EXPECT_EQ(NPAGES - NPAGES / LIMIT, c.sharing);
	EXPECT_EQ(1, ksm_get("stable_node_chains"));
	EXPECT_EQ(NPAGES / LIMIT, ksm_get("stable_node_dups"));
	EXPECT_EQ(0, worker_check(&self->w));

	/* After run=2 it can. */
	ASSERT_EQ(0, ksm_set("run", 2));
	EXPECT_EQ(0, ksm_set("max_page_sharing", 8));
	EXPECT_EQ(8, ksm_get("max_page_sharing"));
}

TEST_HARNESS_MAIN
