// SPDX-License-Identifier: GPL-2.0
/*
 * Memory hot-remove under KSM pages (CONFIG_MEMORY_HOTREMOVE).  A memory
 * block of node 1 that can go offline is brought back as ZONE_MOVABLE
 * (online_movable), where the pages of processes bound to node 1 land
 * first; KSM pages made there must migrate when the block goes offline
 * again: contents intact, still one frame for all sharers (or merged
 * again), and ksmd keeps working.  The block is onlined again at the end.
 *
 * Skips when no block of node 1 can be offlined in this machine.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define MEMDIR		"/sys/devices/system/memory/"
#define NODEDIR		"/sys/devices/system/node/node1/"
#define NPAGES		64

FIXTURE(hotplug) {
	struct ksm_saved saved;
	struct ksm_worker w[3];
	int block;		/* the block we took offline, -1 if none */
	bool offline;		/* and that is offline now */
	unsigned long block_pages;
};

static bool block_online(int block)
{
	char path[128], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), MEMDIR "memory%d/state", block);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return !strncmp(buf, "online", 6);
}

static int cmp_int_desc(const void *a, const void *b)
{
	return *(const int *)b - *(const int *)a;
}

/*
 * Offline the highest block of node 1 that lets itself be offlined; its
 * number, or -1.
 */
static int offline_some_block(void)
{
	int blocks[256], n = 0, i;
	struct dirent *de;
	DIR *dir = opendir(NODEDIR);

	if (!dir)
		return -1;
	while ((de = readdir(dir)) && n < (int)ARRAY_SIZE(blocks))
		if (sscanf(de->d_name, "memory%d", &blocks[n]) == 1)
			n++;
	closedir(dir);
	qsort(blocks, n, sizeof(blocks[0]), cmp_int_desc);
	for (i = 0; i < n; i++) {
		if (!block_online(blocks[i]))
			continue;
		if (!memory_block_state(blocks[i], "offline"))
			return blocks[i];
	}
	return -1;
}

FIXTURE_SETUP(hotplug)
{
	unsigned long bytes;
	FILE *f;

	self->block = -1;
	self->offline = false;
	KSM_FIXTURE_BEGIN();
	if (access(NODEDIR, F_OK))
		SKIP(return, "needs NUMA node 1");
	f = fopen(MEMDIR "block_size_bytes", "r");
	if (!f)
		SKIP(return, "no %s (CONFIG_MEMORY_HOTPLUG)", MEMDIR);
	ASSERT_EQ(1, fscanf(f, "%lx", &bytes));
	fclose(f);
	self->block_pages = bytes / page_size;
	ASSERT_EQ(0, ksm_prepare(1000, 10));

	self->block = offline_some_block();
	if (self->block < 0)
		SKIP(return, "no memory block of node 1 can be offlined");
	self->offline = true;
	/* Back as ZONE_MOVABLE: node 1's user pages go there first. */
	ASSERT_EQ(0, memory_block_state(self->block, "online_movable"));
	self->offline = false;
}

FIXTURE_TEARDOWN(hotplug)
{
	int i;

	for (i = 0; i < 3; i++)
		worker_stop(&self->w[i]);
	if (self->offline && memory_block_state(self->block, "online"))
		TH_LOG("memory%d stays offline", self->block);
	ksm_restore(&self->saved);
}

static size_t pages_in_block(FIXTURE_DATA(hotplug) *self,
			     struct ksm_worker *w)
{
	size_t i, n = 0;

	for (i = 0; i < NPAGES; i++)
		if (worker_pfn(w, i) / self->block_pages == (unsigned long)self->block)
			n++;
	return n;
}

TEST_F_TIMEOUT(hotplug, offline_under_ksm_pages, KSM_TEST_TIMEOUT)
{
	struct same_frames sf = { self->w, 2, 0, NPAGES };
	uint64_t *tags = make_tags(NPAGES, 0x40f000);
	unsigned long scans;
	size_t in;

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start_node(&self->w[0], tags, NPAGES, 1));
	ASSERT_EQ(0, worker_start_node(&self->w[1], tags, NPAGES, 1));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS));
	in = pages_in_block(self, &self->w[0]);
	TH_LOG("%zu of %d KSM pages in memory%d", in, NPAGES, self->block);
	ASSERT_LT(0, in) TH_LOG("no KSM page landed in the movable block");

	/* ksmd runs meanwhile; it must wait, not trip over the block. */
	ASSERT_EQ(0, memory_block_state(self->block, "offline"));
	self->offline = true;
	EXPECT_EQ(0, pages_in_block(self, &self->w[0]));
	EXPECT_EQ(0, pages_in_block(self, &self->w[1]));
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS))
		TH_LOG("not shared (nor merged again) after offlining");

	/* ksmd still scans, and still merges. */
	scans = ksm_get("full_scans");
	ASSERT_EQ(0, worker_start_node(&self->w[2], tags, NPAGES, 0));
	sf.nr_workers = 3;
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS))
		TH_LOG("a newcomer does not join after offlining");
	EXPECT_LT(scans, ksm_get("full_scans"));
	EXPECT_EQ(0, worker_check(&self->w[2]));

	ASSERT_EQ(0, memory_block_state(self->block, "online"));
	self->offline = false;
	EXPECT_EQ(0, worker_check(&self->w[0]));
	free(tags);
}

TEST_HARNESS_MAIN
