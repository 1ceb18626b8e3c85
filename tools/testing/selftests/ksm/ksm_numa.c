// SPDX-License-Identifier: GPL-2.0
/*
 * merge_across_nodes: with 0, identical pages merge only with
 * pages on the same NUMA node; with 1 (the default), across nodes.  The
 * knob takes 0 or 1 and changes only while no KSM page exists (EBUSY).
 * Needs two NUMA nodes with memory (the test VM boots with numa=fake=2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NPAGES	16

FIXTURE(numa) {
	struct ksm_saved saved;
	struct ksm_worker w[3];
};

FIXTURE_SETUP(numa)
{
	KSM_FIXTURE_BEGIN();
	if (access("/sys/devices/system/node/node1", F_OK))
		SKIP(return, "needs two NUMA nodes");
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	ASSERT_TRUE(ksm_knob_exists("merge_across_nodes"))
		TH_LOG("no %smerge_across_nodes", KSM_SYSFS_DIR);
}

FIXTURE_TEARDOWN(numa)
{
	KSM_FIXTURE_END();
}

/*
 * kstrtoul(), at most 1.  An overflow is ERANGE upstream (the error of
 * kstrtoul() passes through) and EINVAL by our rule that every malformed
 * value is EINVAL: either is accepted.
 */
TEST_F(numa, knob_values)
{
	static const struct { const char *in; int err; } junk[] = {
		{ "2", -EINVAL }, { "-1", -EINVAL }, { "\n", -EINVAL },
		{ "abc", -EINVAL }, { "1abc", -EINVAL },
		{ "99999999999999999999", -ERANGE },
	};
	size_t i;

	EXPECT_EQ(0, ksm_write_str("merge_across_nodes", "0"));
	EXPECT_EQ(0, ksm_get("merge_across_nodes"));
	EXPECT_EQ(0, ksm_write_str("merge_across_nodes", "1\n"));
	EXPECT_EQ(1, ksm_get("merge_across_nodes"));
	for (i = 0; i < ARRAY_SIZE(junk); i++) {
		int err = ksm_write_str("merge_across_nodes", junk[i].in);

		if (junk[i].err == -ERANGE && err == -EINVAL)
			err = -ERANGE;
		EXPECT_EQ(junk[i].err, err) TH_LOG("\"%s\"", junk[i].in);
		EXPECT_EQ(1, ksm_get("merge_across_nodes"));
	}
}

/* The node of every page of @w is @node (move_pages() with no targets). */
static bool on_node(struct ksm_worker *w, int node)
{
	void *pages[NPAGES];
	int status[NPAGES];
	size_t i;

	for (i = 0; i < w->npages; i++)
		pages[i] = w->addr + i * page_size;
	if (syscall(SYS_move_pages, w->pid, w->npages, pages, NULL, status, 0))
		return false;
	for (i = 0; i < w->npages; i++)
		if (status[i] != node)
			return false;
	return true;
}

/*
 * Workers 0 and 2 on node 0, worker 1 on node 1, all alike: with
 * merge_across_nodes=0 only 0 and 2 merge; with 1, all three.
 */
TEST_F_TIMEOUT(numa, merge_per_node, KSM_TEST_TIMEOUT)
{
	struct same_frames all = { self->w, 3, 0, NPAGES };
	struct ksm_worker pair[2];
	struct same_frames node0 = { pair, 2, 0, NPAGES };
	uint64_t *tags;
	size_t i;

	ASSERT_EQ(0, ksm_set("merge_across_nodes", 0));
	tags = make_tags(NPAGES, 0x40de);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start_node(&self->w[0], tags, NPAGES, 0));
	ASSERT_EQ(0, worker_start_node(&self->w[1], tags, NPAGES, 1));
	ASSERT_EQ(0, worker_start_node(&self->w[2], tags, NPAGES, 0));
	free(tags);
	ASSERT_TRUE(on_node(&self->w[0], 0));
	ASSERT_TRUE(on_node(&self->w[1], 1));
	ASSERT_TRUE(on_node(&self->w[2], 0));

	pair[0] = self->w[0];
	pair[1] = self->w[2];
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &node0, KSM_WAIT_SECS))
		TH_LOG("pages on the same node were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	for (i = 0; i < NPAGES; i++) {
		EXPECT_NE(worker_pfn(&self->w[0], i), worker_pfn(&self->w[1], i))
			TH_LOG("page %zu merged across nodes", i);
	}
	EXPECT_TRUE(on_node(&self->w[1], 1));

	/* Not while KSM pages exist. */
	EXPECT_EQ(-EBUSY, ksm_set("merge_across_nodes", 1));
	EXPECT_EQ(0, ksm_get("merge_across_nodes"));

	ASSERT_EQ(0, ksm_set("run", 2));
	ASSERT_EQ(0, ksm_set("merge_across_nodes", 1));
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &all, KSM_WAIT_SECS))
		TH_LOG("merge_across_nodes=1: pages of two nodes not merged");
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, worker_check(&self->w[i]));
	}
}

TEST_HARNESS_MAIN
