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
 * area it never made mergeable (fork shared it) moves too, that mapping
 * with it, and is never left behind as a migration entry that mremap()
 * can carry off.  A KSM page that a process's child maps after the
 * process itself went, or wrote to its page, moves too: the process's map
 * passes to the child.  Needs two NUMA nodes with memory (numa=fake=2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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
	ASSERT_TRUE(worker_all_ksm(&w[0]));
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
	EXPECT_TRUE(worker_all_ksm(&w[0])) TH_LOG("the new frames are no KSM pages");
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

/*
 * Two pages of @tag of this process, made one KSM page in place (its own
 * anon_vma): *@pp, or NULL.  @fd is pagemap_open(0).
 */
static void own_pair_merge(struct __test_metadata *_metadata, uint64_t tag,
			   int fd, char **pp)
{
	char *p;

	*pp = NULL;
	p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill_page(p, tag);
	fill_page(p + page_size, tag);
	ASSERT_EQ(0, madvise(p, 2 * page_size, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(own_one_frame,
				  &(struct own_range){ fd, p, 0, 2 },
				  KSM_WAIT_SECS));
	*pp = p;
}

#define CHAIN		12	/* forks, each of the one before */
#define CHAIN_TAG	0xc4a1c0

static bool chain_sharing(void *arg)
{
	struct ksm_counters c;

	return !ksm_read_counters(&c) && c.shared == 1 &&
	       c.sharing == *(unsigned long *)arg;
}

/*
 * A line of forks below the process whose page became a KSM page in place
 * (its own anon_vma): each child forks the next, all mergeable, and ksmd
 * links a map for each, with an anon_vma one more step down the line.
 * The rmap walk finds each mapping where fork left it (the page's own
 * anon_vma and offset), and passes over it in the maps' walk when the
 * map's anon_vma is at most 8 steps down (see ksm_below_native()): the
 * deeper ones are visited twice.  Either way the page moves as a whole:
 * all 13 processes map the new frame at both addresses, content intact.
 */
TEST_F_TIMEOUT(migrate, fork_line_moves_as_one, KSM_TEST_TIMEOUT)
{
	unsigned long want = 1 + 2 * CHAIN, old, pfn;
	pid_t pids[CHAIN + 1];
	int go[2], node, status, fd, i, j;
	void *page;
	char *p;

	fd = pagemap_open(0);
	ASSERT_LE(0, fd);
	own_pair_merge(_metadata, CHAIN_TAG, fd, &p);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, ksm_set("run", 0));
	close(fd);

	/* Each child forks the next and reports its pid up the pipe. */
	ASSERT_EQ(0, pipe(go));
	pids[0] = getpid();
	for (i = 1; i <= CHAIN; i++) {
		pid_t pid = fork();

		if (pid < 0 && getpid() == pids[0])
			ASSERT_LE(0, pid);
		if (pid < 0)
			_exit(1);
		if (pid)
			break;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pid = getpid();
		if (write(go[1], &pid, sizeof(pid)) != sizeof(pid))
			_exit(1);
		if (i == CHAIN)
			for (;;)
				pause();
	}
	if (getpid() != pids[0]) {
		for (;;)
			pause();
	}
	for (i = 1; i <= CHAIN; i++)
		ASSERT_EQ(sizeof(pids[i]), read(go[0], &pids[i],
						sizeof(pids[i])));

	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(chain_sharing, &want, KSM_WAIT_SECS))
		TH_LOG("ksmd did not link the %d children", CHAIN);
	ASSERT_EQ(0, ksm_set("run", 0));

	fd = pagemap_open(0);
	old = pagemap_pfn(fd, p);
	close(fd);
	page = p;
	node = page_node(0, p) ^ 1;
	ASSERT_EQ(0, syscall(SYS_move_pages, 0, 1, &page, &node, &status,
			     MPOL_MF_MOVE_ALL));
	EXPECT_EQ(node, status);
	for (i = 0; i <= CHAIN; i++) {
		fd = pagemap_open(pids[i]);
		ASSERT_LE(0, fd);
		for (j = 0; j < 2; j++) {
			pfn = pagemap_pfn(fd, p + j * page_size);
			EXPECT_NE(old, pfn) TH_LOG("process %d page %d stayed",
						   i, j);
			EXPECT_EQ(node, page_node(pids[i], p + j * page_size));
		}
		close(fd);
	}
	EXPECT_TRUE(page_has(p, CHAIN_TAG) && page_has(p + page_size,
						       CHAIN_TAG));
	/* The first child: its death takes the line down (PDEATHSIG). */
	kill(pids[1], SIGKILL);
	waitpid(pids[1], NULL, 0);
	munmap(p, 2 * page_size);
}

#define HEIR_PAGES	1024	/* the K page last: 1023 before it */
#define HEIR_TAG	0x4e1200

/*
 * The departing process: its pages, from page @first mergeable, then its
 * commands: 'f' forks a child (its pid is the reply), 'w' writes its last
 * page (the reply is 0); any other ends it.
 */
static void departing_run(char *ksm, char *p, size_t first, int cmd_fd,
			  int reply_fd, int end_fd)
{
	pid_t child;
	size_t i;
	char c;

	/* Only the page of its own that merges maps the KSM page. */
	if (munmap(ksm, 2 * page_size))
		_exit(1);

	for (i = 0; i < HEIR_PAGES - 1; i++)
		fill_page(p + i * page_size, HEIR_TAG + 1 + i);
	fill_page(p + i * page_size, HEIR_TAG);
	if (madvise(p + first * page_size, (HEIR_PAGES - first) * page_size,
		    MADV_MERGEABLE))
		_exit(1);
	while (read(cmd_fd, &c, 1) == 1) {
		if (c == 'w') {
			fill_page(p + (HEIR_PAGES - 1) * page_size,
				  HEIR_TAG - 1);
			child = 0;
		} else if (c == 'f') {
			child = fork();
		} else {
			_exit(0);
		}
		if (!child && c == 'f') {
			/* Told to end: its pages as they were, or 1. */
			if (read(end_fd, &c, 1) != 1)
				_exit(2);
			for (i = 0; i < HEIR_PAGES - 1; i++)
				if (!page_has(p + i * page_size,
					      HEIR_TAG + 1 + i))
					_exit(1);
			_exit(!page_has(p + i * page_size, HEIR_TAG));
		}
		if (write(reply_fd, &child, sizeof(child)) != sizeof(child))
			_exit(1);
	}
	_exit(0);
}

/* A test of heirs: this process, the departing one, its children. */
struct heir_run {
	int fd;			/* this process's pagemap */
	char *p;		/* this process's KSM page */
	int other_fd;		/* the departing process's pagemap */
	char *q;		/* its page of the same content, its last */
	char *area;		/* its pages */
	pid_t departing;
	int cmd[2], reply[2], end[2];
	pid_t kid[2];		/* its children, with their pagemaps */
	int kid_fd[2];
	int nr_kids;
	unsigned long scanned;	/* pages_scanned to wait for */
};

static bool heir_merged(void *arg)
{
	struct heir_run *r = arg;
	unsigned long pfn = pagemap_pfn(r->fd, r->p);

	return pfn && pfn == pagemap_pfn(r->fd, r->p + page_size) &&
	       pfn == pagemap_pfn(r->other_fd, r->q);
}

static bool heir_scanned(void *arg)
{
	return ksm_get("pages_scanned") >= ((struct heir_run *)arg)->scanned;
}

static long kid_stat(struct heir_run *r, int k, const char *key)
{
	long val = -1;

	read_ksm_stat(r->kid[k], key, &val);
	return val;
}

static bool heir_kid_merged(void *arg)
{
	struct heir_run *r = arg;

	return kid_stat(r, r->nr_kids - 1, "ksm_merging_pages") == 1;
}

/* Send @c to the departing process: its reply. */
static pid_t heir_cmd(struct heir_run *r, char c)
{
	pid_t reply;

	if (write(r->cmd[1], &c, 1) != 1 ||
	    read(r->reply[0], &reply, sizeof(reply)) != sizeof(reply))
		return -1;
	return reply;
}

/* The departing process forks a child. */
static void heir_fork(struct __test_metadata *_metadata, struct heir_run *r)
{
	int k = r->nr_kids;

	ASSERT_GT(ARRAY_SIZE(r->kid), k);
	r->kid[k] = heir_cmd(r, 'f');
	ASSERT_LT(0, r->kid[k]);
	r->nr_kids++;
	r->kid_fd[k] = pagemap_open(r->kid[k]);
	ASSERT_LE(0, r->kid_fd[k]);
}

/*
 * The departing process moves into the memory cgroup @cg (if not NULL)
 * before it makes its pages, where no OOM kill may end it or its
 * children, nor swap take their pages.  There, only its last page is
 * mergeable.
 */
static void heir_join(const char *cg)
{
	char path[PATH_MAX + 32];

	if (!cg)
		return;
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	if (write_file(path, "0") ||
	    write_file("/proc/self/oom_score_adj", "-1000"))
		_exit(1);
	snprintf(path, sizeof(path), "%s/memory.swap.max", cg);
	write_file(path, "0");
}

/*
 * This process's two pages merged into a KSM page in place, the
 * departing process's last page (in @cg, if not NULL: see heir_join())
 * merged into it.
 */
static void heir_start(struct __test_metadata *_metadata, struct heir_run *r,
		       const char *cg)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->other_fd = -1;
	ASSERT_EQ(0, ksm_set("smart_scan", 0));
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	r->fd = pagemap_open(0);
	ASSERT_LE(0, r->fd);
	own_pair_merge(_metadata, HEIR_TAG, r->fd, &r->p);
	ASSERT_NE(NULL, r->p);

	r->area = mmap(NULL, HEIR_PAGES * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r->area);
	ASSERT_EQ(0, pipe(r->cmd));
	ASSERT_EQ(0, pipe(r->reply));
	ASSERT_EQ(0, pipe(r->end));
	r->departing = fork();
	ASSERT_LE(0, r->departing);
	if (!r->departing) {
		close(r->cmd[1]);
		close(r->reply[0]);
		close(r->end[1]);
		heir_join(cg);
		departing_run(r->p, r->area, cg ? HEIR_PAGES - 1 : 0,
			      r->cmd[0], r->reply[1], r->end[0]);
	}
	close(r->cmd[0]);
	close(r->reply[1]);
	close(r->end[0]);
	r->other_fd = pagemap_open(r->departing);
	ASSERT_LE(0, r->other_fd);
	r->q = r->area + (HEIR_PAGES - 1) * page_size;
	ASSERT_EQ(0, ksm_wait_for(heir_merged, r, KSM_WAIT_SECS));
}

/*
 * Move the KSM page to the other node, with every mapping: this
 * process's and the children's, each child with one map (ksm_stat).
 */
static void heir_move(struct __test_metadata *_metadata, struct heir_run *r)
{
	int node = page_node(0, r->p) ^ 1, status, k;
	void *page = r->p;
	unsigned long pfn;

	EXPECT_EQ(0, syscall(SYS_move_pages, 0, 1, &page, &node, &status,
			     MPOL_MF_MOVE_ALL))
		TH_LOG("the KSM page stayed where it was");
	EXPECT_EQ(node, status) TH_LOG("the KSM page stayed: status %d",
				       status);
	pfn = pagemap_pfn(r->fd, r->p);
	for (k = 0; k < r->nr_kids; k++) {
		EXPECT_EQ(pfn, pagemap_pfn(r->kid_fd[k], r->q))
			TH_LOG("child %d's mapping stayed behind", k);
		EXPECT_EQ(node, page_node(r->kid[k], r->q));
		EXPECT_EQ(1, kid_stat(r, k, "ksm_merging_pages"))
			TH_LOG("child %d: not one page merged", k);
	}
}

/* The children check their pages and exit; all goes. */
static void heir_end(struct __test_metadata *_metadata, struct heir_run *r)
{
	int wstatus, k;

	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_TRUE(page_has(r->p, HEIR_TAG) &&
		    page_has(r->p + page_size, HEIR_TAG));
	/* The departing process ends first: its children become ours. */
	close(r->cmd[1]);
	if (r->departing)
		waitpid(r->departing, NULL, 0);
	for (k = 0; k < r->nr_kids; k++) {
		ASSERT_EQ(1, write(r->end[1], "e", 1));
		ASSERT_EQ(r->kid[k], waitpid(r->kid[k], &wstatus, 0));
		EXPECT_TRUE(WIFEXITED(wstatus) && !WEXITSTATUS(wstatus))
			TH_LOG("child %d's pages changed", k);
		close(r->kid_fd[k]);
	}
	close(r->reply[0]);
	close(r->end[1]);
	close(r->fd);
	close(r->other_fd);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	munmap(r->area, HEIR_PAGES * page_size);
	munmap(r->p, 2 * page_size);
}

/* ksmd slows down: the departing process's thousand pages take 10 s. */
#define HEIR_BATCH	16
#define HEIR_SLEEP_MS	160

/*
 * A process whose page merged into another's KSM page forks two children,
 * which map the KSM page too, then exits.  ksmd has scanned the first
 * child, which has a map of its own (its own anon_vma), and not the
 * second (here a thousand pages later), whose mapping is reached only
 * through the anon_vma of the departing process's map.  That map passes
 * to the second child (see "Heirs" in mm/ksm.c), not the first, and the
 * KSM page moves with both children's mappings; without that it stayed
 * where it was, shared by everyone, for as long as ksmd did not reach the
 * second child.  Upstream's KSM leaves it behind too.
 */
TEST_F_TIMEOUT(migrate, departed_sharers_child_moves_too, KSM_TEST_TIMEOUT)
{
	struct heir_run r;
	unsigned long s0;
	int wstatus;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream's KSM leaves this mapping behind");
	heir_start(_metadata, &r, NULL);

	/* The first child, met by ksmd: its own map. */
	heir_fork(_metadata, &r);
	ASSERT_EQ(0, ksm_wait_for(heir_kid_merged, &r, KSM_WAIT_SECS));

	ASSERT_EQ(0, ksm_set("pages_to_scan", HEIR_BATCH));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", HEIR_SLEEP_MS));
	heir_fork(_metadata, &r);
	s0 = ksm_get("pages_scanned");
	ASSERT_EQ(1, write(r.cmd[1], "x", 1));
	ASSERT_EQ(r.departing, waitpid(r.departing, &wstatus, 0));
	r.departing = 0;
	ASSERT_TRUE(WIFEXITED(wstatus) && !WEXITSTATUS(wstatus));
	/* Three batches: the exited process's maps are gone. */
	r.scanned = s0 + 3 * HEIR_BATCH;
	ASSERT_EQ(0, poll_until(heir_scanned, &r, KSM_WAIT_SECS));

	heir_move(_metadata, &r);
	/* Else ksmd linked a map of the second child's own: no proof. */
	ASSERT_GT(s0 + HEIR_PAGES - 1, ksm_get("pages_scanned"))
		TH_LOG("ksmd was too fast for this test");
	heir_end(_metadata, &r);
}

/*
 * The same, where the departing process writes to its page rather than
 * exit: ksmd, meeting the page changed, passes the map to the child, and
 * the child has no other record (ksmd has not scanned it) when it does.
 * The child is forked while ksmd is halfway through the departing
 * process's pages, so it goes behind the cursor, to be scanned next pass;
 * the write comes before ksmd reaches the last page.
 */
TEST_F_TIMEOUT(migrate, written_sharers_child_moves_too, KSM_TEST_TIMEOUT)
{
	unsigned long tick;
	struct heir_run r;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream's KSM leaves this mapping behind");
	heir_start(_metadata, &r, NULL);
	ASSERT_EQ(0, ksm_set("pages_to_scan", HEIR_BATCH));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", HEIR_SLEEP_MS));
	/* A pass begins: this process's two pages, then the thousand. */
	ASSERT_EQ(0, ksm_wait_scans(1, KSM_WAIT_SECS));
	tick = ksm_get("pages_scanned");
	r.scanned = tick + 2 * HEIR_BATCH;
	ASSERT_EQ(0, poll_until(heir_scanned, &r, KSM_WAIT_SECS));
	heir_fork(_metadata, &r);
	ASSERT_EQ(0, heir_cmd(&r, 'w'));
	ASSERT_GT(tick + HEIR_PAGES - 2 * HEIR_BATCH, ksm_get("pages_scanned"))
		TH_LOG("ksmd was too fast for this test");

	/*
	 * Linked by a scan of the child, it would have a record for each of
	 * its pages up to the last; passed, the one record, and those of a
	 * batch or so that the pass after may have added since.
	 */
	ASSERT_EQ(0, poll_until(heir_kid_merged, &r, 2 * KSM_WAIT_SECS))
		TH_LOG("the child's mapping was never linked");
	EXPECT_GT(HEIR_PAGES / 2, kid_stat(&r, 0, "ksm_rmap_items"))
		TH_LOG("ksmd scanned the child: the map did not pass to it");
	heir_move(_metadata, &r);
	heir_end(_metadata, &r);
}

/*
 * The same at the departing process's memory cgroup limit, without swap:
 * the child's slot for the map passed to it is charged to the cgroup
 * over its limit (the mapping is there, with its page tables, whatever
 * KSM does), as a node or a map of a merge is.  Else the map would go
 * for want of a slot, and a join of the child, which needs its record
 * too, would fail as long as the cgroup stays at its limit: the child's
 * mapping is reached through no map, and the KSM page stays where it is.
 *
 * ksmd is stopped from the fork until the cgroup is over its limit, so
 * the child is not scanned before, and the write (a copy on write, a new
 * page) comes before the limit too.  Setting the limit empties the
 * per-CPU caches of charges, which a free of the cgroup's would fill
 * again, and an allocation take from, limit or not: so the departing
 * process writes rather than exits (an exit frees its KSM objects, and
 * more), and has only its last page mergeable.
 */
TEST_F_TIMEOUT(migrate, written_sharers_child_moves_at_limit,
	       KSM_TEST_TIMEOUT)
{
	char cg[PATH_MAX] = "", path[PATH_MAX + 32], max[32];
	struct heir_run r;
	long current;
	int ret;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream's KSM leaves this mapping behind");
	ret = memcg_enter(cg, sizeof(cg), "ksm_migrate");
	if (ret && cg[0])
		memcg_leave(cg);
	if (ret)
		SKIP(return, "no memory cgroup of our own (%s)",
		     strerror(-ret));
	ASSERT_EQ(0, write_file(CGROUP_ROOT "cgroup.procs", "0"));
	heir_start(_metadata, &r, cg);

	ASSERT_EQ(0, ksm_set("run", 0));
	heir_fork(_metadata, &r);
	ASSERT_EQ(0, heir_cmd(&r, 'w'));

	/* Half the cgroup's charge: no reclaim brings it under that. */
	snprintf(path, sizeof(path), "%s/memory.current", cg);
	current = file_number(path);
	ASSERT_LT(HEIR_PAGES * page_size, current);
	snprintf(path, sizeof(path), "%s/memory.max", cg);
	snprintf(max, sizeof(max), "%ld", current / 2);
	ASSERT_EQ(0, write_file(path, max));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	snprintf(path, sizeof(path), "%s/memory.current", cg);
	EXPECT_LT(current / 2, file_number(path))
		TH_LOG("the cgroup was not at its limit: no proof");
	EXPECT_LT(0, memcg_value(cg, "memory.events", "max"))
		TH_LOG("no charge met the limit: no proof");

	heir_move(_metadata, &r);
	heir_end(_metadata, &r);
	EXPECT_EQ(0, memcg_leave(cg));
}

#define PAIRS		32
#define PAIR_TAG	0x6ace00
#define RACE_SECS	5

/*
 * A KSM page that a process maps in an area it never made mergeable.
 * This process maps pairs of pages alike in such an area and forks a
 * child; one of the two (the merger) then makes its copy of the area
 * mergeable, and ksmd turns one page of each pair, which fork left
 * shared, into a KSM page in place, and maps it at the other page's
 * address too.  The other process (the sharer) maps the KSM page as well,
 * at one address of the pair, in its area that is not mergeable, which
 * mremap() moves without unmerging.
 *
 * Not /proc/kpageflags: 6.12 sets KPF_KSM on every anonymous page.
 */
enum sharer_child {
	CHILD_MERGES,	/* the child is the merger, this process the sharer */
	CHILD_SITS,	/* this process is the merger, the child the sharer */
	CHILD_REMAPS,	/* the same, and the child moves its pages about */
};

struct sharers {
	char *r;		/* the pairs, at the same address in both */
	char *spare;		/* a page of address space to move one to */
	pid_t child;
	pid_t merger;
	pid_t sharer;
	int start[2];		/* this process tells a CHILD_REMAPS child */
	int merger_fd;		/* pagemaps */
	int sharer_fd;
	size_t at[PAIRS];	/* the page of pair k the sharer maps merged */
};

static unsigned long pfn_of(int fd, const struct sharers *s, size_t page)
{
	return pagemap_pfn(fd, s->r + page * page_size);
}

/* The merger maps one frame for both pages of each pair. */
static bool pairs_merged(void *arg)
{
	const struct sharers *s = arg;
	size_t k;

	for (k = 0; k < PAIRS; k++) {
		unsigned long pfn = pfn_of(s->merger_fd, s, 2 * k);

		if (!pfn || pfn != pfn_of(s->merger_fd, s, 2 * k + 1))
			return false;
	}
	return true;
}

/* The 2 * PAIRS pages of @pid's area hold what they were filled with. */
static bool pairs_intact(const struct sharers *s, pid_t pid)
{
	char path[64], *buf = malloc(page_size);
	bool ok = buf;
	size_t k;
	int mem;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem = open(path, O_RDONLY);
	for (k = 0; ok && k < 2 * PAIRS; k++)
		ok = pread(mem, buf, page_size,
			   (unsigned long)(s->r + k * page_size)) ==
		     (ssize_t)page_size && page_has(buf, PAIR_TAG + k / 2);
	if (mem >= 0)
		close(mem);
	free(buf);
	return ok && mem >= 0;
}

/*
 * Move each KSM page of the sharer's to the spare address with mremap()
 * and back, for RACE_SECS.  Returns how many times, or -1 on an error.
 */
static long remap_pages(const struct sharers *s)
{
	long moves = 0;

	for (unsigned long end = now_ms() + RACE_SECS * 1000;
	     now_ms() < end; moves++) {
		char *a = s->r + s->at[moves % PAIRS] * page_size;

		if (mremap(a, page_size, page_size,
			   MREMAP_MAYMOVE | MREMAP_FIXED, s->spare) == MAP_FAILED ||
		    mremap(s->spare, page_size, page_size,
			   MREMAP_MAYMOVE | MREMAP_FIXED, a) == MAP_FAILED)
			return -1;
		/* Keep the spare address ours. */
		if (mmap(s->spare, page_size, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
		    s->spare)
			return -1;
	}
	return moves;
}

static void sharer_child_run(struct sharers *s, enum sharer_child role,
			     int ready)
{
	size_t len = 2 * PAIRS * page_size;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (role == CHILD_MERGES && madvise(s->r, len, MADV_MERGEABLE))
		_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	if (role != CHILD_REMAPS) {
		pause();
		_exit(0);
	}
	/* Which pages are the KSM pages, once they are. */
	if (read(s->start[0], s->at, sizeof(s->at)) != sizeof(s->at))
		_exit(2);
	if (remap_pages(s) < 0)
		_exit(3);
	_exit(pairs_intact(s, getpid()) ? 0 : 4);
}

/* The pairs, shared with a child as @role says, merged. */
static void sharers_make(struct __test_metadata *_metadata,
			 struct sharers *s, enum sharer_child role)
{
	size_t len = 2 * PAIRS * page_size, k;
	int ready[2];
	char c;

	s->r = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s->r);
	s->spare = mmap(NULL, page_size, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s->spare);
	for (k = 0; k < 2 * PAIRS; k++)
		fill_page(s->r + k * page_size, PAIR_TAG + k / 2);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(s->start));
	s->child = fork();
	ASSERT_LE(0, s->child);
	if (!s->child)
		sharer_child_run(s, role, ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);
	close(ready[1]);
	s->merger = role == CHILD_MERGES ? s->child : getpid();
	s->sharer = role == CHILD_MERGES ? getpid() : s->child;
	s->merger_fd = pagemap_open(s->merger);
	ASSERT_LE(0, s->merger_fd);
	s->sharer_fd = pagemap_open(s->sharer);
	ASSERT_LE(0, s->sharer_fd);
	if (role != CHILD_MERGES)
		ASSERT_EQ(0, madvise(s->r, len, MADV_MERGEABLE));
	ASSERT_EQ(1, vma_flag(s->merger, s->r, "mg"));
	ASSERT_EQ(0, vma_flag(s->sharer, s->r, "mg"));

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(pairs_merged, s, KSM_WAIT_SECS))
		TH_LOG("the pairs did not merge");
	ASSERT_EQ(0, ksm_set("run", 0));
	/* One page of each pair became the KSM page in place: shared. */
	for (k = 0; k < PAIRS; k++) {
		unsigned long pfn = pfn_of(s->merger_fd, s, 2 * k);
		bool even = pfn_of(s->sharer_fd, s, 2 * k) == pfn;
		bool odd = pfn_of(s->sharer_fd, s, 2 * k + 1) == pfn;

		ASSERT_NE(even, odd) TH_LOG("pair %zu: the sharer maps %s", k,
					    even ? "it twice" : "no KSM page");
		s->at[k] = 2 * k + odd;
	}
	ASSERT_EQ(PAIRS * page_size / 1024, smaps_kb(s->sharer, s->r, "KSM"));
	ASSERT_EQ(2 * PAIRS * page_size / 1024,
		  smaps_kb(s->merger, s->r, "KSM"));
}

static void sharers_end(struct sharers *s)
{
	if (s->child > 0) {
		kill(s->child, SIGKILL);
		waitpid(s->child, NULL, 0);
	}
	munmap(s->r, 2 * PAIRS * page_size);
	munmap(s->spare, page_size);
	close(s->merger_fd);
	close(s->sharer_fd);
	close(s->start[0]);
	close(s->start[1]);
}

/* move_pages() of the KSM pages, through the merger's mappings, to @node. */
static long move_pairs(const struct sharers *s, int node, int *status)
{
	void *pages[PAIRS];
	int nodes[PAIRS];
	size_t k;

	for (k = 0; k < PAIRS; k++) {
		pages[k] = s->r + 2 * k * page_size;
		nodes[k] = node;
	}
	return syscall(SYS_move_pages, s->merger, PAIRS, pages, nodes, status,
		       MPOL_MF_MOVE_ALL);
}

/*
 * The KSM pages move, and every mapping follows them, the one in the area
 * that is not mergeable too: each process maps the new frame, on the
 * other node, as a KSM page, its content intact.
 */
static void sharers_move(struct __test_metadata *_metadata,
			 struct sharers *s)
{
	int node = page_node(s->merger, s->r) ^ 1;
	unsigned long old[PAIRS], pfn;
	int status[PAIRS];
	size_t k;

	for (k = 0; k < PAIRS; k++)
		old[k] = pfn_of(s->merger_fd, s, 2 * k);
	ASSERT_EQ(0, move_pairs(s, node, status));
	for (k = 0; k < PAIRS; k++) {
		EXPECT_EQ(node, status[k]) TH_LOG("pair %zu: status %d", k,
						  status[k]);
		pfn = pfn_of(s->merger_fd, s, 2 * k);
		EXPECT_NE(old[k], pfn);
		EXPECT_EQ(pfn, pfn_of(s->merger_fd, s, 2 * k + 1));
		EXPECT_EQ(pfn, pfn_of(s->sharer_fd, s, s->at[k]))
			TH_LOG("pair %zu: the sharer's mapping stayed behind",
			       k);
		EXPECT_EQ(node, page_node(s->sharer,
					  s->r + s->at[k] * page_size));
	}
	EXPECT_EQ(PAIRS * page_size / 1024, smaps_kb(s->sharer, s->r, "KSM"));
	EXPECT_EQ(2 * PAIRS * page_size / 1024,
		  smaps_kb(s->merger, s->r, "KSM"));
	EXPECT_TRUE(pairs_intact(s, s->merger));
	EXPECT_TRUE(pairs_intact(s, s->sharer));
}

/*
 * The child made the pages KSM pages; this process is the sharer.
 * Upstream's rmap walk misses this process's mapping (it follows the
 * child's anon_vma), and the pages do not move; ours walks the page's
 * own anon_vma, as for any anonymous page, and moves them.
 */
TEST_F_TIMEOUT(migrate, non_mergeable_parent_moves_too, KSM_TEST_TIMEOUT)
{
	struct sharers s = { 0 };

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream's KSM leaves this mapping behind");
	sharers_make(_metadata, &s, CHILD_MERGES);
	sharers_move(_metadata, &s);
	sharers_end(&s);
}

/* This process made the pages KSM pages; the child is the sharer. */
TEST_F_TIMEOUT(migrate, non_mergeable_child_moves_too, KSM_TEST_TIMEOUT)
{
	struct sharers s = { 0 };

	sharers_make(_metadata, &s, CHILD_SITS);
	sharers_move(_metadata, &s);
	sharers_end(&s);
}

/*
 * One process moves the KSM pages between the nodes, over and over, while
 * this one, the sharer, moves each of its KSM pages away with mremap()
 * and back.  A migration that wrote its entries into this process's area,
 * looking for the page at the address where ksmd met it, could see one
 * carried off before it put the page back, and leave it behind: pointing
 * to a freed page, a kernel BUG at the next touch or at exit (an attacker
 * review found it).  Every page must keep its content, and this process
 * must exit cleanly.
 */
TEST_F_TIMEOUT(migrate, non_mergeable_sharer_races_mremap, KSM_TEST_TIMEOUT)
{
	struct sharers s = { 0 };
	pid_t mover;
	long moves;

	sharers_make(_metadata, &s, CHILD_MERGES);
	mover = fork();
	ASSERT_LE(0, mover);
	if (!mover) {
		int status[PAIRS], node = 1;

		for (;; node ^= 1)
			move_pairs(&s, node, status);
	}
	moves = remap_pages(&s);
	kill(mover, SIGKILL);
	waitpid(mover, NULL, 0);
	ASSERT_LE(0, moves);
	TH_LOG("%ld moves there and back", moves);
	EXPECT_TRUE(pairs_intact(&s, s.sharer));
	EXPECT_TRUE(pairs_intact(&s, s.merger));
	sharers_end(&s);
}

/*
 * The same, the other way round: this process made the pages KSM pages
 * and moves them between the nodes, while the child, which shares them
 * in its area that is not mergeable, moves them about with mremap().
 * Upstream's walk reaches the child's mapping at the address where ksmd
 * met the page, wherever mremap() has taken it since: 6.12's kernel hits
 * "kernel BUG at include/linux/swapops.h:505" here within seconds.
 */
TEST_F_TIMEOUT(migrate, non_mergeable_child_races_mremap, KSM_TEST_TIMEOUT)
{
	struct sharers s = { 0 };
	int status[PAIRS], node = 1, wstatus;
	unsigned long rounds = 0;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream's KSM crashes here (swapops.h:505)");
	sharers_make(_metadata, &s, CHILD_REMAPS);
	ASSERT_EQ(sizeof(s.at), write(s.start[1], s.at, sizeof(s.at)));
	while (waitpid(s.child, &wstatus, WNOHANG) == 0) {
		move_pairs(&s, node, status);
		node ^= 1;
		rounds++;
	}
	s.child = 0;
	TH_LOG("%lu rounds of moves", rounds);
	ASSERT_TRUE(WIFEXITED(wstatus));
	EXPECT_EQ(0, WEXITSTATUS(wstatus))
		TH_LOG("the child's mremap() failed, or its pages changed");
	EXPECT_TRUE(pairs_intact(&s, getpid()));
	sharers_end(&s);
}

TEST_HARNESS_MAIN
