/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the KSM selftests: the sysfs knobs in
 * /sys/kernel/mm/ksm/, waiting for ksmd's full scans, page frame numbers
 * from /proc/PID/pagemap, and "worker" processes that own mergeable memory.
 *
 * Helpers never assert; they return 0 or a negative errno and leave the
 * verdict to the test.
 *
 * A note for readers of the tests: EXPECT_*() and ASSERT_*() of
 * kselftest_harness.h end in a for() that takes the next statement as its
 * failure handler (for TH_LOG()), so a loop or an if around one of them
 * needs braces, whatever checkpatch says.
 */
#ifndef KSM_COMMON_H
#define KSM_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KSM_SYSFS_DIR		"/sys/kernel/mm/ksm/"

/*
 * Under QEMU TCG ksmd is 20-50 times slower than on hardware: waits for
 * ksmd give up only after this many seconds of real time.  Tests using them
 * get a harness timeout well above it, so that a stuck ksmd is reported by
 * the assertion that waited for it (and the fixture teardown still runs).
 */
#define KSM_WAIT_SECS		60
#define KSM_TEST_TIMEOUT	180

/*
 * Full scans to wait after the last change before deciding that something
 * was not merged: the first pass over a page only records its checksum, the
 * second may merge it, one more covers a mm that joined mid-scan.
 */
#define KSM_SETTLE_SCANS	3

/* Knobs a test may change; ksm_save() and ksm_restore() cover them all. */
enum ksm_knob {
	KNOB_RUN,
	KNOB_PAGES_TO_SCAN,
	KNOB_SLEEP_MILLISECS,
	KNOB_SMART_SCAN,
	KNOB_USE_ZERO_PAGES,
	KNOB_MAX_PAGE_SHARING,
	KNOB_MERGE_ACROSS_NODES,
	KNOB_MAX_KERNEL_PAGES,
	KNOB_PRUNE_MILLISECS,
	KNOB_ADVISOR_MAX_CPU,
	KNOB_ADVISOR_MIN_PAGES,
	KNOB_ADVISOR_MAX_PAGES,
	KNOB_ADVISOR_TARGET_SCAN_TIME,
	KNOB_MERGE_ZERO_ACROSS_DOMAINS,
	NR_KSM_KNOBS,
};

/* advisor_mode, the one knob that is a word: "[none] scan-time" */
enum ksm_advisor_mode {
	ADVISOR_ABSENT = -1,
	ADVISOR_NONE,
	ADVISOR_SCAN_TIME,
};

struct ksm_saved {
	bool present[NR_KSM_KNOBS];
	unsigned long value[NR_KSM_KNOBS];
	int advisor_mode;	/* enum ksm_advisor_mode */
	char merge_domain[16];	/* ours: "global"...; "" where absent */
};

/* The counters of one moment, read while ksmd is stopped. */
struct ksm_counters {
	unsigned long shared;
	unsigned long sharing;
	unsigned long unshared;
	long volatile_;
	unsigned long full_scans;
};

extern size_t page_size;

/* sysfs knobs */
bool ksm_available(void);
const char *ksm_skip_reason(bool need_pfns);
bool ksm_knob_exists(const char *name);
int ksm_read(const char *name, unsigned long *val);
unsigned long ksm_get(const char *name);
int ksm_write_str(const char *name, const char *str);
int ksm_read_str(const char *name, char *buf, size_t len);
int ksm_advisor_mode(void);
int ksm_set_advisor_mode(int mode);
int ksm_merge_domain(char *buf, size_t len);
int ksm_set_merge_domain(const char *mode);
int ksm_set(const char *name, unsigned long val);
void ksm_save(struct ksm_saved *saved);
void ksm_restore(const struct ksm_saved *saved);
int ksm_prepare(unsigned long pages_to_scan, unsigned long sleep_ms);
int ksm_read_counters(struct ksm_counters *c);
int ksm_stop_and_read(struct ksm_counters *c);

/* ksmd progress */
int ksm_wait_scans(unsigned long nr, unsigned int timeout_s);
int ksm_wait_for(bool (*cond)(void *arg), void *arg, unsigned int timeout_s);
int poll_until(bool (*cond)(void *arg), void *arg, unsigned int timeout_s);
unsigned long now_ms(void);

/* memory and page contents; TAG_ZERO stands for a page of zeroes */
#define TAG_ZERO	(~0ULL)
char *map_anon(size_t npages, bool shared);
void fill_page(void *page, uint64_t tag);
bool page_has(const void *page, uint64_t tag);
int vma_flag(pid_t pid, void *addr, const char *flag);
long smaps_kb(pid_t pid, void *addr, const char *key);

/* memory hotplug: write @state to /sys/devices/system/memory/memory@block/state */
int memory_block_state(int block, const char *state);

/* /proc/vmstat; ULONG_MAX if @name is missing */
unsigned long vmstat_get(const char *name);

/* tracefs: events/ksm/ */
#define TRACEFS_DIR		"/sys/kernel/tracing/"
int trace_ksm_start(const char * const *events);
int trace_ksm_stop(void);
char *trace_read(void);
int trace_count(const char *text, const char *event, const char *match);

/* pagemap */
int pagemap_open(pid_t pid);
unsigned long pagemap_pfn(int fd, const void *addr);
uint64_t pagemap_entry(int fd, const void *addr);
#define PM_PRESENT		(1ULL << 63)
#define PM_SWAP			(1ULL << 62)
#define PM_UFFD_WP		(1ULL << 57)
#define PM_PFN_MASK		((1ULL << 55) - 1)
/* /proc/kpageflags */
#define KPF_HUGE		17
/*
 * 6.12 sets KPF_KSM on every anonymous page (fs/proc/page.c tests
 * "mapping & PAGE_MAPPING_KSM", which includes PAGE_MAPPING_ANON): to
 * tell a KSM page, use smaps' "KSM:" (worker_all_ksm(), smaps_kb()) or
 * frames shared between processes.
 */
#define KPF_KSM			21
#define KPF_THP			22
#define KPF_HWPOISON		19
uint64_t kpageflags(unsigned long pfn);
/* transparent huge pages */
size_t thp_pmd_size(void);
bool pfn_is_thp(unsigned long pfn);
int page_node(pid_t pid, void *addr);
bool pfns_visible(void);
bool pfns_all_distinct(const unsigned long *pfns, size_t n);
unsigned long zero_pfn(void);

/* /proc/PID/ksm_stat */
int read_ksm_stat(pid_t pid, const char *key, long *val);

/* files, swap on zram or a loop device, memory cgroups */
#define ZRAM_SYSFS		"/sys/block/zram0/"
#define ZRAM_DEV		"/dev/zram0"
#define CGROUP_ROOT		"/sys/fs/cgroup/"
int write_file(const char *path, const char *str);
int read_file(const char *path, char *buf, size_t len);
bool file_has(const char *path, const char *word);
long file_number(const char *path);
long file_key(const char *path, const char *key);
int make_swap(const char *dev, unsigned long size);
int zram_swap_on(unsigned long size, bool *own);
int zram_swap_off(void);
#define LOOP_FILE		"/tmp/ksm-loop-swap"
int loop_swap_on(unsigned long size, char *dev, size_t len);
int loop_swap_off(const char *dev);
size_t pages_swapped(int fd, const char *p, size_t n);
bool page_out(int fd, char *p);
int memcg_enter(char *cg, size_t len, const char *name);
int memcg_leave(const char *cg);
long memcg_value(const char *cg, const char *file, const char *key);

/*
 * A worker is a child process that maps and fills its own memory (so that
 * nothing is shared with the test by fork), marks it MADV_MERGEABLE and then
 * obeys commands sent through a pipe.  The test reads the worker's frame
 * numbers from /proc/PID/pagemap.
 */
struct ksm_worker {
	pid_t pid;
	int cmd_fd;		/* commands to the worker */
	int reply_fd;		/* replies from the worker */
	int pagemap_fd;		/* /proc/PID/pagemap of the worker */
	char *addr;		/* the mapping, in the worker's address space */
	size_t npages;
};

int worker_spawn(struct ksm_worker *w, size_t npages,
		 void (*body)(void *arg, int cmd_fd, int reply_fd), void *arg);
int worker_start(struct ksm_worker *w, const uint64_t *tags, size_t npages);
int worker_start_node(struct ksm_worker *w, const uint64_t *tags,
		      size_t npages, int node);
int worker_write(struct ksm_worker *w, size_t idx, uint64_t tag);
int worker_check(struct ksm_worker *w);
int worker_madvise(struct ksm_worker *w, size_t first, size_t nr, int advice);
int worker_stop(struct ksm_worker *w);
unsigned long worker_pfn(struct ksm_worker *w, size_t idx);
size_t worker_swapped(struct ksm_worker *w);
int worker_pfns(struct ksm_worker *w, unsigned long *pfns);
bool worker_all_ksm(struct ksm_worker *w);

/*
 * The fixture most of our programs share: KSM's knobs saved for the
 * teardown, and workers that the teardown stops, however far the test
 * got.  The FIXTURE() has "struct ksm_saved saved;" and "struct
 * ksm_worker w[N];"; FIXTURE_SETUP() starts with KSM_FIXTURE_BEGIN()
 * (which skips the test without root, without KSM, or without frame
 * numbers in pagemap) and then calls ksm_prepare() as it wants ksmd;
 * FIXTURE_TEARDOWN() ends with KSM_FIXTURE_END().
 */
const char *ksm_fixture_begin(struct ksm_saved *saved, struct ksm_worker *w,
			      size_t nr);
void ksm_fixture_end(const struct ksm_saved *saved, struct ksm_worker *w,
		     size_t nr);

#define KSM_FIXTURE_BEGIN()						\
	do {								\
		const char *skip_ = ksm_fixture_begin(&self->saved,	\
				self->w, ARRAY_SIZE(self->w));		\
		if (skip_)						\
			SKIP(return, "%s", skip_);			\
	} while (0)
#define KSM_FIXTURE_END()						\
	ksm_fixture_end(&self->saved, self->w, ARRAY_SIZE(self->w))

/* Conditions for ksm_wait_for() */
struct same_frames {
	struct ksm_worker *w;	/* array of nr_workers */
	int nr_workers;
	size_t first, nr;	/* the pages to look at */
};

/* Pages [first, first + nr) of this process's @p. */
struct own_range {
	int pagemap_fd;		/* pagemap_open(0) */
	char *p;
	size_t first, nr;
};

bool frames_shared(void *same_frames);
bool own_one_frame(void *own_range);
char *map_same(size_t n, uint64_t tag);
bool all_one_frame(void *worker);
uint64_t *make_tags(size_t n, uint64_t base);

#endif /* KSM_COMMON_H */
