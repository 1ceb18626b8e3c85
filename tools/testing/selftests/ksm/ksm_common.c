// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the KSM selftests; see ksm_common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/loop.h>

#include "../kselftest.h"
#include "ksm_common.h"

size_t page_size;

static const char * const knob_names[NR_KSM_KNOBS] = {
	[KNOB_RUN]			= "run",
	[KNOB_PAGES_TO_SCAN]		= "pages_to_scan",
	[KNOB_SLEEP_MILLISECS]		= "sleep_millisecs",
	[KNOB_SMART_SCAN]		= "smart_scan",
	[KNOB_USE_ZERO_PAGES]		= "use_zero_pages",
	[KNOB_MAX_PAGE_SHARING]		= "max_page_sharing",
	[KNOB_MERGE_ACROSS_NODES]	= "merge_across_nodes",
	[KNOB_MAX_KERNEL_PAGES]		= "max_kernel_pages",
	[KNOB_PRUNE_MILLISECS]		= "stable_node_chains_prune_millisecs",
	[KNOB_ADVISOR_MAX_CPU]		= "advisor_max_cpu",
	[KNOB_ADVISOR_MIN_PAGES]	= "advisor_min_pages_to_scan",
	[KNOB_ADVISOR_MAX_PAGES]	= "advisor_max_pages_to_scan",
	[KNOB_ADVISOR_TARGET_SCAN_TIME]	= "advisor_target_scan_time",
	[KNOB_MERGE_ZERO_ACROSS_DOMAINS] = "merge_zero_across_domains",
};

static void __attribute__((constructor)) ksm_common_init(void)
{
	page_size = sysconf(_SC_PAGESIZE);
}

/*
 * The file of knob @name: relative to KSM_SYSFS_DIR, or an absolute path
 * (e.g. a khugepaged knob), so the helpers below serve any sysfs number.
 */
static void knob_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s%s", name[0] == '/' ? "" : KSM_SYSFS_DIR, name);
}

bool ksm_available(void)
{
	return access(KSM_SYSFS_DIR "run", F_OK) == 0;
}

bool ksm_knob_exists(const char *name)
{
	char path[PATH_MAX];

	knob_path(path, sizeof(path), name);
	return access(path, F_OK) == 0;
}

/* Read a knob that holds one unsigned decimal number and a newline. */
int ksm_read(const char *name, unsigned long *val)
{
	char path[PATH_MAX], buf[64], *end;
	ssize_t len;
	int fd;

	knob_path(path, sizeof(path), name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	if (len < 0) {
		len = -errno;
		close(fd);
		return len;
	}
	close(fd);
	buf[len] = '\0';
	if (len < 2 || buf[len - 1] != '\n' || buf[0] < '0' || buf[0] > '9')
		return -EBADMSG;
	errno = 0;
	*val = strtoul(buf, &end, 10);
	if (errno || *end != '\n')
		return -EBADMSG;
	return 0;
}

/* Read a knob; ULONG_MAX if it cannot be read, which no test expects. */
unsigned long ksm_get(const char *name)
{
	unsigned long val;

	if (ksm_read(name, &val)) {
		ksft_print_msg("cannot read %s%s\n", KSM_SYSFS_DIR, name);
		return ULONG_MAX;
	}
	return val;
}

/* Write @str to a knob in one write(); 0 or the negative errno. */
int ksm_write_str(const char *name, const char *str)
{
	char path[PATH_MAX];
	size_t len = strlen(str);
	ssize_t ret;
	int fd;

	knob_path(path, sizeof(path), name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ret = write(fd, str, len);
	if (ret < 0)
		ret = -errno;
	else if ((size_t)ret != len)
		ret = -EIO;
	else
		ret = 0;
	close(fd);
	return ret;
}

/* The contents of a knob, NUL-terminated; its length or a negative errno. */
int ksm_read_str(const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t ret;
	int fd;

	knob_path(path, sizeof(path), name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ret = read(fd, buf, len - 1);
	if (ret < 0)
		ret = -errno;
	else
		buf[ret] = '\0';
	close(fd);
	return ret;
}

/* The advisor in force (enum ksm_advisor_mode), or a negative errno. */
int ksm_advisor_mode(void)
{
	char buf[64];
	int ret = ksm_read_str("advisor_mode", buf, sizeof(buf));

	if (ret == -ENOENT)
		return ADVISOR_ABSENT;
	if (ret < 0)
		return ret;
	if (!strcmp(buf, "[none] scan-time\n"))
		return ADVISOR_NONE;
	if (!strcmp(buf, "none [scan-time]\n"))
		return ADVISOR_SCAN_TIME;
	return -EBADMSG;
}

int ksm_set_advisor_mode(int mode)
{
	return ksm_write_str("advisor_mode",
			     mode == ADVISOR_SCAN_TIME ? "scan-time" : "none");
}

int ksm_set(const char *name, unsigned long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu\n", val);
	return ksm_write_str(name, buf);
}

/*
 * Ours: the merge domain mode in force ("global", "process", "cgroup"),
 * the bracketed word of merge_domain; 0 or a negative errno.
 */
int ksm_merge_domain(char *buf, size_t len)
{
	char raw[64], *open, *close;
	int ret = ksm_read_str("merge_domain", raw, sizeof(raw));

	if (ret < 0)
		return ret;
	open = strchr(raw, '[');
	close = open ? strchr(open, ']') : NULL;
	if (!close || (size_t)(close - open) > len)
		return -EPROTO;
	*close = '\0';
	snprintf(buf, len, "%s", open + 1);
	return 0;
}

/* Set merge_domain: 0 or a negative errno (EBUSY while KSM pages exist). */
int ksm_set_merge_domain(const char *mode)
{
	return ksm_write_str("merge_domain", mode);
}

void ksm_save(struct ksm_saved *saved)
{
	int i;

	for (i = 0; i < NR_KSM_KNOBS; i++)
		saved->present[i] = !ksm_read(knob_names[i], &saved->value[i]);
	saved->advisor_mode = ksm_advisor_mode();
	if (ksm_merge_domain(saved->merge_domain, sizeof(saved->merge_domain)))
		saved->merge_domain[0] = '\0';
}

/*
 * Our KSM keeps advisor_min_pages_to_scan <= advisor_max_pages_to_scan at
 * every write: put the pair back in whichever order works.
 */
static void restore_advisor_bounds(const struct ksm_saved *saved)
{
	static const int pair[] = { KNOB_ADVISOR_MAX_PAGES,
				    KNOB_ADVISOR_MIN_PAGES };
	unsigned long cur;
	int i, round;

	for (round = 0; round < 2; round++) {
		for (i = 0; i < 2; i++) {
			int k = pair[i];

			if (!saved->present[k] ||
			    (!ksm_read(knob_names[k], &cur) &&
			     cur == saved->value[k]))
				continue;
			if (ksm_set(knob_names[k], saved->value[k]) && round)
				ksft_print_msg("restore: cannot write %s=%lu\n",
					       knob_names[k], saved->value[k]);
		}
	}
}

/*
 * Put every saved knob back.  merge_across_nodes and max_page_sharing can
 * only change while no KSM page exists, so unmerge everything first.
 */
void ksm_restore(const struct ksm_saved *saved)
{
	unsigned long cur;
	int i;

	if (ksm_set("run", 2))
		ksft_print_msg("restore: cannot write run=2\n");
	/* First: pages_to_scan is not writable while an advisor is on. */
	if (saved->advisor_mode >= 0 && ksm_advisor_mode() != ADVISOR_NONE &&
	    ksm_set_advisor_mode(ADVISOR_NONE))
		ksft_print_msg("restore: cannot write advisor_mode=none\n");
	restore_advisor_bounds(saved);
	for (i = 0; i < NR_KSM_KNOBS; i++) {
		if (i == KNOB_RUN || i == KNOB_ADVISOR_MIN_PAGES ||
		    i == KNOB_ADVISOR_MAX_PAGES || !saved->present[i])
			continue;
		if (!ksm_read(knob_names[i], &cur) && cur == saved->value[i])
			continue;
		if (ksm_set(knob_names[i], saved->value[i]))
			ksft_print_msg("restore: cannot write %s=%lu\n",
				       knob_names[i], saved->value[i]);
	}
	if (saved->merge_domain[0]) {
		char cur_mode[16];

		if ((ksm_merge_domain(cur_mode, sizeof(cur_mode)) ||
		     strcmp(cur_mode, saved->merge_domain)) &&
		    ksm_set_merge_domain(saved->merge_domain))
			ksft_print_msg("restore: cannot write merge_domain=%s\n",
				       saved->merge_domain);
	}
	/* Last: it sets pages_to_scan. */
	if (saved->advisor_mode == ADVISOR_SCAN_TIME &&
	    ksm_set_advisor_mode(ADVISOR_SCAN_TIME))
		ksft_print_msg("restore: cannot write advisor_mode=scan-time\n");
	if (saved->present[KNOB_RUN] && saved->value[KNOB_RUN] != 2 &&
	    ksm_set("run", saved->value[KNOB_RUN]))
		ksft_print_msg("restore: cannot write run=%lu\n",
			       saved->value[KNOB_RUN]);
}

/*
 * Start from a clean state: ksmd stopped with nothing merged, and the scan
 * rate given.  Smart scan (where the kernel has it) is switched off, since it
 * makes pages_unshared and pages_volatile depend on how often a page was
 * skipped.  Returns 0 or the first error.
 */
int ksm_prepare(unsigned long pages_to_scan, unsigned long sleep_ms)
{
	int ret;

	ret = ksm_set("run", 2);
	if (ret)
		return ret;
	if (ksm_knob_exists("smart_scan")) {
		ret = ksm_set("smart_scan", 0);
		if (ret)
			return ret;
	}
	ret = ksm_set("pages_to_scan", pages_to_scan);
	if (ret)
		return ret;
	return ksm_set("sleep_millisecs", sleep_ms);
}

/* pages_volatile is computed by upstream, and printed signed. */
static int ksm_read_signed(const char *name, long *val)
{
	char path[PATH_MAX], buf[64], *end;
	ssize_t len;
	int fd;

	knob_path(path, sizeof(path), name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -EIO;
	buf[len] = '\0';
	errno = 0;
	*val = strtol(buf, &end, 10);
	if (errno || end == buf || *end != '\n')
		return -EBADMSG;
	return 0;
}

int ksm_read_counters(struct ksm_counters *c)
{
	int ret;

	ret = ksm_read("pages_shared", &c->shared);
	if (!ret)
		ret = ksm_read("pages_sharing", &c->sharing);
	if (!ret)
		ret = ksm_read("pages_unshared", &c->unshared);
	if (!ret)
		ret = ksm_read("full_scans", &c->full_scans);
	if (!ret)
		ret = ksm_read_signed("pages_volatile", &c->volatile_);
	return ret;
}

/*
 * Stop ksmd and read the counters.  Writing run waits for a scan batch in
 * progress, so the counters do not move while they are read.
 */
int ksm_stop_and_read(struct ksm_counters *c)
{
	int ret = ksm_set("run", 0);

	if (ret)
		return ret;
	return ksm_read_counters(c);
}

unsigned long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000UL + ts.tv_nsec / 1000000;
}

/* Wait until full_scans has advanced by @nr; 0 or -ETIMEDOUT. */
int ksm_wait_scans(unsigned long nr, unsigned int timeout_s)
{
	unsigned long deadline = now_ms() + timeout_s * 1000UL;
	unsigned long start, cur;
	int ret;

	ret = ksm_read("full_scans", &start);
	if (ret)
		return ret;
	for (;;) {
		ret = ksm_read("full_scans", &cur);
		if (ret)
			return ret;
		if (cur >= start + nr)
			return 0;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

/* Poll @cond every 10 ms, whatever ksmd does; 0 or -ETIMEDOUT. */
int poll_until(bool (*cond)(void *arg), void *arg, unsigned int timeout_s)
{
	unsigned long deadline = now_ms() + timeout_s * 1000UL;

	while (!cond(arg)) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(10000);
	}
	return 0;
}

/*
 * Wait until @cond holds, testing it at once and then once per full scan.
 * 0 when it holds, -ETIMEDOUT when it still does not after @timeout_s
 * seconds.  ksmd may be at work while @cond reads: a condition over many
 * pages should read them all before judging (see ksm_domains.c).
 */
int ksm_wait_for(bool (*cond)(void *arg), void *arg, unsigned int timeout_s)
{
	unsigned long deadline = now_ms() + timeout_s * 1000UL;
	unsigned long start, cur;

	for (;;) {
		if (cond(arg))
			return 0;
		if (ksm_read("full_scans", &start))
			return -EIO;
		do {
			if (now_ms() > deadline)
				return cond(arg) ? 0 : -ETIMEDOUT;
			usleep(10000);
			if (ksm_read("full_scans", &cur))
				return -EIO;
		} while (cur == start);
	}
}

/* A private (or shared) anonymous mapping without transparent huge pages. */
char *map_anon(size_t npages, bool shared)
{
	size_t len = npages * page_size;
	char *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* KSM merges small pages; THP may be absent (EINVAL), that is fine. */
	if (madvise(p, len, MADV_NOHUGEPAGE) && errno != EINVAL) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

/*
 * Page contents are a function of a 64-bit tag: equal tags, equal pages.
 * Only TAG_ZERO gives a page of zeroes (which use_zero_pages treats apart).
 */
void fill_page(void *page, uint64_t tag)
{
	uint64_t *w = page;
	size_t i;

	if (tag == TAG_ZERO) {
		memset(page, 0, page_size);
		return;
	}
	w[0] = tag;
	for (i = 1; i < page_size / sizeof(*w); i++)
		w[i] = tag * 0x9e3779b97f4a7c15ULL + i;
}

bool page_has(const void *page, uint64_t tag)
{
	const uint64_t *w = page;
	size_t i;

	if (tag == TAG_ZERO) {
		for (i = 0; i < page_size / sizeof(*w); i++)
			if (w[i])
				return false;
		return true;
	}
	if (w[0] != tag)
		return false;
	for (i = 1; i < page_size / sizeof(*w); i++)
		if (w[i] != tag * 0x9e3779b97f4a7c15ULL + i)
			return false;
	return true;
}

/*
 * Does the VMA of process @pid (0: this one) that contains @addr carry
 * @flag (e.g. "mg" for VM_MERGEABLE) in the VmFlags line of smaps?
 * Returns 1, 0, or a negative errno (-ENOENT: nothing mapped there).
 */
int vma_flag(pid_t pid, void *addr, const char *flag)
{
	unsigned long start, end, a = (unsigned long)addr;
	char line[512], *tok, *save;
	bool in_vma = false;
	int ret = -ENOENT;
	FILE *f;

	if (pid)
		snprintf(line, sizeof(line), "/proc/%d/smaps", pid);
	else
		snprintf(line, sizeof(line), "/proc/self/smaps");
	f = fopen(line, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!in_vma) {
			in_vma = sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
				 start <= a && a < end;
			continue;
		}
		if (strncmp(line, "VmFlags:", 8))
			continue;
		ret = 0;
		for (tok = strtok_r(line + 8, "\t\n ", &save); tok;
		     tok = strtok_r(NULL, "\t\n ", &save))
			if (!strcmp(tok, flag))
				ret = 1;
		break;
	}
	fclose(f);
	return ret;
}

/*
 * The "@key: N kB" line (e.g. "KSM", "AnonHugePages") of the VMA that
 * contains @addr in /proc/PID/smaps (@pid 0: this process): N, or a
 * negative errno (-ENOENT: no such VMA or line).
 */
long smaps_kb(pid_t pid, void *addr, const char *key)
{
	unsigned long start, end, a = (unsigned long)addr;
	size_t klen = strlen(key);
	char line[512];
	bool in_vma = false;
	long ret = -ENOENT;
	FILE *f;

	if (pid)
		snprintf(line, sizeof(line), "/proc/%d/smaps", pid);
	else
		snprintf(line, sizeof(line), "/proc/self/smaps");
	f = fopen(line, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			if (in_vma)
				break;
			in_vma = start <= a && a < end;
			continue;
		}
		if (in_vma && !strncmp(line, key, klen) && line[klen] == ':') {
			ret = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return ret;
}

/*
 * The value of @key in /proc/PID/ksm_stat (@pid 0: this process).  Returns
 * 0, -ENOENT when the file or the key is missing, or another -errno.
 */
int read_ksm_stat(pid_t pid, const char *key, long *val)
{
	char path[64], line[128];
	size_t klen = strlen(key);
	int ret = -ENOENT;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ksm_stat", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ksm_stat");
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ' ')
			continue;
		*val = strtol(line + klen + 1, NULL, 10);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* Write @str to the file @path in one write(); 0 or a negative errno. */
int write_file(const char *path, const char *str)
{
	ssize_t ret;
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		return -errno;
	ret = write(fd, str, strlen(str));
	ret = ret < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* The start of @path's content, NUL-terminated, in @buf: 0 or -errno. */
int read_file(const char *path, char *buf, size_t len)
{
	ssize_t ret;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	ret = read(fd, buf, len - 1);
	ret = ret < 0 ? -errno : ret;
	close(fd);
	if (ret < 0)
		return ret;
	buf[ret] = '\0';
	return 0;
}

/* The first number in @path, or -1. */
long file_number(const char *path)
{
	long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &val) != 1)
		val = -1;
	fclose(f);
	return val;
}

/* Does the start (4 KiB) of the file @path contain @word? */
bool file_has(const char *path, const char *word)
{
	char buf[4096];
	ssize_t len;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	return strstr(buf, word);
}

/* mkswap: a version-1 swap header on the first page of @dev. */
int make_swap(const char *dev, unsigned long size)
{
	char *hdr = calloc(1, page_size);
	uint32_t *info = (uint32_t *)(hdr + 1024);
	int fd, ret = 0;

	if (!hdr)
		return -ENOMEM;
	info[0] = 1;				/* version */
	info[1] = size / page_size - 1;		/* last_page */
	info[2] = 0;				/* nr_badpages */
	memcpy(hdr + page_size - 10, "SWAPSPACE2", 10);
	fd = open(dev, O_WRONLY);
	if (fd < 0 || pwrite(fd, hdr, page_size, 0) != (ssize_t)page_size)
		ret = -errno;
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(hdr);
	return ret;
}

/*
 * Swap on zram0 (@size bytes), unless zram0 is swap already.  Returns 0,
 * -EBUSY when zram0 is in use but not as swap, or another negative errno.
 * *@own is set as soon as this call has sized zram0: the caller then owns
 * the device and takes it down with zram_swap_off(), even after an error.
 */
int zram_swap_on(unsigned long size, bool *own)
{
	unsigned long disksize;
	char buf[32];
	FILE *f;
	int ret;

	*own = false;
	if (file_has("/proc/swaps", ZRAM_DEV))
		return 0;
	f = fopen(ZRAM_SYSFS "disksize", "r");
	if (!f)
		return -errno;
	ret = fscanf(f, "%lu", &disksize);
	fclose(f);
	if (ret != 1)
		return -EBADMSG;
	if (disksize)
		return -EBUSY;
	snprintf(buf, sizeof(buf), "%lu", size);
	ret = write_file(ZRAM_SYSFS "disksize", buf);
	if (ret)
		return ret;
	*own = true;
	ret = make_swap(ZRAM_DEV, size);
	if (ret)
		return ret;
	if (swapon(ZRAM_DEV, 0))
		return -errno;
	return 0;
}

/* Undo zram_swap_on(): swapoff, then reset zram0; 0 or swapoff's -errno. */
int zram_swap_off(void)
{
	int ret = 0;

	if (swapoff(ZRAM_DEV))
		ret = -errno;
	write_file(ZRAM_SYSFS "reset", "1");
	return ret;
}

/*
 * Swap on a loop device over a file in /tmp, of @size bytes, preferred to
 * any other swap.  Unlike zram's, its writes complete later, in the loop
 * device's worker, as a disk's do: reclaim leaves a page it wrote in the
 * swap cache until the write ends.  @dev gets the device's path ("" until
 * it is set up), for loop_swap_off().  Returns 0 or a negative errno.
 */
int loop_swap_on(unsigned long size, char *dev, size_t len)
{
	int ctl, fd = -1, file, nr, ret = 0;

	dev[0] = '\0';
	file = open(LOOP_FILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file < 0)
		return -errno;
	if (ftruncate(file, size)) {
		ret = -errno;
		goto out;
	}
	ctl = open("/dev/loop-control", O_RDWR);
	if (ctl < 0) {
		ret = -errno;
		goto out;
	}
	nr = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (nr < 0)
		ret = -errno;
	close(ctl);
	if (ret)
		goto out;
	snprintf(dev, len, "/dev/loop%d", nr);
	fd = open(dev, O_RDWR);
	if (fd < 0 || ioctl(fd, LOOP_SET_FD, file)) {
		ret = -errno;
		dev[0] = '\0';
		goto out;
	}
	ret = make_swap(dev, size);
	if (!ret && swapon(dev, SWAP_FLAG_PREFER | SWAP_FLAG_PRIO_MASK))
		ret = -errno;
out:
	if (fd >= 0)
		close(fd);
	close(file);
	return ret;
}

/* Undo loop_swap_on(): swapoff, detach, remove the file; 0 or -errno. */
int loop_swap_off(const char *dev)
{
	int fd, ret = 0;

	if (!dev[0])
		return 0;
	if (swapoff(dev) && errno != EINVAL)
		ret = -errno;
	fd = open(dev, O_RDWR);
	if (fd >= 0) {
		if (ioctl(fd, LOOP_CLR_FD) && !ret)
			ret = -errno;
		close(fd);
	}
	unlink(LOOP_FILE);
	return ret;
}

/*
 * Move this process into a new memory cgroup CGROUP_ROOT "@name.PID", with
 * the memory controller enabled for the root's children first.  @cg gets
 * its path once it exists ("" before), for memcg_leave().  Returns 0 or a
 * negative errno.
 */
int memcg_enter(char *cg, size_t len, const char *name)
{
	char path[PATH_MAX];
	int ret;

	cg[0] = '\0';
	if (!file_has(CGROUP_ROOT "cgroup.subtree_control", "memory")) {
		ret = write_file(CGROUP_ROOT "cgroup.subtree_control",
				 "+memory");
		if (ret)
			return ret;
	}
	snprintf(path, sizeof(path), CGROUP_ROOT "%s.%d", name, getpid());
	if (mkdir(path, 0755))
		return -errno;
	snprintf(cg, len, "%s", path);
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	return write_file(path, "0");
}

/* Back to the root cgroup, and remove @cg: 0 or rmdir()'s -errno. */
int memcg_leave(const char *cg)
{
	write_file(CGROUP_ROOT "cgroup.procs", "0");
	return rmdir(cg) ? -errno : 0;
}

/*
 * The number after @key on the line of @path that starts with it, then a
 * space or a colon (memory.stat, /proc/meminfo), or -1.
 */
long file_key(const char *path, const char *key)
{
	size_t len = strlen(key);
	char line[256];
	long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) &&
		    (line[len] == ' ' || line[len] == ':')) {
			val = atol(line + len + 1);
			break;
		}
	fclose(f);
	return val;
}

/* @key's value in @cg's @file (memory.stat, memory.events), or -1. */
long memcg_value(const char *cg, const char *file, const char *key)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	return file_key(path, key);
}

/* The frame of the shared zero page, as a read fault maps it; 0 if none. */
unsigned long zero_pfn(void)
{
	unsigned long pfn = 0;
	char *p;
	int fd;

	p = map_anon(1, false);
	if (!p)
		return 0;
	/* A read the compiler keeps: it faults the zero page in. */
	if (__atomic_load_n(p, __ATOMIC_RELAXED))
		ksft_print_msg("a new anonymous page is not zero\n");
	fd = pagemap_open(0);
	if (fd >= 0) {
		pfn = pagemap_pfn(fd, p);
		close(fd);
	}
	munmap(p, page_size);
	return pfn;
}

int pagemap_open(pid_t pid)
{
	char path[64];

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/pagemap");
	return open(path, O_RDONLY);
}

/* The pagemap entry of @addr (PM_* bits), 0 if it cannot be read. */
uint64_t pagemap_entry(int fd, const void *addr)
{
	uint64_t ent;
	off_t off = (unsigned long)addr / page_size * sizeof(ent);

	if (pread(fd, &ent, sizeof(ent), off) != sizeof(ent))
		return 0;
	return ent;
}

/*
 * The page frame number mapped at @addr, or 0 when no page is present (or
 * the reader may not see frame numbers).  0 is never a valid answer for a
 * user page, so callers treat it as "not merged with anything".
 */
unsigned long pagemap_pfn(int fd, const void *addr)
{
	uint64_t ent = pagemap_entry(fd, addr);

	if (!(ent & PM_PRESENT))
		return 0;
	return ent & PM_PFN_MASK;
}

/* The /proc/kpageflags word of @pfn (KPF_* bits); 0 if it cannot be read. */
uint64_t kpageflags(unsigned long pfn)
{
	uint64_t flags = 0;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &flags, sizeof(flags), pfn * sizeof(flags)) !=
	    sizeof(flags))
		flags = 0;
	close(fd);
	return flags;
}

/*
 * The NUMA node of the page at @addr in process @pid (0: this one), from
 * move_pages() without targets: a node, or a negative errno (-ENOENT: no
 * page there, -EFAULT: nothing mapped).
 */
int page_node(pid_t pid, void *addr)
{
	int status = -1;

	if (syscall(SYS_move_pages, pid, 1UL, &addr, NULL, &status, 0))
		return -errno;
	return status;
}

/* A counter of /proc/vmstat; ULONG_MAX if it cannot be read. */
unsigned long vmstat_get(const char *name)
{
	unsigned long val = ULONG_MAX, v;
	char key[128];
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return ULONG_MAX;
	while (fscanf(f, "%127s %lu", key, &v) == 2) {
		if (!strcmp(key, name)) {
			val = v;
			break;
		}
	}
	fclose(f);
	return val;
}

/* tracefs */

static int tracefs_write(const char *file, const char *str)
{
	char path[PATH_MAX];
	ssize_t ret;
	int fd;

	snprintf(path, sizeof(path), TRACEFS_DIR "%s", file);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -errno;
	ret = write(fd, str, strlen(str));
	ret = ret < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/*
 * Start tracing the events/ksm/ events named in the NULL-terminated
 * @events (NULL: all of them) into an empty buffer.  0 or a negative
 * errno (-ENOENT: no tracefs, or no such event).
 */
int trace_ksm_start(const char * const *events)
{
	char file[PATH_MAX];
	int ret;

	ret = tracefs_write("tracing_on", "0");
	if (!ret)
		ret = tracefs_write("events/ksm/enable", "0");
	if (!ret)
		ret = tracefs_write("trace", "");
	if (!ret)
		ret = tracefs_write("buffer_size_kb", "2048");
	for (; !ret && events && *events; events++) {
		snprintf(file, sizeof(file), "events/ksm/%s/enable", *events);
		ret = tracefs_write(file, "1");
	}
	if (!ret && !events)
		ret = tracefs_write("events/ksm/enable", "1");
	if (!ret)
		ret = tracefs_write("tracing_on", "1");
	return ret;
}

/* Stop the KSM events, keep the buffer; tracing_on as at boot. */
int trace_ksm_stop(void)
{
	int ret = tracefs_write("events/ksm/enable", "0");

	tracefs_write("tracing_on", "1");
	return ret;
}

/* The text of the trace buffer, to be freed; NULL on error. */
char *trace_read(void)
{
	size_t len = 0, size = 1 << 16;
	char *buf = malloc(size), *tmp;
	ssize_t ret;
	int fd;

	fd = open(TRACEFS_DIR "trace", O_RDONLY);
	if (fd < 0 || !buf)
		goto fail;
	for (;;) {
		if (size - len < 4096) {
			size *= 2;
			tmp = realloc(buf, size);
			if (!tmp)
				goto fail;
			buf = tmp;
		}
		ret = read(fd, buf + len, size - len - 1);
		if (ret < 0)
			goto fail;
		if (!ret)
			break;
		len += ret;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/*
 * Lines of the trace @text for @event ("ksm_enter") that also contain
 * @match (NULL: any).
 */
int trace_count(const char *text, const char *event, const char *match)
{
	char pat[128];
	const char *line, *end;
	int n = 0;

	snprintf(pat, sizeof(pat), " %s: ", event);
	for (line = text; line && *line; line = end ? end + 1 : NULL) {
		const char *hit;

		end = strchr(line, '\n');
		if (*line == '#')
			continue;
		hit = strstr(line, pat);
		if (!hit || (end && hit > end))
			continue;
		if (match) {
			const char *m = strstr(hit, match);

			if (!m || (end && m > end))
				continue;
		}
		n++;
	}
	return n;
}

/*
 * Why this test cannot run here, or NULL if it can: it needs root (to
 * write the knobs), KSM, and (@need_pfns) frame numbers in pagemap.
 */
const char *ksm_skip_reason(bool need_pfns)
{
	if (geteuid())
		return "needs root: KSM knobs and pagemap frame numbers";
	if (!ksm_available())
		return "no " KSM_SYSFS_DIR " (CONFIG_KSM=n?)";
	if (need_pfns && !pfns_visible())
		return "pagemap shows no frame numbers";
	return NULL;
}

/* Frame numbers are only shown to CAP_SYS_ADMIN. */
bool pfns_visible(void)
{
	unsigned long pfn;
	char *p;
	int fd;

	p = map_anon(1, false);
	if (!p)
		return false;
	fill_page(p, 1);
	fd = pagemap_open(0);
	pfn = fd < 0 ? 0 : pagemap_pfn(fd, p);
	if (fd >= 0)
		close(fd);
	munmap(p, page_size);
	return pfn != 0;
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* True if every entry is a present frame and no two are equal. */
bool pfns_all_distinct(const unsigned long *pfns, size_t n)
{
	unsigned long *sorted;
	bool ret = true;
	size_t i;

	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return false;
	memcpy(sorted, pfns, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_ulong);
	for (i = 0; i < n; i++)
		if (!sorted[i] || (i && sorted[i] == sorted[i - 1]))
			ret = false;
	free(sorted);
	return ret;
}

/* Worker protocol: one command, one reply, both fixed size. */
enum worker_op {
	WORKER_WRITE,		/* fill page a with tag b */
	WORKER_CHECK,		/* reply the number of pages not as written */
	WORKER_MADVISE,		/* madvise(pages a.., b pages, advice c) */
	WORKER_EXIT,
};

struct worker_cmd {
	uint64_t op;
	uint64_t a, b, c;
};

static int worker_loop(char *addr, uint64_t *tags, size_t npages,
		       int cmd_fd, int reply_fd)
{
	struct worker_cmd cmd;
	int64_t reply;
	size_t i;

	while (read(cmd_fd, &cmd, sizeof(cmd)) == sizeof(cmd)) {
		switch (cmd.op) {
		case WORKER_WRITE:
			fill_page(addr + cmd.a * page_size, cmd.b);
			tags[cmd.a] = cmd.b;
			reply = 0;
			break;
		case WORKER_CHECK:
			reply = 0;
			for (i = 0; i < npages; i++)
				if (!page_has(addr + i * page_size, tags[i]))
					reply++;
			break;
		case WORKER_MADVISE:
			reply = madvise(addr + cmd.a * page_size,
					cmd.b * page_size, cmd.c) ? errno : 0;
			break;
		case WORKER_EXIT:
			return 0;
		default:
			return 1;
		}
		if (write(reply_fd, &reply, sizeof(reply)) != sizeof(reply))
			return 1;
	}
	/* The test went away: nothing more to do. */
	return 0;
}

struct tag_worker {
	const uint64_t *tags;
	size_t npages;
	int node;
};

static void worker_main(void *arg, int cmd_fd, int reply_fd)
{
	const struct tag_worker *tw = arg;
	const uint64_t *init_tags = tw->tags;
	size_t npages = tw->npages;
	int node = tw->node;
	uint64_t *tags;
	int64_t reply;
	char *addr;
	size_t i;

	/* MPOL_BIND to @node: the pages are allocated there when filled. */
	if (node >= 0) {
		unsigned long mask = 1UL << node;

		if (syscall(SYS_set_mempolicy, 2 /* MPOL_BIND */, &mask,
			    sizeof(mask) * 8)) {
			reply = -errno;
			goto fail;
		}
	}
	tags = malloc(npages * sizeof(*tags));
	addr = map_anon(npages, false);
	if (!tags || !addr) {
		reply = -ENOMEM;
		goto fail;
	}
	memcpy(tags, init_tags, npages * sizeof(*tags));
	for (i = 0; i < npages; i++)
		fill_page(addr + i * page_size, tags[i]);
	if (madvise(addr, npages * page_size, MADV_MERGEABLE)) {
		reply = -errno;
		goto fail;
	}
	reply = (int64_t)(unsigned long)addr;
	if (write(reply_fd, &reply, sizeof(reply)) != sizeof(reply))
		_exit(1);
	_exit(worker_loop(addr, tags, npages, cmd_fd, reply_fd));
fail:
	if (write(reply_fd, &reply, sizeof(reply)) != sizeof(reply))
		_exit(1);
	_exit(1);
}

/* End a worker that failed to start. */
static void worker_kill(struct ksm_worker *w)
{
	kill(w->pid, SIGKILL);
	close(w->cmd_fd);
	close(w->reply_fd);
	if (w->pagemap_fd >= 0)
		close(w->pagemap_fd);
	waitpid(w->pid, NULL, 0);
	w->pid = 0;
	w->pagemap_fd = -1;
}

/*
 * Fork a worker of @npages pages that runs @body(@arg, cmd_fd, reply_fd):
 * @body maps and fills its memory, writes its address (an int64_t), or a
 * negative errno, on reply_fd, then serves commands and exits.  The
 * worker dies with the test.  Returns 0 or a negative errno.
 */
int worker_spawn(struct ksm_worker *w, size_t npages,
		 void (*body)(void *arg, int cmd_fd, int reply_fd), void *arg)
{
	int cmd[2], reply[2];
	pid_t parent = getpid();
	int64_t r;

	memset(w, 0, sizeof(*w));
	w->pagemap_fd = -1;
	if (pipe(cmd))
		return -errno;
	if (pipe(reply)) {
		close(cmd[0]);
		close(cmd[1]);
		return -errno;
	}
	w->pid = fork();
	if (w->pid < 0) {
		w->pid = 0;
		close(cmd[0]);
		close(cmd[1]);
		close(reply[0]);
		close(reply[1]);
		return -errno;
	}
	if (w->pid == 0) {
		close(cmd[1]);
		close(reply[0]);
		/* Never outlive the test, even when it is killed by its timeout. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		body(arg, cmd[0], reply[1]);
		_exit(1);
	}
	close(cmd[0]);
	close(reply[1]);
	w->cmd_fd = cmd[1];
	w->reply_fd = reply[0];
	w->npages = npages;
	if (read(w->reply_fd, &r, sizeof(r)) != sizeof(r))
		r = -EPIPE;
	if (r < 0) {
		worker_kill(w);
		return r;
	}
	w->addr = (char *)(unsigned long)r;
	w->pagemap_fd = pagemap_open(w->pid);
	if (w->pagemap_fd < 0) {
		r = -errno;
		worker_kill(w);
		return r;
	}
	return 0;
}

/*
 * Start a worker whose page i holds tags[i], in memory it mapped itself
 * (on NUMA node @node, or anywhere if @node < 0) and marked MADV_MERGEABLE.
 * Returns 0 or a negative errno.
 */
int worker_start_node(struct ksm_worker *w, const uint64_t *tags,
		      size_t npages, int node)
{
	struct tag_worker tw = { tags, npages, node };

	return worker_spawn(w, npages, worker_main, &tw);
}

int worker_start(struct ksm_worker *w, const uint64_t *tags, size_t npages)
{
	return worker_start_node(w, tags, npages, -1);
}

static int64_t worker_cmd(struct ksm_worker *w, uint64_t op, uint64_t a,
			  uint64_t b, uint64_t c)
{
	struct worker_cmd cmd = { .op = op, .a = a, .b = b, .c = c };
	int64_t reply;

	if (!w->pid)
		return -ESRCH;
	if (write(w->cmd_fd, &cmd, sizeof(cmd)) != sizeof(cmd))
		return -EPIPE;
	if (read(w->reply_fd, &reply, sizeof(reply)) != sizeof(reply))
		return -EPIPE;
	return reply;
}

/* The worker writes @tag over its page @idx; 0 or a negative errno. */
int worker_write(struct ksm_worker *w, size_t idx, uint64_t tag)
{
	return worker_cmd(w, WORKER_WRITE, idx, tag, 0);
}

/* How many of the worker's pages do not hold what was last written there. */
int worker_check(struct ksm_worker *w)
{
	return worker_cmd(w, WORKER_CHECK, 0, 0, 0);
}

/* madvise() in the worker; returns its errno (0 on success). */
int worker_madvise(struct ksm_worker *w, size_t first, size_t nr, int advice)
{
	return worker_cmd(w, WORKER_MADVISE, first, nr, advice);
}

/* Stop the worker; returns its exit status (0 when it ended cleanly). */
int worker_stop(struct ksm_worker *w)
{
	struct worker_cmd cmd = { .op = WORKER_EXIT };
	int status = 0;

	if (!w->pid)
		return 0;
	if (write(w->cmd_fd, &cmd, sizeof(cmd)) != sizeof(cmd))
		kill(w->pid, SIGKILL);
	close(w->cmd_fd);
	close(w->reply_fd);
	if (w->pagemap_fd >= 0)
		close(w->pagemap_fd);
	if (waitpid(w->pid, &status, 0) != w->pid)
		status = -1;
	w->pid = 0;
	w->pagemap_fd = -1;
	if (status == -1)
		return -ECHILD;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const char *ksm_fixture_begin(struct ksm_saved *saved, struct ksm_worker *w,
			      size_t nr)
{
	const char *skip = ksm_skip_reason(true);

	memset(w, 0, nr * sizeof(*w));
	if (skip)
		return skip;
	ksm_save(saved);
	return NULL;
}

void ksm_fixture_end(const struct ksm_saved *saved, struct ksm_worker *w,
		     size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		worker_stop(&w[i]);
	ksm_restore(saved);
}

unsigned long worker_pfn(struct ksm_worker *w, size_t idx)
{
	if (!w->pid || idx >= w->npages)
		return 0;
	return pagemap_pfn(w->pagemap_fd, w->addr + idx * page_size);
}

int worker_pfns(struct ksm_worker *w, unsigned long *pfns)
{
	size_t i;

	for (i = 0; i < w->npages; i++)
		pfns[i] = worker_pfn(w, i);
	return 0;
}

/*
 * Every page of @w is a KSM page: from smaps, since 6.12's
 * /proc/kpageflags sets KPF_KSM on every anonymous page.
 */
bool worker_all_ksm(struct ksm_worker *w)
{
	return smaps_kb(w->pid, w->addr, "KSM") ==
	       (long)(w->npages * page_size / 1024);
}

/* Pages [first, first + nr) of every worker in @s->w share one frame each. */
bool frames_shared(void *arg)
{
	struct same_frames *s = arg;
	unsigned long pfn;
	size_t i;
	int j;

	for (i = s->first; i < s->first + s->nr; i++) {
		pfn = worker_pfn(&s->w[0], i);
		if (!pfn)
			return false;
		for (j = 1; j < s->nr_workers; j++)
			if (worker_pfn(&s->w[j], i) != pfn)
				return false;
	}
	return true;
}

/* Every page of one worker is on the same frame. */
bool all_one_frame(void *arg)
{
	struct ksm_worker *w = arg;
	unsigned long pfn = worker_pfn(w, 0);
	size_t i;

	if (!pfn)
		return false;
	for (i = 1; i < w->npages; i++)
		if (worker_pfn(w, i) != pfn)
			return false;
	return true;
}

/* @n distinct tags counting up from @base, to be freed by the caller. */
uint64_t *make_tags(size_t n, uint64_t base)
{
	uint64_t *tags = malloc(n * sizeof(*tags));
	size_t i;

	for (i = 0; tags && i < n; i++)
		tags[i] = base + i;
	return tags;
}

/* Pages [first, first + nr) of this process's @p are all on one frame. */
bool own_one_frame(void *arg)
{
	struct own_range *r = arg;
	unsigned long pfn = pagemap_pfn(r->pagemap_fd, r->p + r->first * page_size);
	size_t i;

	if (!pfn)
		return false;
	for (i = r->first + 1; i < r->first + r->nr; i++)
		if (pagemap_pfn(r->pagemap_fd, r->p + i * page_size) != pfn)
			return false;
	return true;
}

/* A mergeable private area of @n pages, all holding @tag. */
char *map_same(size_t n, uint64_t tag)
{
	char *p = map_anon(n, false);
	size_t i;

	if (!p)
		return NULL;
	for (i = 0; i < n; i++)
		fill_page(p + i * page_size, tag);
	if (madvise(p, n * page_size, MADV_MERGEABLE)) {
		munmap(p, n * page_size);
		return NULL;
	}
	return p;
}

/* The PMD huge page size, 0 without transparent huge pages. */
size_t thp_pmd_size(void)
{
	unsigned long size = 0;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
			"r");

	if (f) {
		if (fscanf(f, "%lu", &size) != 1)
			size = 0;
		fclose(f);
	}
	return size;
}

/* Is frame @pfn part of a transparent huge page? */
bool pfn_is_thp(unsigned long pfn)
{
	return pfn && (kpageflags(pfn) & (1ULL << KPF_THP));
}

int memory_block_state(int block, const char *state)
{
	char path[128];
	ssize_t ret;
	int fd;

	snprintf(path, sizeof(path),
		 "/sys/devices/system/memory/memory%d/state", block);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ret = write(fd, state, strlen(state));
	ret = ret < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* Pages [0, @n) at @p, in the pagemap @fd: how many are swapped out. */
size_t pages_swapped(int fd, const char *p, size_t n)
{
	size_t i, out = 0;

	for (i = 0; i < n; i++) {
		uint64_t ent = pagemap_entry(fd, p + i * page_size);

		if (!(ent & PM_PRESENT) && (ent & PM_SWAP))
			out++;
	}
	return out;
}

/* How many of @w's pages are swapped out. */
size_t worker_swapped(struct ksm_worker *w)
{
	return pages_swapped(w->pagemap_fd, w->addr, w->npages);
}

/*
 * MADV_PAGEOUT of the page at @p until pagemap shows it swapped out.
 * Each try runs on the next CPU: a page still in some CPU's LRU batch
 * cannot be isolated, and madvise() drains only the local batch.
 */
bool page_out(int fd, char *p)
{
	cpu_set_t allowed, one;
	bool pin = !sched_getaffinity(0, sizeof(allowed), &allowed);
	bool out = false;
	int cpu = 0, tries;

	for (tries = 0; tries < 20 && !out; tries++) {
		if (pin) {
			do {
				cpu = (cpu + 1) % CPU_SETSIZE;
			} while (!CPU_ISSET(cpu, &allowed));
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			sched_setaffinity(0, sizeof(one), &one);
		}
		if (madvise(p, page_size, MADV_PAGEOUT))
			break;
		out = pages_swapped(fd, p, 1) == 1;
		if (!out)
			usleep(10000);
	}
	if (pin)
		sched_setaffinity(0, sizeof(allowed), &allowed);
	return out;
}
