// SPDX-License-Identifier: GPL-2.0
/*
 * use_zero_pages: with it set, pages of zeroes are not merged
 * with each other but mapped to the kernel's shared zero page, counted in
 * ksm_zero_pages (globally and per process in /proc/PID/ksm_stat), and
 * unmerged again by a write or MADV_UNMERGEABLE (or moved away by
 * UFFDIO_MOVE, which leaves the ordinary zero page); with it clear, they
 * merge like any other content.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define ZERO_PAGES	32

/* vm sysctls a test changes, put back by the teardown if @restore */
struct vm_sysctls {
	bool restore;
	char min_addr[32], oc_mode[16], oc_ratio[32], oc_kbytes[32];
};

FIXTURE(zero) {
	struct ksm_saved saved;
	struct ksm_worker w[1];
	unsigned long zero_pfn;
	struct vm_sysctls vm;
};

/* The sysctls as they were: overcommit's mode first, then its limit. */
static void vm_sysctls_restore(struct vm_sysctls *vm)
{
	if (!vm->restore)
		return;
	vm->restore = false;
	write_file("/proc/sys/vm/overcommit_memory", vm->oc_mode);
	/* Each of the two zeroes the other: the one that was set */
	if (atoll(vm->oc_kbytes))
		write_file("/proc/sys/vm/overcommit_kbytes", vm->oc_kbytes);
	else
		write_file("/proc/sys/vm/overcommit_ratio", vm->oc_ratio);
	write_file("/proc/sys/vm/mmap_min_addr", vm->min_addr);
}

FIXTURE_SETUP(zero)
{
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	ASSERT_TRUE(ksm_knob_exists("use_zero_pages"))
		TH_LOG("no %suse_zero_pages", KSM_SYSFS_DIR);
	ASSERT_TRUE(ksm_knob_exists("ksm_zero_pages"))
		TH_LOG("no %sksm_zero_pages", KSM_SYSFS_DIR);
	self->zero_pfn = zero_pfn();
	ASSERT_NE(0, self->zero_pfn) TH_LOG("cannot see the zero page's frame");
}

FIXTURE_TEARDOWN(zero)
{
	vm_sysctls_restore(&self->vm);
	KSM_FIXTURE_END();
}

/* kstrtobool(): 1/0, y/n, t/f, on/off (by the first letters). */
TEST_F(zero, knob_values)
{
	static const struct { const char *in; unsigned long val; } good[] = {
		{ "1", 1 }, { "0", 0 }, { "y", 1 }, { "n", 0 }, { "Y\n", 1 },
		{ "N\n", 0 }, { "on", 1 }, { "off", 0 }, { "true", 1 },
		{ "false", 0 },
	};
	static const char * const junk[] = {
		"\n", "2", "-1", "abc", "o", "99999999999999999999",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		EXPECT_EQ(0, ksm_write_str("use_zero_pages", good[i].in))
			TH_LOG("\"%s\" refused", good[i].in);
		EXPECT_EQ(good[i].val, ksm_get("use_zero_pages"))
			TH_LOG("after \"%s\"", good[i].in);
	}
	ASSERT_EQ(0, ksm_set("use_zero_pages", 1));
	for (i = 0; i < ARRAY_SIZE(junk); i++) {
		EXPECT_EQ(-EINVAL, ksm_write_str("use_zero_pages", junk[i]))
			TH_LOG("\"%s\"", junk[i]);
		EXPECT_EQ(1, ksm_get("use_zero_pages"));
	}
}

struct on_frame {
	struct ksm_worker *w;
	unsigned long pfn;
};

static bool all_on_frame(void *arg)
{
	struct on_frame *f = arg;
	size_t i;

	for (i = 0; i < f->w->npages; i++)
		if (worker_pfn(f->w, i) != f->pfn)
			return false;
	return true;
}

static int zero_tags_worker(struct ksm_worker *w)
{
	uint64_t tags[ZERO_PAGES];
	size_t i;

	for (i = 0; i < ZERO_PAGES; i++)
		tags[i] = TAG_ZERO;
	return worker_start(w, tags, ZERO_PAGES);
}

TEST_F_TIMEOUT(zero, merged_with_zero_page, KSM_TEST_TIMEOUT)
{
	struct on_frame f = { self->w, self->zero_pfn };
	unsigned long pfns[ZERO_PAGES];
	struct ksm_counters c;
	long stat;

	ASSERT_EQ(0, ksm_set("use_zero_pages", 1));
	ASSERT_EQ(0, zero_tags_worker(self->w));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_on_frame, &f, KSM_WAIT_SECS))
		TH_LOG("pages of zeroes were not mapped to the zero page");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_TRUE(all_on_frame(&f));
	EXPECT_EQ(0, c.shared);
	EXPECT_EQ(0, c.sharing);
	EXPECT_EQ(ZERO_PAGES, ksm_get("ksm_zero_pages"));
	ASSERT_EQ(0, read_ksm_stat(self->w[0].pid, "ksm_zero_pages", &stat));
	EXPECT_EQ(ZERO_PAGES, stat);
	EXPECT_EQ(0, worker_check(self->w));

	/* A write unmaps the zero page from that address only. */
	ASSERT_EQ(0, worker_write(self->w, 0, 0x1234));
	EXPECT_NE(self->zero_pfn, worker_pfn(self->w, 0));
	EXPECT_EQ(self->zero_pfn, worker_pfn(self->w, 1));
	EXPECT_EQ(ZERO_PAGES - 1, ksm_get("ksm_zero_pages"));
	ASSERT_EQ(0, read_ksm_stat(self->w[0].pid, "ksm_zero_pages", &stat));
	EXPECT_EQ(ZERO_PAGES - 1, stat);

	/* MADV_UNMERGEABLE gives every page a frame of its own. */
	ASSERT_EQ(0, worker_madvise(self->w, 0, ZERO_PAGES, MADV_UNMERGEABLE));
	worker_pfns(self->w, pfns);
	EXPECT_TRUE(pfns_all_distinct(pfns, ZERO_PAGES));
	EXPECT_NE(self->zero_pfn, pfns[1]);
	EXPECT_EQ(0, ksm_get("ksm_zero_pages"));
	EXPECT_EQ(0, worker_check(self->w));
}

/* Without use_zero_pages, zeroes are content like any other. */
TEST_F_TIMEOUT(zero, merged_as_content_without_knob, KSM_TEST_TIMEOUT)
{
	struct ksm_counters c;

	ASSERT_EQ(0, ksm_set("use_zero_pages", 0));
	ASSERT_EQ(0, zero_tags_worker(self->w));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_one_frame, self->w, KSM_WAIT_SECS))
		TH_LOG("pages of zeroes were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_NE(self->zero_pfn, worker_pfn(self->w, 0));
	EXPECT_EQ(1, c.shared);
	EXPECT_EQ(ZERO_PAGES - 1, c.sharing);
	EXPECT_EQ(0, ksm_get("ksm_zero_pages"));
	EXPECT_EQ(0, worker_check(self->w));
}

/*
 * ZERO_PAGES pages of zeroes of this process's, of their own (not the
 * zero page a read fault maps), at @z->p: mapped by ksmd to the zero page,
 * then ksmd stopped.
 */
static void own_zero_pages(struct __test_metadata *_metadata,
			   struct own_range *z, unsigned long zero_pfn)
{
	size_t len = ZERO_PAGES * page_size;

	ASSERT_EQ(0, madvise(z->p, len, MADV_NOHUGEPAGE));
	memset(z->p, 1, len);
	memset(z->p, 0, len);
	ASSERT_EQ(0, ksm_set("use_zero_pages", 1));
	ASSERT_EQ(0, madvise(z->p, len, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(own_one_frame, z, KSM_WAIT_SECS))
		TH_LOG("pages of zeroes were not merged");
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_EQ(zero_pfn, pagemap_pfn(z->pagemap_fd, z->p));
}

/*
 * UFFDIO_MOVE of KSM zero pages: the source's mappings go, and what the
 * destination gets is the ordinary zero page (the move makes a new PTE),
 * so ksm_zero_pages drops, globally and for the process.  In 6.12
 * move_zeropage_pte() cleared the source PTE without telling KSM, and the
 * counts stayed up for good (patches/0005).
 */
TEST_F_TIMEOUT(zero, uffd_move_unmaps, KSM_TEST_TIMEOUT)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_MOVE };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_move move = { 0 };
	size_t len = ZERO_PAGES * page_size, i;
	struct own_range z = { .nr = ZERO_PAGES };
	char *area;
	long stat;
	int uffd;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream 6.12 counts moved KSM zero pages still");
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		SKIP(return, "no userfaultfd: %s", strerror(errno));
	if (ioctl(uffd, UFFDIO_API, &api) ||
	    !(api.features & UFFD_FEATURE_MOVE)) {
		close(uffd);
		SKIP(return, "no UFFDIO_MOVE");
	}
	z.pagemap_fd = pagemap_open(0);
	ASSERT_LE(0, z.pagemap_fd);
	z.p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, z.p);
	area = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	own_zero_pages(_metadata, &z, self->zero_pfn);
	ASSERT_EQ(ZERO_PAGES, ksm_get("ksm_zero_pages"));

	reg.range.start = (unsigned long)area;
	reg.range.len = len;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));
	move.dst = (unsigned long)area;
	move.src = (unsigned long)z.p;
	move.len = len;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_MOVE, &move))
		TH_LOG("UFFDIO_MOVE: %s", strerror(errno));
	EXPECT_EQ(len, move.move);
	/* No read of the destination: if empty, it would wait for us. */
	for (i = 0; i < ZERO_PAGES; i++) {
		char *at = area + page_size * i;

		EXPECT_EQ(0, pagemap_pfn(z.pagemap_fd, z.p + i * page_size));
		EXPECT_EQ(self->zero_pfn, pagemap_pfn(z.pagemap_fd, at));
	}
	EXPECT_EQ(0, ksm_get("ksm_zero_pages"))
		TH_LOG("the moved KSM zero pages are still counted");
	ASSERT_EQ(0, read_ksm_stat(getpid(), "ksm_zero_pages", &stat));
	EXPECT_EQ(0, stat);

	/* The destination's zero pages were never KSM's: nothing drops. */
	munmap(area, len);
	munmap(z.p, len);
	EXPECT_EQ(0, ksm_get("ksm_zero_pages"));
	ASSERT_EQ(0, read_ksm_stat(getpid(), "ksm_zero_pages", &stat));
	EXPECT_EQ(0, stat);
	close(uffd);
	close(z.pagemap_fd);
}

/*
 * A private writable area of @at (MAP_FIXED) that fork's accounting
 * refuses to copy, under the default heuristic overcommit: bigger than
 * RAM and swap, made of two mmaps that are not, which merge into one.
 * Its size, or 0.
 */
static size_t map_unforkable(char *at)
{
	long kb = file_key("/proc/meminfo", "MemTotal") +
		  file_key("/proc/meminfo", "SwapTotal");
	size_t half = (size_t)kb * 1024 / 4 * 3 / page_size * page_size;

	if (kb <= 0 ||
	    mmap(at, half, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at ||
	    mmap(at + half, half, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at + half)
		return 0;
	return 2 * half;
}

/*
 * Fork, which must fail, put the sysctls back, then check that
 * ksm_zero_pages, global and ours, still count our ZERO_PAGES.
 */
static void fork_fails(struct __test_metadata *_metadata,
		       struct vm_sysctls *vm)
{
	long stat;
	pid_t pid;
	int err;

	pid = fork();
	if (!pid)
		_exit(0);
	err = errno;
	vm_sysctls_restore(vm);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	ASSERT_GT(0, pid) TH_LOG("the fork did not fail: no test");
	ASSERT_EQ(ENOMEM, err);
	EXPECT_EQ(ZERO_PAGES, ksm_get("ksm_zero_pages"))
		TH_LOG("the failed child's copies went off the count");
	ASSERT_EQ(0, read_ksm_stat(getpid(), "ksm_zero_pages", &stat));
	EXPECT_EQ(ZERO_PAGES, stat);
}

/*
 * A fork that fails part way (here overcommit refuses the child a big
 * area, after it copied the area of KSM zero pages below it) leaves
 * ksm_zero_pages as it was.  The child's copies are KSM zero PTEs too,
 * and unmapping them takes them off the count; in 6.12 nothing had put
 * them on it (that happens only once a fork succeeds), so the global
 * count dropped by the copies, for good (patches/0006).
 */
TEST_F_TIMEOUT(zero, failed_fork_keeps_counts, KSM_TEST_TIMEOUT)
{
	size_t len = ZERO_PAGES * page_size, big = 0;
	struct own_range z = { .nr = ZERO_PAGES };
	char *area;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream 6.12 loses the failed child's copies");
	if (!file_has("/proc/sys/vm/overcommit_memory", "0"))
		SKIP(return, "overcommit is not heuristic here");
	z.pagemap_fd = pagemap_open(0);
	ASSERT_LE(0, z.pagemap_fd);
	/* The zero pages' area below the big one: fork copies it first. */
	area = mmap(NULL, 4 * len + (2UL << 40), PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	z.p = area;
	ASSERT_EQ(z.p, mmap(z.p, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	own_zero_pages(_metadata, &z, self->zero_pfn);
	ASSERT_EQ(ZERO_PAGES, ksm_get("ksm_zero_pages"));
	big = map_unforkable(area + 2 * len);
	ASSERT_NE(0, big);

	fork_fails(_metadata, &self->vm);
	munmap(area, 4 * len + (2UL << 40));
	EXPECT_EQ(0, ksm_get("ksm_zero_pages"));
	close(z.pagemap_fd);
}

/*
 * The same where the area refused is the first, at address 0
 * (mmap_min_addr 0): the child's first entry is then the marker of a
 * failed copy, not an area.  Here strict overcommit, with no room left,
 * refuses it (below a static binary, an area at 0 is small): the
 * fixture puts the sysctls back, whatever happens.
 */
TEST_F_TIMEOUT(zero, failed_fork_at_zero_keeps_counts, KSM_TEST_TIMEOUT)
{
	struct own_range z = { .nr = ZERO_PAGES };
	long kb;
	char buf[32];

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "upstream 6.12 loses the failed child's copies");
	ASSERT_EQ(0, read_file("/proc/sys/vm/mmap_min_addr", self->vm.min_addr,
			       sizeof(self->vm.min_addr)));
	ASSERT_EQ(0, read_file("/proc/sys/vm/overcommit_memory",
			       self->vm.oc_mode, sizeof(self->vm.oc_mode)));
	ASSERT_EQ(0, read_file("/proc/sys/vm/overcommit_ratio",
			       self->vm.oc_ratio, sizeof(self->vm.oc_ratio)));
	ASSERT_EQ(0, read_file("/proc/sys/vm/overcommit_kbytes",
			       self->vm.oc_kbytes, sizeof(self->vm.oc_kbytes)));
	z.pagemap_fd = pagemap_open(0);
	ASSERT_LE(0, z.pagemap_fd);
	z.p = mmap(NULL, ZERO_PAGES * page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, z.p);
	own_zero_pages(_metadata, &z, self->zero_pfn);

	self->vm.restore = true;
	ASSERT_EQ(0, write_file("/proc/sys/vm/mmap_min_addr", "0"));
	ASSERT_EQ(NULL, mmap(NULL, 1UL << 20, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS |
			     MAP_FIXED_NOREPLACE, -1, 0));
	/* A commit limit of what is committed now: no room */
	kb = file_key("/proc/meminfo", "Committed_AS") -
	     file_key("/proc/meminfo", "SwapTotal");
	if (kb <= 0)
		SKIP(return, "more swap than committed memory");
	snprintf(buf, sizeof(buf), "%ld", kb);
	ASSERT_EQ(0, write_file("/proc/sys/vm/overcommit_kbytes", buf));
	ASSERT_EQ(0, write_file("/proc/sys/vm/overcommit_memory", "2"));
	fork_fails(_metadata, &self->vm);
	munmap(NULL, 1UL << 20);
	munmap(z.p, ZERO_PAGES * page_size);
	EXPECT_EQ(0, ksm_get("ksm_zero_pages"));
	close(z.pagemap_fd);
}

TEST_HARNESS_MAIN
