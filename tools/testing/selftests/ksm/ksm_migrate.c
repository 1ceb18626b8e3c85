// SPDX-License-Identifier: GPL-2.0
/*
 * KSM pages migrated between NUMA nodes with move_pages() and
 * migrate_pages(): a KSM page moves as a whole (every mapping follows it,
 * found through rmap_walk_ksm()), keeps its content, stays one frame
 * shared by all, stays a KSM page that newcomers join; a KSM page shared
 * by two processes moves only with MPOL_MF_MOVE_ALL.  With
 * merge_across_nodes=0, a KSM page moved to another node serves only
 * that node.  A KSM page mapped by forty processes, some of them gone
 * since, still moves as a whole.  A KSM page that a process maps in an
 * area it never made mergeable (fork shared it) is never left behind as
 * a migration entry that mremap() can carry off.  Needs two NUMA nodes
 * with memory (numa=fake=2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NPAGES		16
#define MPOL_MF_MOVE	(1 << 1)
#define MPOL_MF_MOVE_ALL (1 << 2)

/* many_mappers_after_unlinks: mappings of each KSM page, 2+4+10+16+8 */
#define MANY		40
#define MANY_PAGES	4

FIXTURE(migrate) {
	struct ksm_saved saved;
	struct ksm_worker w[MANY];
};

FIXTURE_SETUP(migrate)
{
	KSM_FIXTURE_BEGIN();
	if (access("/sys/devices/system/node/node1", F_OK))
		SKIP(return, "needs two NUMA nodes");
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(migrate)
{
	KSM_FIXTURE_END();
}

/* move_pages() of all of @w's pages to @node; per-page status in @status. */
static long move_all(struct ksm_worker *w, int node, int flags, int *status)
{
	void *pages[NPAGES];
	int nodes[NPAGES];
	size_t i;

	for (i = 0; i < NPAGES; i++) {
		pages[i] = w->addr + i * page_size;
		nodes[i] = node;
	}
	return syscall(SYS_move_pages, w->pid, NPAGES, pages, nodes, status,
		       flags);
}

static bool all_on_node(struct ksm_worker *w, int node)
{
	size_t i;

	for (i = 0; i < NPAGES; i++)
		if (page_node(w->pid, w->addr + i * page_size) != node)
			return false;
	return true;
}

static bool all_ksm(struct ksm_worker *w)
{
	size_t i;

	for (i = 0; i < NPAGES; i++)
		if (!(kpageflags(worker_pfn(w, i)) & (1ULL << KPF_KSM)))
			return false;
	return true;
}

/* Workers 0 and 1 alike on @node, merged. */
static void merge_pair(struct __test_metadata *_metadata,
		       struct ksm_worker *w, int node, uint64_t base)
{
	struct same_frames sf = { w, 2, 0, NPAGES };
	uint64_t *tags = make_tags(NPAGES, base);

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start_node(&w[0], tags, NPAGES, node));
	ASSERT_EQ(0, worker_start_node(&w[1], tags, NPAGES, node));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_TRUE(all_on_node(&w[0], node));
	ASSERT_TRUE(all_ksm(&w[0]));
}

/* After a move: one frame for both, on @node, a KSM page, intact. */
static void check_moved(struct __test_metadata *_metadata,
			struct ksm_worker *w, int node,
			const unsigned long *old)
{
	struct same_frames sf = { w, 2, 0, NPAGES };
	size_t i;

	EXPECT_TRUE(frames_shared(&sf)) TH_LOG("migration split a KSM page");
	EXPECT_TRUE(all_on_node(&w[0], node));
	EXPECT_TRUE(all_on_node(&w[1], node));
	EXPECT_TRUE(all_ksm(&w[0])) TH_LOG("the new frames are no KSM pages");
	for (i = 0; i < NPAGES; i++) {
		EXPECT_NE(old[i], worker_pfn(&w[0], i));
	}
	EXPECT_EQ(0, worker_check(&w[0]));
	EXPECT_EQ(0, worker_check(&w[1]));
	/* Still in the stable tree: a third process joins them. */
	ASSERT_EQ(0, ksm_set("run", 1));
	sf.nr_workers = 3;
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS))
		TH_LOG("a newcomer does not join the moved KSM pages");
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ(0, worker_check(&w[2]));
}

TEST_F_TIMEOUT(migrate, move_pages, KSM_TEST_TIMEOUT)
{
	unsigned long old[NPAGES];
	int status[NPAGES];
	uint64_t *tags;
	size_t i;

	merge_pair(_metadata, self->w, 0, 0x3a0000);
	ASSERT_EQ(0, worker_pfns(&self->w[0], old));

	/* Shared with another process: not without MPOL_MF_MOVE_ALL. */
	ASSERT_EQ(0, move_all(&self->w[0], 1, MPOL_MF_MOVE, status));
	for (i = 0; i < NPAGES; i++) {
		EXPECT_EQ(-EACCES, status[i]);
	}
	EXPECT_TRUE(all_on_node(&self->w[0], 0));

	ASSERT_EQ(0, move_all(&self->w[0], 1, MPOL_MF_MOVE_ALL, status));
	for (i = 0; i < NPAGES; i++) {
		EXPECT_EQ(1, status[i]) TH_LOG("page %zu: status %d", i,
					       status[i]);
	}
	tags = make_tags(NPAGES, 0x3a0000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start_node(&self->w[2], tags, NPAGES, 0));
	free(tags);
	check_moved(_metadata, self->w, 1, old);
}

TEST_F_TIMEOUT(migrate, migrate_pages, KSM_TEST_TIMEOUT)
{
	unsigned long old[NPAGES], from = 1UL << 0, to = 1UL << 1;
	uint64_t *tags;
	long left;

	merge_pair(_metadata, self->w, 0, 0x3b0000);
	ASSERT_EQ(0, worker_pfns(&self->w[0], old));
	/* Root has CAP_SYS_NICE: shared pages move too. */
	left = syscall(SYS_migrate_pages, self->w[1].pid, sizeof(from) * 8,
		       &from, &to);
	ASSERT_EQ(0, left) TH_LOG("migrate_pages: %ld not moved (%s)", left,
				  strerror(errno));
	tags = make_tags(NPAGES, 0x3b0000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start_node(&self->w[2], tags, NPAGES, 1));
	free(tags);
	check_moved(_metadata, self->w, 1, old);
}

/*
 * merge_across_nodes=0: a KSM page made on node 0 and then moved to node
 * 1 must not take a page of node 0 any more.
 */
TEST_F_TIMEOUT(migrate, per_node_after_move, KSM_TEST_TIMEOUT)
{
	int status[NPAGES];
	uint64_t *tags;
	size_t i;

	ASSERT_EQ(0, ksm_set("merge_across_nodes", 0));
	merge_pair(_metadata, self->w, 0, 0x3c0000);
	ASSERT_EQ(0, move_all(&self->w[0], 1, MPOL_MF_MOVE_ALL, status));
	ASSERT_TRUE(all_on_node(&self->w[0], 1));
	ASSERT_TRUE(all_on_node(&self->w[1], 1));

	tags = make_tags(NPAGES, 0x3c0000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start_node(&self->w[2], tags, NPAGES, 0));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2 * KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	for (i = 0; i < NPAGES; i++) {
		int node = page_node(self->w[2].pid,
				     self->w[2].addr + i * page_size);

		EXPECT_EQ(0, node) TH_LOG("page %zu of node 0 now on node %d",
					  i, node);
		EXPECT_NE(worker_pfn(&self->w[0], i), worker_pfn(&self->w[2], i))
			TH_LOG("page %zu of node 0 merged with a KSM page of node 1",
			       i);
	}
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, worker_check(&self->w[i]));
	}
}

/*
 * The mappings of a KSM page are kept in chunks of 2, 4, 10, then 16 maps
 * (see "Maps" in Documentation/mm/ksm.rst), and a mapping that goes
 * leaves its place to another.  Forty processes map each of four KSM
 * pages; a third of them exit and another third write two of the pages,
 * and ksmd forgets those mappings, moving others about.  Then migration
 * moves the KSM pages: only if its rmap walks find every mapping left,
 * and nothing else, do all of them follow, to one frame on the other node
 * with the content intact.
 */
TEST_F_TIMEOUT(migrate, many_mappers_after_unlinks, KSM_TEST_TIMEOUT)
{
	struct same_frames sf = { self->w, MANY, 0, MANY_PAGES };
	uint64_t *tags = make_tags(MANY_PAGES, 0x3d0000);
	unsigned long old[MANY_PAGES], pfn;
	int nodes[MANY_PAGES], status[MANY_PAGES];
	void *pages[MANY_PAGES];
	struct ksm_counters c;
	size_t i, j;

	ASSERT_NE(NULL, tags);
	for (i = 0; i < MANY; i++)
		ASSERT_EQ(0, worker_start_node(&self->w[i], tags, MANY_PAGES,
					       0));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	for (i = 1; i < MANY; i += 3)
		ASSERT_EQ(0, worker_stop(&self->w[i]));
	for (i = 2; i < MANY; i += 3)
		for (j = 0; j < 2; j++)
			ASSERT_EQ(0, worker_write(&self->w[i], j,
						  0x3e0000 + 2 * i + j));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	/* Pages 0 and 1 of 14 processes left, 2 and 3 of 27. */
	EXPECT_EQ(MANY_PAGES, c.shared);
	EXPECT_EQ(2 * 13 + 2 * 26, c.sharing);

	ASSERT_EQ(0, worker_pfns(&self->w[0], old));
	for (i = 0; i < MANY_PAGES; i++) {
		pages[i] = self->w[0].addr + i * page_size;
		nodes[i] = 1;
	}
	ASSERT_EQ(0, syscall(SYS_move_pages, self->w[0].pid, MANY_PAGES,
			     pages, nodes, status, MPOL_MF_MOVE_ALL));
	for (i = 0; i < MANY_PAGES; i++) {
		EXPECT_EQ(1, status[i]) TH_LOG("page %zu: status %d", i,
					       status[i]);
		EXPECT_NE(old[i], worker_pfn(&self->w[0], i));
	}
	for (i = 0; i < MANY; i++) {
		if (!self->w[i].pid)
			continue;
		for (j = i % 3 ? 2 : 0; j < MANY_PAGES; j++) {
			pfn = worker_pfn(&self->w[0], j);
			EXPECT_EQ(pfn, worker_pfn(&self->w[i], j))
				TH_LOG("process %zu, page %zu left behind", i, j);
			EXPECT_EQ(1, page_node(self->w[i].pid,
					       self->w[i].addr + j * page_size));
		}
		EXPECT_EQ(0, worker_check(&self->w[i]));
	}
}

#define RACE_PAIRS	32
#define RACE_SECS	5

/* Pages 2k + 1 of @r (in this process) are all KSM pages. */
static bool odd_pages_ksm(void *arg)
{
	struct own_range *o = arg;
	size_t k;

	for (k = 0; k < RACE_PAIRS; k++) {
		unsigned long pfn = pagemap_pfn(o->pagemap_fd,
						o->p + (2 * k + 1) * page_size);

		if (!pfn || !(kpageflags(pfn) & (1ULL << KPF_KSM)))
			return false;
	}
	return true;
}

/*
 * This process maps pairs of pages alike in an area it never made
 * mergeable, forks a child that makes its copy of the area mergeable,
 * and ksmd turns the second page of each pair, which fork left shared,
 * into a KSM page in place: this process maps it too, in an area that
 * is not mergeable, which mremap() moves without unmerging.  One process
 * moves those pages between the nodes, over and over, while this one
 * moves each page away with mremap() and back.  A migration that wrote
 * its entries into this process's area (finding it through the page's
 * anon_vma) could see one carried off before it put the page back, and
 * leave it behind: pointing to a freed page, a kernel BUG at the next
 * touch or at exit (an attacker review found it).  Every page must keep
 * its content, and this process must exit cleanly.
 */
TEST_F_TIMEOUT(migrate, non_mergeable_sharer_races_mremap, KSM_TEST_TIMEOUT)
{
	size_t len = 2 * RACE_PAIRS * page_size, k, moves = 0;
	pid_t me = getpid(), child, mover;
	struct own_range own;
	char *r, *spare;
	int go[2], fd;
	char c;

	r = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	spare = mmap(NULL, page_size, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, spare);
	for (k = 0; k < 2 * RACE_PAIRS; k++)
		fill_page(r + k * page_size, 0x6ace00 + k / 2);
	fd = pagemap_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pipe(go));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		if (madvise(r, len, MADV_MERGEABLE))
			_exit(1);
		write(go[1], "g", 1);
		pause();
		_exit(0);
	}
	ASSERT_EQ(1, read(go[0], &c, 1));
	own = (struct own_range){ fd, r, 0, 2 * RACE_PAIRS };
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(odd_pages_ksm, &own, KSM_WAIT_SECS))
		TH_LOG("the shared pages did not become KSM pages");
	ASSERT_EQ(0, ksm_set("run", 0));

	mover = fork();
	ASSERT_LE(0, mover);
	if (!mover) {
		void *pages[RACE_PAIRS];
		int nodes[RACE_PAIRS], status[RACE_PAIRS], node = 1;

		for (;;) {
			for (k = 0; k < RACE_PAIRS; k++) {
				pages[k] = r + (2 * k + 1) * page_size;
				nodes[k] = node;
			}
			syscall(SYS_move_pages, me, RACE_PAIRS, pages, nodes,
				status, MPOL_MF_MOVE_ALL);
			node ^= 1;
		}
	}
	for (unsigned long end = now_ms() + RACE_SECS * 1000;
	     now_ms() < end; moves++) {
		char *a = r + (2 * (moves % RACE_PAIRS) + 1) * page_size;

		ASSERT_NE(MAP_FAILED, mremap(a, page_size, page_size,
					     MREMAP_MAYMOVE | MREMAP_FIXED,
					     spare));
		ASSERT_NE(MAP_FAILED, mremap(spare, page_size, page_size,
					     MREMAP_MAYMOVE | MREMAP_FIXED,
					     a));
		/* Keep the spare address ours. */
		ASSERT_EQ(spare, mmap(spare, page_size, PROT_NONE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				      -1, 0));
	}
	kill(mover, SIGKILL);
	waitpid(mover, NULL, 0);
	TH_LOG("%zu moves there and back", moves);
	for (k = 0; k < 2 * RACE_PAIRS; k++)
		EXPECT_TRUE(page_has(r + k * page_size, 0x6ace00 + k / 2))
			TH_LOG("page %zu", k);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	munmap(r, len);
	close(fd);
}

TEST_HARNESS_MAIN
