// SPDX-License-Identifier: GPL-2.0
/*
 * Per-process accounting, shown by fs/proc from the mm counters
 * KSM keeps: /proc/PID/ksm_stat (ksm_rmap_items, ksm_zero_pages,
 * ksm_merging_pages, ksm_process_profit) and /proc/PID/ksm_merging_pages.
 * The profit formula also bounds what KSM keeps per page: no more than
 * upstream's 64-byte rmap item, and a unique page at rest costs at most
 * 16 bytes of slab.  What KSM keeps for a process is charged to its
 * memory cgroup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>
#include <sys/mman.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NSAME		32
#define NUNIQ		16
#define NPAGES		(NSAME + NUNIQ)

FIXTURE(stat) {
	struct ksm_saved saved;
	struct ksm_worker w;
	struct ksm_worker keeper;	/* keeps ksmd scanning */
};

FIXTURE_SETUP(stat)
{
	const char *skip = ksm_skip_reason(true);

	memset(&self->w, 0, sizeof(self->w));
	memset(&self->keeper, 0, sizeof(self->keeper));
	if (skip)
		SKIP(return, "%s", skip);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(stat)
{
	worker_stop(&self->w);
	worker_stop(&self->keeper);
	ksm_restore(&self->saved);
}

static long read_merging_pages(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ksm_merging_pages", pid);
	return file_number(path);
}

struct stat_values {
	long rmap_items, zero_pages, merging_pages, profit;
};

static int read_stat(pid_t pid, struct stat_values *v)
{
	int ret;

	ret = read_ksm_stat(pid, "ksm_rmap_items", &v->rmap_items);
	if (!ret)
		ret = read_ksm_stat(pid, "ksm_zero_pages", &v->zero_pages);
	if (!ret)
		ret = read_ksm_stat(pid, "ksm_merging_pages", &v->merging_pages);
	if (!ret)
		ret = read_ksm_stat(pid, "ksm_process_profit", &v->profit);
	return ret;
}

static bool first_nsame_merged(void *arg)
{
	struct ksm_worker *w = arg;
	unsigned long pfn = worker_pfn(w, 0);
	size_t i;

	if (!pfn)
		return false;
	for (i = 1; i < NSAME; i++)
		if (worker_pfn(w, i) != pfn)
			return false;
	return true;
}

TEST_F_TIMEOUT(stat, counts_follow_merging, KSM_TEST_TIMEOUT)
{
	static const uint64_t keeper_tags[] = { 0x4ee9e41, 0x4ee9e42 };
	struct stat_values v;
	uint64_t tags[NPAGES];
	long cost;
	size_t i;

	for (i = 0; i < NPAGES; i++)
		tags[i] = i < NSAME ? 0x57a7 : 0x57a8 + i;
	ASSERT_EQ(0, worker_start(&self->w, tags, NPAGES));
	ASSERT_EQ(0, read_stat(self->w.pid, &v))
		TH_LOG("no /proc/%d/ksm_stat or a line of it", self->w.pid);
	EXPECT_EQ(0, v.merging_pages);

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(first_nsame_merged, &self->w, KSM_WAIT_SECS))
		TH_LOG("identical pages were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));

	ASSERT_EQ(0, read_stat(self->w.pid, &v));
	EXPECT_EQ(NSAME, v.merging_pages);
	EXPECT_EQ(NSAME, read_merging_pages(self->w.pid));
	EXPECT_EQ(NPAGES, v.rmap_items);
	EXPECT_EQ(0, v.zero_pages);
	/*
	 * profit = (merging + zero) * PAGE_SIZE - what KSM keeps: a record
	 * for each tracked page (9 bytes on 64-bit) and a map for each
	 * mapping of a KSM page (24 bytes).  Never more than upstream's 64
	 * bytes a tracked page.
	 */
	ASSERT_LT(0, v.rmap_items);
	cost = (v.merging_pages + v.zero_pages) * (long)page_size - v.profit;
	if (sizeof(long) == 8)
		EXPECT_EQ(v.rmap_items * 9 + v.merging_pages * 24, cost)
			TH_LOG("profit %ld is not of the documented form",
			       v.profit);
	EXPECT_LT(0, cost);
	EXPECT_GE(64 * v.rmap_items, cost)
		TH_LOG("%ld bytes for %ld tracked pages", cost, v.rmap_items);

	/*
	 * Unmerged and no longer mergeable: ksmd drops it all.  (Then the
	 * worker's mm may leave KSM's list; another process keeps ksmd's full
	 * scans going.)
	 */
	ASSERT_EQ(0, worker_start(&self->keeper, keeper_tags, 2));
	ASSERT_EQ(0, worker_madvise(&self->w, 0, NPAGES, MADV_UNMERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_EQ(0, read_stat(self->w.pid, &v));
	EXPECT_EQ(0, v.merging_pages);
	EXPECT_EQ(0, read_merging_pages(self->w.pid));
	EXPECT_EQ(0, v.rmap_items);
	EXPECT_EQ(0, v.profit);
	EXPECT_EQ(0, worker_check(&self->w));
}

/* Slab of /proc/meminfo, in kB. */
static long slab_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * Objects in use in slab cache @name, from /proc/slabinfo after a shrink
 * (which also empties KASAN's quarantine of the cache); -1 if slabinfo
 * does not list it (SLUB_TINY has no slabinfo; a merged cache goes by
 * another name).
 */
static long slab_objects(const char *name)
{
	char path[128], line[512], cache[64];
	long active, found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", name);
	write_file(path, "1");
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", cache, &active) == 2 &&
		    !strcmp(cache, name))
			found = active;
	fclose(f);
	return found;
}

/* Items in use (none between passes, see linked_maps_leave_no_holes). */
static long item_objects(void)
{
	return slab_objects("ksm_item");
}

#define REST_PAGES	65536	/* 256 MiB */
#define XA_NODE_BYTES	576	/* struct xa_node, 64 slots, on 64-bit */

/*
 * A page ksmd tracks that is in no tree (unique, between passes) costs a
 * record: 9 bytes on 64-bit, a slot of an xarray and its share of the
 * node.  Upstream keeps a 64-byte rmap item for it.  Measured over
 * REST_PAGES unique pages, between two passes (one batch covers a whole
 * pass, and ksmd sleeps 15 s after it, so the pass's unstable tree has
 * been folded back into records when we look): where /proc/slabinfo
 * lists our caches, as objects of radix_tree_node (the xarray's nodes)
 * and of ksm_item (none is left); else as the growth
 * of Slab, which a debug allocator would swell (KASAN's quarantine, red
 * zones).
 */
TEST_F_TIMEOUT(stat, unique_pages_cost_a_record, KSM_TEST_TIMEOUT)
{
	uint64_t *tags = make_tags(REST_PAGES, 0x7e57000);
	long slab0, slab1, nodes0, nodes1, items0, items1, per_page, profit;
	struct stat_values v;
	char buf[32];

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w, tags, REST_PAGES));
	free(tags);
	/* A pass at once, another 15 s later, and 15 s to look after it. */
	ASSERT_EQ(0, ksm_set("pages_to_scan", 4 * REST_PAGES));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 15000));
	nodes0 = slab_objects("radix_tree_node");
	items0 = item_objects();
	slab0 = slab_kb();
	ASSERT_LT(0, slab0);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	slab1 = slab_kb();
	nodes1 = slab_objects("radix_tree_node");
	items1 = item_objects();
	ASSERT_LT(0, ksm_read_str("general_profit", buf, sizeof(buf)));
	profit = strtol(buf, NULL, 10);
	ASSERT_EQ(0, ksm_set("run", 0));

	ASSERT_EQ(0, read_stat(self->w.pid, &v));
	EXPECT_EQ(REST_PAGES, v.rmap_items);
	EXPECT_EQ(0, v.merging_pages);
	if (nodes0 >= 0 && items0 >= 0 && nodes1 >= 0 && items1 >= 0) {
		per_page = (nodes1 - nodes0) * XA_NODE_BYTES / REST_PAGES;
		TH_LOG("xa_nodes %ld -> %ld, items %ld -> %ld: %ld B a page",
		       nodes0, nodes1, items0, items1, per_page);
		EXPECT_GE(REST_PAGES / 64, items1 - items0);
	} else {
		per_page = (slab1 - slab0) * 1024 / REST_PAGES;
		TH_LOG("slab %ld -> %ld kB: %ld B a page", slab0, slab1,
		       per_page);
	}
	TH_LOG("general_profit %ld", profit);
	EXPECT_GE(16, per_page);
	/* What KSM says the records cost: 9 bytes a page on 64-bit. */
	if (sizeof(long) == 8)
		EXPECT_EQ(-9L * REST_PAGES, v.profit);
	EXPECT_LE(-16L * REST_PAGES, profit);
	EXPECT_EQ(0, worker_check(&self->w));
}

/*
 * Slots and slots in use of cache @name in /proc/slabinfo, after a shrink
 * (which frees its empty slabs); false if slabinfo does not list it.
 */
static bool slab_fill(const char *name, long *active, long *total)
{
	char path[128], line[512], cache[64];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", name);
	write_file(path, "1");
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%63s %ld %ld", cache, active, total) == 3 &&
			!strcmp(cache, name);
	fclose(f);
	return found;
}

#define MIX_PAGES	16384	/* 64 MiB a worker */

/*
 * A KSM page's maps live as long as it does; a pass's unstable tree
 * items die when the pass ends.  If both came from the same slabs, the
 * maps would pin slabs that the pass's items left mostly empty.  Two
 * workers of MIX_PAGES pages, every other one the same in both (so
 * MIX_PAGES mappings of MIX_PAGES / 2 KSM pages, each in a chunk of two
 * maps) and the rest unique, interleaved so that a shared cache would
 * leave every slab half empty.  Between two passes, where /proc/slabinfo
 * lists our caches (the debug kernel): ksm_chunk2's slots are at least
 * 90 % in use and ksm_item holds nothing.  Else Slab grows by at
 * most 52 bytes a tracked page: a record (9), half a 64-byte chunk (16)
 * and a quarter of a 72-byte stable node (18) make 43; upstream's take
 * 64 bytes for the rmap item alone.
 */
TEST_F_TIMEOUT(stat, linked_maps_leave_no_holes, KSM_TEST_TIMEOUT)
{
	uint64_t *tags = make_tags(MIX_PAGES, 0x401e0000);
	long slab0, slab1, per_page, active, total, pass_active, pass_total;
	struct stat_values v;
	bool listed;
	size_t i;

	ASSERT_NE(NULL, tags);
	for (i = 1; i < MIX_PAGES; i += 2)
		tags[i] += 0x100000;
	ASSERT_EQ(0, worker_start(&self->w, tags, MIX_PAGES));
	for (i = 1; i < MIX_PAGES; i += 2)
		tags[i] += 0x100000;
	ASSERT_EQ(0, worker_start(&self->keeper, tags, MIX_PAGES));
	free(tags);
	ASSERT_EQ(0, ksm_set("pages_to_scan", 8 * MIX_PAGES));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 15000));
	slab_fill("ksm_chunk2", &active, &total);
	slab0 = slab_kb();
	ASSERT_LT(0, slab0);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	slab1 = slab_kb();
	listed = slab_fill("ksm_chunk2", &active, &total);
	if (listed)
		ASSERT_TRUE(slab_fill("ksm_item", &pass_active,
				      &pass_total))
			TH_LOG("slabinfo has no ksm_item cache");
	ASSERT_EQ(0, ksm_set("run", 0));

	ASSERT_EQ(0, read_stat(self->w.pid, &v));
	EXPECT_EQ(MIX_PAGES, v.rmap_items);
	EXPECT_EQ(MIX_PAGES / 2, v.merging_pages);
	if (listed) {
		TH_LOG("ksm_chunk2 %ld of %ld slots in use, ksm_item %ld of %ld",
		       active, total, pass_active, pass_total);
		EXPECT_LE(MIX_PAGES / 2, active);
		EXPECT_GE(active * 10, total * 9);
		EXPECT_GE(64, pass_active);
	} else {
		per_page = (slab1 - slab0) * 1024 / (2 * MIX_PAGES);
		TH_LOG("slab %ld -> %ld kB: %ld B a tracked page", slab0,
		       slab1, per_page);
		EXPECT_GE(52, per_page);
	}
	EXPECT_EQ(0, worker_check(&self->w));
	EXPECT_EQ(0, worker_check(&self->keeper));
}

#define DEAD_PAGES	4096	/* 16 MiB a worker */
#define DEAD_SAME	512	/* of one content: two KSM pages of 256 maps */

static bool dead_test_merged(void *arg)
{
	/* Pairs, and the worker's DEAD_SAME pages in two KSM pages. */
	return ksm_get("pages_sharing") ==
	       DEAD_PAGES - DEAD_SAME + DEAD_SAME - 2;
}

/*
 * A KSM page that went leaves a dead node, whose maps go as ksmd meets
 * their slots (see "Dead nodes" in Documentation/mm/ksm.rst): here those
 * of an area no longer mergeable (the worker's, whose records are
 * dropped, which kills the nodes: ksmd meets its mm first) and of an
 * area mergeable again (the keeper's, unmerged and advised again before
 * ksmd looked: the scanner turns its slots into records).  The worker's
 * pages pair with the keeper's, but for its first DEAD_SAME, of one
 * content: two KSM pages of 256 mappings, in chunks of 16.  Two passes
 * later no KSM page is left, the worker has no record, and general_profit
 * counts the keeper's records alone: every chunk and every node was
 * freed (a leak of rec_live()'s made it -266240, not -36864).  Between
 * two passes, as above.
 */
TEST_F_TIMEOUT(stat, dead_nodes_free_their_maps, KSM_TEST_TIMEOUT)
{
	uint64_t *tags = make_tags(DEAD_PAGES, 0xdead0000);
	long chunks0[2], chunks1[2], nodes0, nodes1, profit;
	struct stat_values v, kv;
	char buf[32];
	size_t i;

	ASSERT_NE(NULL, tags);
	/* The worker first: ksmd meets its mm first in a pass. */
	for (i = 0; i < DEAD_SAME; i++)
		tags[i] = 0x5a5e;
	ASSERT_EQ(0, worker_start(&self->w, tags, DEAD_PAGES));
	for (i = 0; i < DEAD_SAME; i++)
		tags[i] = 0xdead0000 + i;
	ASSERT_EQ(0, worker_start(&self->keeper, tags, DEAD_PAGES));
	free(tags);
	chunks0[0] = slab_objects("ksm_chunk2");
	chunks0[1] = slab_objects("ksm_chunk16");
	nodes0 = slab_objects("ksm_stable");
	ASSERT_EQ(0, ksm_set("pages_to_scan", 4 * DEAD_PAGES));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(dead_test_merged, NULL, KSM_WAIT_SECS))
		TH_LOG("pages_sharing %lu", ksm_get("pages_sharing"));
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_EQ(0, read_stat(self->w.pid, &v));
	EXPECT_EQ(DEAD_PAGES, v.merging_pages);

	/* Every KSM page goes: both its mappings (or all 256) are copied. */
	ASSERT_EQ(0, worker_madvise(&self->w, 0, DEAD_PAGES,
				    MADV_UNMERGEABLE));
	ASSERT_EQ(0, worker_madvise(&self->keeper, 0, DEAD_PAGES,
				    MADV_UNMERGEABLE));
	ASSERT_EQ(0, worker_madvise(&self->keeper, 0, DEAD_PAGES,
				    MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 15000));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	ASSERT_LT(0, ksm_read_str("general_profit", buf, sizeof(buf)));
	profit = strtol(buf, NULL, 10);
	chunks1[0] = slab_objects("ksm_chunk2");
	chunks1[1] = slab_objects("ksm_chunk16");
	nodes1 = slab_objects("ksm_stable");
	ASSERT_EQ(0, ksm_set("run", 0));

	EXPECT_EQ(0, ksm_get("pages_shared"));
	EXPECT_EQ(0, ksm_get("pages_sharing"));
	EXPECT_EQ(0, ksm_get("kernel_pages_allocated"));
	ASSERT_EQ(0, read_stat(self->w.pid, &v));
	ASSERT_EQ(0, read_stat(self->keeper.pid, &kv));
	EXPECT_EQ(0, v.rmap_items);
	EXPECT_EQ(0, v.merging_pages);
	EXPECT_EQ(DEAD_PAGES, kv.rmap_items);
	EXPECT_EQ(0, kv.merging_pages);
	TH_LOG("general_profit %ld; ksm_chunk2 %ld -> %ld", profit,
	       chunks0[0], chunks1[0]);
	TH_LOG("ksm_chunk16 %ld -> %ld, ksm_stable %ld -> %ld", chunks0[1],
	       chunks1[1], nodes0, nodes1);
	/* A record (9 bytes) for each of the keeper's pages, and no more. */
	if (sizeof(long) == 8)
		EXPECT_EQ(-9L * DEAD_PAGES, profit);
	for (i = 0; i < 2; i++)
		if (chunks0[i] >= 0 && chunks1[i] >= 0)
			EXPECT_GE(chunks0[i], chunks1[i]);
	if (nodes0 >= 0 && nodes1 >= 0)
		EXPECT_GE(nodes0, nodes1);
	EXPECT_EQ(0, worker_check(&self->w));
	EXPECT_EQ(0, worker_check(&self->keeper));
}

/*
 * Start @w with @tags in a memory cgroup of its own, @cg (this process
 * goes back to the root): 0; a positive errno if there is no cgroup to
 * be had (@cg is then removed); a negative one if the worker failed.
 */
static int worker_start_memcg(struct ksm_worker *w, const uint64_t *tags,
			      size_t npages, char *cg, size_t len)
{
	int ret = memcg_enter(cg, len, "ksm_proc_stat");

	if (ret) {
		if (cg[0])
			memcg_leave(cg);
		return -ret;
	}
	ret = worker_start(w, tags, npages);
	if (write_file(CGROUP_ROOT "cgroup.procs", "0") && !ret)
		ret = -EIO;
	return ret;
}

/*
 * The records' xarray nodes are charged to the memory cgroup of the mm
 * they track: a tenant pays for what its pages cost KSM, however it lays
 * them out.  (Upstream charges its rmap items to no one.)  A worker of
 * REST_PAGES unique pages in a cgroup of its own: the cgroup's
 * memory.current grows by at least 4 bytes a page once ksmd has made
 * their records (9 bytes a page, dense).
 */
TEST_F_TIMEOUT(stat, records_charged_to_memcg, KSM_TEST_TIMEOUT)
{
	uint64_t *tags = make_tags(REST_PAGES, 0xc6a70000);
	char cg[PATH_MAX] = "", path[PATH_MAX + 32];
	long before, after;
	int ret;

	ASSERT_NE(NULL, tags);
	ret = worker_start_memcg(&self->w, tags, REST_PAGES, cg, sizeof(cg));
	free(tags);
	if (ret > 0)
		SKIP(return, "no memory cgroup of our own (%s)", strerror(ret));
	ASSERT_EQ(0, ret);
	snprintf(path, sizeof(path), "%s/memory.current", cg);
	ASSERT_EQ(0, ksm_set("pages_to_scan", 4 * REST_PAGES));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 3000));
	before = file_number(path);
	ASSERT_LT(0, before);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	after = file_number(path);
	ASSERT_EQ(0, ksm_set("run", 0));
	TH_LOG("memory.current of the worker's cgroup %ld -> %ld bytes",
	       before, after);
	EXPECT_LE(before + 4L * REST_PAGES, after);
	EXPECT_EQ(0, worker_check(&self->w));
	worker_stop(&self->w);
	EXPECT_EQ(0, memcg_leave(cg));
}

#define MAPS_PAGES	8192	/* 32 MiB */

static bool all_merged(void *arg)
{
	return read_merging_pages(((struct ksm_worker *)arg)->pid) ==
	       MAPS_PAGES;
}

/*
 * The maps of a tenant's mappings of KSM pages, and the nodes of the KSM
 * pages its pages became, are charged to its memory cgroup too: they may
 * outlive its pages (an mm whose mmap_lock ksmd cannot take keeps its
 * maps until it can), and a fork child maps a KSM page without paying
 * for a page.  (Upstream charges its rmap items and nodes to no one.)  A
 * worker of MAPS_PAGES pages alike in a cgroup of its own: once they are
 * merged, the cgroup's unreclaimable slab (which the records, in the
 * xarray's reclaimable nodes, are not part of) has grown by at least 20
 * bytes a map (24 a map, in chunks of up to 16).
 */
TEST_F_TIMEOUT(stat, maps_charged_to_memcg, KSM_TEST_TIMEOUT)
{
	uint64_t *tags = malloc(MAPS_PAGES * sizeof(*tags));
	char cg[PATH_MAX] = "";
	long before, after;
	int ret, i;

	if (!ksm_knob_exists("merge_domain")) {
		free(tags);
		SKIP(return, "upstream charges its rmap items to no one");
	}
	ASSERT_NE(NULL, tags);
	for (i = 0; i < MAPS_PAGES; i++)
		tags[i] = 0x3a9500;
	ret = worker_start_memcg(&self->w, tags, MAPS_PAGES, cg, sizeof(cg));
	free(tags);
	if (ret > 0)
		SKIP(return, "no memory cgroup of our own (%s)", strerror(ret));
	ASSERT_EQ(0, ret);
	before = memcg_value(cg, "memory.stat", "slab_unreclaimable");
	ASSERT_LE(0, before);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_merged, &self->w, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	after = memcg_value(cg, "memory.stat", "slab_unreclaimable");
	TH_LOG("slab_unreclaimable of the worker's cgroup %ld -> %ld bytes",
	       before, after);
	EXPECT_LE(before + 20L * (MAPS_PAGES - 1), after);
	EXPECT_EQ(0, worker_check(&self->w));
	worker_stop(&self->w);
	EXPECT_EQ(0, memcg_leave(cg));
}

TEST_HARNESS_MAIN
