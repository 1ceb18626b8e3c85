// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_bench: the workloads of "make bench" that ksm_tests does not have.
 * Runs in the guest, as root, with nothing else merged; prints one
 * "BENCH <metric> <value>" line per figure (and "SAMPLE ..." lines for the
 * convergence chart), which scripts/bench.sh collects on the host.
 *
 *   ksm_bench scan MIB WARM MEASURE [ID]
 *	MIB MiB of unique random pages, pages_to_scan 10000,
 *	sleep_millisecs 0; after WARM full scans, ksmd's CPU time (its
 *	se.sum_exec_runtime) and pages_scanned over MEASURE full scans;
 *	slab growth per (unique) page and general_profit.  Metric names
 *	start with ID (default "scan").
 *   ksm_bench merge MIB
 *	ksm_tests -P's workload: MIB MiB of pages alike, pages_to_scan as
 *	many, sleep_millisecs 0; ksmd's CPU time per page over the first
 *	full scan from madvise(MADV_MERGEABLE), and over the two that
 *	ksm_tests -P times, with this process asleep (ksm_tests polls
 *	full_scans in a busy loop, and so takes three quarters of the CPU:
 *	its time is about four times this figure).
 *   ksm_bench domains NDOM MIB WARM MEASURE
 *	As scan, with the MIB MiB split among NDOM processes, each a merge
 *	domain of its own (merge_domain "process", where the kernel has it):
 *	ksmd's CPU per scanned page must not grow with the number of domains.
 *   ksm_bench converge TAG NPROC MIB SHARED_PCT PAGES_TO_SCAN SLEEP_MS [LIMIT_S]
 *	NPROC processes of MIB MiB each, SHARED_PCT% of every one holding
 *	the same contents in a different shuffled order, the rest unique;
 *	samples pages_sharing every 100 ms until it stops growing (LIMIT_S
 *	at most, default 600): time and ksmd CPU until 50, 90 and 99% of
 *	the final value; slab growth per tracked page.  PAGES_TO_SCAN
 *	"advisor": advisor_mode scan-time sets it, SLEEP_MS still applies.
 *   ksm_bench sparse GIB TOUCHED LIMIT_S
 *	A GIB GiB MAP_NORESERVE mergeable area with TOUCHED pages touched,
 *	evenly spread: time and ksmd CPU per full scan, over at least two
 *	(LIMIT_S at most).
 *   ksm_bench waits MIB ROUNDS ID
 *	MIB MiB of unique pages, ksmd flat out (pages_to_scan 10000,
 *	sleep_millisecs 0) past a full scan; then ROUNDS times, at moments
 *	spread by a random sleep: the time of "echo 0 > run", which waits for
 *	ksm_lock (so its longest is the longest hold a waiter sees), before
 *	run=1 again; and the time of madvise(MADV_MERGEABLE) of a fresh
 *	64 KiB area of the same process, which waits for ksmd to let go of
 *	its mmap_lock.  Longest and median of each, in ms.
 *   ksm_bench rmap NPAGES NKSM
 *	NPAGES pages faulted in one VMA (one anon_vma), then every other page
 *	mprotect()ed so the area is NPAGES VMAs on that anon_vma; NKSM KSM
 *	pages of two mappings each among them.  Time of move_pages() of one
 *	KSM page (two rmap walks) against one ordinary anon page.
 *
 * Times are CLOCK_MONOTONIC: under QEMU -icount, virtual time, which
 * counts guest instructions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define KSM "/sys/kernel/mm/ksm/"
#define PAGE 4096UL
#define MPOL_MF_MOVE_ALL (1 << 2)

static void die(const char *what)
{
	fprintf(stderr, "ksm_bench: %s: %s\n", what, strerror(errno));
	printf("BENCH_ERROR %s\n", what);
	exit(1);
}

static unsigned long ksm_read(const char *name)
{
	char path[128], buf[64];
	int fd, n;

	snprintf(path, sizeof(path), KSM "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die(path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die(path);
	buf[n] = 0;
	return strtoul(buf, NULL, 10);
}

static void ksm_write(const char *name, unsigned long val)
{
	char path[128], buf[64];
	int fd, n;

	snprintf(path, sizeof(path), KSM "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		die(path);
	n = snprintf(buf, sizeof(buf), "%lu", val);
	if (write(fd, buf, n) != n)
		die(path);
	close(fd);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int ksmd_pid(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], comm[32];
	int pid = 0;

	if (!d)
		die("/proc");
	while (!pid && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, "ksmd\n"))
			pid = atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	if (!pid) {
		errno = ESRCH;
		die("no ksmd thread");
	}
	return pid;
}

/*
 * ksmd's CPU time in ns: se.sum_exec_runtime of /proc/PID/sched
 * (CONFIG_SCHED_DEBUG, ns precision), else utime+stime of /proc/PID/stat
 * (clock ticks).
 */
static uint64_t ksmd_cpu_ns(int pid)
{
	char path[64], line[256];
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/sched", pid);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			unsigned long ms, frac;
			char *p;

			if (strncmp(line, "se.sum_exec_runtime", 19))
				continue;
			p = strchr(line, ':');
			if (p && sscanf(p + 1, " %lu.%lu", &ms, &frac) == 2) {
				fclose(f);
				return ms * 1000000ULL + frac;
			}
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f))
		die(path);
	fclose(f);
	/* fields 14 and 15, after the ")" that ends the comm */
	if (sscanf(strrchr(line, ')') + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &ut, &st) != 2)
		die("parse stat");
	return (ut + st) * (1000000000ULL / sysconf(_SC_CLK_TCK));
}

static long meminfo_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		die("/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = atol(line + n + 1);
	fclose(f);
	return v;
}

/* A page of pseudo-random content that depends only on @id. */
static void fill_page(void *p, uint64_t id)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
	uint64_t *q = p;
	size_t i;

	for (i = 0; i < PAGE / 8; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		q[i] = x * 0x2545f4914f6cdd1dULL;
	}
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void shuffle(unsigned long *a, unsigned long n)
{
	unsigned long i, j, t;

	for (i = n - 1; i > 0; i--) {
		j = rnd() % (i + 1);
		t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static void *map_anon(size_t len, int extra)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

/*
 * Wait (sleeping, so the vCPU idles) until full_scans reaches @target,
 * looking every @ms milliseconds.
 */
static int wait_scans_every(unsigned long target, uint64_t deadline,
			    unsigned int ms)
{
	while (ksm_read("full_scans") < target) {
		if (now_ns() > deadline)
			return -1;
		sleep_ms(ms);
	}
	return 0;
}

static int wait_scans(unsigned long target, uint64_t deadline)
{
	return wait_scans_every(target, deadline, 10);
}

static void ksm_setup(unsigned long pages_to_scan, unsigned long sleep)
{
	ksm_write("run", 0);
	ksm_write("pages_to_scan", pages_to_scan);
	ksm_write("sleep_millisecs", sleep);
}

/* A word into knob @name, where the kernel has it: 0, or -1 if not. */
static int ksm_write_str(const char *name, const char *word)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), KSM "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, word, strlen(word)) == (ssize_t)strlen(word);
	close(fd);
	if (!ok)
		die(path);
	return 0;
}

/* Our merge_domain, where the kernel has it: 0, or -1 if it has not. */
static int set_merge_domain(const char *mode)
{
	return ksm_write_str("merge_domain", mode);
}

/* What ksmd did over @meas full scans, after @warm of warm-up. */
struct scan_cost {
	uint64_t cpu_ns, time_ns;
	unsigned long scanned;
};

/*
 * Start ksmd, let @warm full scans go by, then measure @meas of them from
 * a pass boundary: ksmd's CPU time, the time, the pages it scanned.
 */
static struct scan_cost measure_passes(unsigned long warm, unsigned long meas)
{
	unsigned long s0, sc0;
	struct scan_cost sc;
	int pid = ksmd_pid();
	uint64_t c0, t0;

	s0 = ksm_read("full_scans");
	ksm_write("run", 1);
	if (wait_scans(s0 + warm, now_ns() + 600e9))
		die("warm-up scans timed out");
	s0 = ksm_read("full_scans");
	wait_scans(s0 + 1, now_ns() + 600e9);	/* start on a pass boundary */
	c0 = ksmd_cpu_ns(pid);
	sc0 = ksm_read("pages_scanned");
	t0 = now_ns();
	if (wait_scans(s0 + 1 + meas, now_ns() + 600e9))
		die("measured scans timed out");
	sc.cpu_ns = ksmd_cpu_ns(pid) - c0;
	sc.scanned = ksm_read("pages_scanned") - sc0;
	sc.time_ns = now_ns() - t0;
	return sc;
}

static int bench_merge(int argc, char **argv)
{
	unsigned long npages, s0;
	int pid = ksmd_pid();
	uint64_t c0;
	char *area;

	if (argc < 1)
		return 2;
	npages = atol(argv[0]) << 20 >> 12;
	area = map_anon(npages * PAGE, 0);
	memset(area, '*', npages * PAGE);
	ksm_setup(npages, 0);
	s0 = ksm_read("full_scans");
	c0 = ksmd_cpu_ns(pid);
	if (madvise(area, npages * PAGE, MADV_MERGEABLE))
		die("madvise");
	ksm_write("run", 1);
	/* ksmd runs on while we sleep: 1 ms is 40 ns a page here */
	if (wait_scans_every(s0 + 1, now_ns() + 600e9, 1))
		die("scans timed out");
	printf("BENCH merge_cpu_pass1_ns_per_page %.1f\n",
	       (double)(ksmd_cpu_ns(pid) - c0) / npages);
	if (wait_scans_every(s0 + 2, now_ns() + 600e9, 1))
		die("scans timed out");
	printf("BENCH merge_cpu_ns_per_page %.1f\n",
	       (double)(ksmd_cpu_ns(pid) - c0) / npages);
	printf("BENCH merge_pages_sharing %lu\n", ksm_read("pages_sharing"));
	ksm_write("run", 0);
	return 0;
}

static int bench_domains(int argc, char **argv)
{
	unsigned long ndom, mib, warm, meas, npages, per, d, i;
	int ready[2], domains;
	struct scan_cost sc;
	pid_t *kids;
	char c;

	if (argc < 4)
		return 2;
	ndom = atol(argv[0]);
	mib = atol(argv[1]);
	warm = atol(argv[2]);
	meas = atol(argv[3]);
	npages = mib << 20 >> 12;
	per = npages / ndom;
	kids = calloc(ndom, sizeof(*kids));
	if (!kids || !ndom || !per || pipe(ready))
		die("setup");
	ksm_setup(10000, 0);
	ksm_write("run", 2);
	domains = !set_merge_domain("process");
	for (d = 0; d < ndom; d++) {
		kids[d] = fork();
		if (kids[d] < 0)
			die("fork");
		if (!kids[d]) {
			char *area = map_anon(per * PAGE, 0);

			for (i = 0; i < per; i++)
				fill_page(area + i * PAGE, 3000000 + d * per + i);
			if (madvise(area, per * PAGE, MADV_MERGEABLE))
				die("madvise");
			if (write(ready[1], "r", 1) != 1)
				die("ready");
			for (;;)
				pause();
		}
	}
	for (d = 0; d < ndom; d++)
		if (read(ready[0], &c, 1) != 1)
			die("ready");
	sc = measure_passes(warm, meas);
	ksm_write("run", 2);
	for (d = 0; d < ndom; d++) {
		kill(kids[d], SIGKILL);
		waitpid(kids[d], NULL, 0);
	}
	if (domains)
		set_merge_domain("global");
	printf("BENCH dom_%lu_domains %lu\n", ndom, domains ? ndom : 1);
	printf("BENCH dom_%lu_cpu_ns_per_scanned_page %.1f\n", ndom,
	       (double)sc.cpu_ns / (sc.scanned ? sc.scanned : 1));
	free(kids);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Longest and median of @n times, in ms, as metrics @id_@what_{max,med}. */
static void print_waits(const char *id, const char *what, uint64_t *t,
			unsigned long n)
{
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("BENCH %s_%s_max_ms %.3f\n", id, what, t[n - 1] / 1e6);
	printf("BENCH %s_%s_med_ms %.3f\n", id, what, t[n / 2] / 1e6);
}

static int bench_waits(int argc, char **argv)
{
	unsigned long mib, rounds, npages, i, r;
	uint64_t *run0, *mad, t;
	const char *id;
	char *area;

	if (argc < 3)
		return 2;
	mib = atol(argv[0]);
	rounds = atol(argv[1]);
	id = argv[2];
	if (!rounds)
		return 2;
	npages = mib << 20 >> 12;
	area = map_anon(npages * PAGE, 0);
	for (i = 0; i < npages; i++)
		fill_page(area + i * PAGE, 3000000 + i);
	if (madvise(area, npages * PAGE, MADV_MERGEABLE))
		die("madvise");
	run0 = calloc(rounds, sizeof(*run0));
	mad = calloc(rounds, sizeof(*mad));
	if (!run0 || !mad)
		die("calloc");
	ksm_setup(10000, 0);
	ksm_write("run", 1);
	if (wait_scans(ksm_read("full_scans") + 1, now_ns() + 1200e9))
		die("first scan timed out");
	for (r = 0; r < rounds; r++) {
		char *small;

		sleep_ms(20 + rnd() % 80);
		t = now_ns();
		ksm_write("run", 0);
		run0[r] = now_ns() - t;
		ksm_write("run", 1);
		sleep_ms(20 + rnd() % 80);
		small = map_anon(16 * PAGE, 0);
		for (i = 0; i < 16; i++)
			fill_page(small + i * PAGE, 4000000 + r * 16 + i);
		t = now_ns();
		if (madvise(small, 16 * PAGE, MADV_MERGEABLE))
			die("madvise");
		mad[r] = now_ns() - t;
		munmap(small, 16 * PAGE);
	}
	ksm_write("run", 0);
	printf("BENCH %s_full_scans %lu\n", id, ksm_read("full_scans"));
	print_waits(id, "run0", run0, rounds);
	print_waits(id, "madvise", mad, rounds);
	free(run0);
	free(mad);
	return 0;
}

static int bench_scan(int argc, char **argv)
{
	unsigned long mib, warm, meas, npages, i;
	const char *id = argc > 3 ? argv[3] : "scan";
	struct scan_cost sc;
	long slab0;
	char *area;

	if (argc < 3)
		return 2;
	mib = atol(argv[0]);
	warm = atol(argv[1]);
	meas = atol(argv[2]);
	npages = mib << 20 >> 12;
	slab0 = meminfo_kb("Slab");
	area = map_anon(npages * PAGE, 0);
	for (i = 0; i < npages; i++)
		fill_page(area + i * PAGE, 1000000 + i);
	if (madvise(area, npages * PAGE, MADV_MERGEABLE))
		die("madvise");
	ksm_setup(10000, 0);
	sc = measure_passes(warm, meas);
	ksm_write("run", 0);
	printf("BENCH %s_region_pages %lu\n", id, npages);
	printf("BENCH %s_pages_scanned_per_pass %.1f\n", id,
	       (double)sc.scanned / meas);
	printf("BENCH %s_cpu_ns_per_scanned_page %.1f\n", id,
	       (double)sc.cpu_ns / (sc.scanned ? sc.scanned : 1));
	printf("BENCH %s_cpu_ns_per_region_page %.1f\n", id,
	       (double)sc.cpu_ns / meas / npages);
	printf("BENCH %s_cpu_ms_per_pass %.3f\n", id, sc.cpu_ns / 1e6 / meas);
	printf("BENCH %s_time_ms_per_pass %.3f\n", id,
	       sc.time_ns / 1e6 / meas);
	printf("BENCH %s_pages_shared %lu\n", id, ksm_read("pages_shared"));
	/* The pages' own memory is not slab: what is left is KSM's. */
	printf("BENCH mem_%s_slab_bytes_per_page %.1f\n", id,
	       (meminfo_kb("Slab") - slab0) * 1024.0 / npages);
	printf("BENCH mem_%s_general_profit %ld\n", id,
	       (long)ksm_read("general_profit"));
	return 0;
}

static int bench_converge(int argc, char **argv)
{
	const char *tag;
	unsigned long nproc, mib, pct, pts, slp, npages, nshared, i, p;
	unsigned long expected, final, last = 0, stable_since_scan = 0, limit_s;
	static const unsigned int pcts[] = { 50, 90, 99 };
	int advisor, k;
	unsigned long sharing, shared, scans, scans0, nsamp = 0, maxs;
	int pipefd[2], pid = ksmd_pid();
	pid_t kids[64];
	uint64_t t0, c0, t, *st, *sc;
	unsigned long *ss, *sf;
	long slab0, slab1;
	char c;

	if (argc < 6)
		return 2;
	tag = argv[0];
	nproc = atol(argv[1]);
	mib = atol(argv[2]);
	pct = atol(argv[3]);
	advisor = !strcmp(argv[4], "advisor");
	pts = advisor ? 100 : atol(argv[4]);
	slp = atol(argv[5]);
	limit_s = argc > 6 ? atol(argv[6]) : 600;
	if (nproc > 64)
		return 2;
	npages = mib << 20 >> 12;
	nshared = npages * pct / 100;
	expected = nshared * (nproc - 1);
	ksm_setup(pts, slp);
	if (advisor && ksm_write_str("advisor_mode", "scan-time"))
		die("advisor_mode");
	if (pipe(pipefd))
		die("pipe");
	for (i = 0; i < nproc; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (!kids[i]) {
			unsigned long *slot = malloc(npages * sizeof(*slot));
			char *area = map_anon(npages * PAGE, 0);

			/*
			 * Pages 0..nshared-1 of the permutation hold the
			 * shared contents, the rest this process's own.
			 */
			rng += i * 0x1234567ULL + 1;
			for (p = 0; p < npages; p++)
				slot[p] = p;
			shuffle(slot, npages);
			for (p = 0; p < npages; p++)
				fill_page(area + slot[p] * PAGE,
					  p < nshared ? p :
					  (i + 1) * 10000000ULL + p);
			if (madvise(area, npages * PAGE, MADV_MERGEABLE))
				die("madvise");
			close(pipefd[0]);
			if (write(pipefd[1], "r", 1) != 1)
				die("write");
			for (;;)
				pause();
		}
	}
	close(pipefd[1]);
	for (i = 0; i < nproc; i++)
		if (read(pipefd[0], &c, 1) != 1)
			die("child not ready");
	maxs = 100000;
	st = malloc(maxs * sizeof(*st));
	sc = malloc(maxs * sizeof(*sc));
	ss = malloc(maxs * sizeof(*ss));
	sf = malloc(maxs * sizeof(*sf));
	sleep_ms(200);
	slab0 = meminfo_kb("Slab");
	scans0 = ksm_read("full_scans");
	c0 = ksmd_cpu_ns(pid);
	t0 = now_ns();
	ksm_write("run", 1);
	for (;;) {
		sleep_ms(100);
		t = now_ns() - t0;
		sharing = ksm_read("pages_sharing");
		shared = ksm_read("pages_shared");
		scans = ksm_read("full_scans") - scans0;
		if (nsamp < maxs) {
			st[nsamp] = t;
			sc[nsamp] = ksmd_cpu_ns(pid) - c0;
			ss[nsamp] = sharing;
			sf[nsamp] = scans;
			nsamp++;
		}
		printf("SAMPLE %s %.1f %lu %lu %lu %.3f\n", tag, t / 1e6,
		       sharing, shared, scans, sc[nsamp - 1] / 1e6);
		if (sharing != last) {
			last = sharing;
			stable_since_scan = scans;
		}
		/* Done when nothing moved for 3 full scans. */
		if (sharing && scans >= stable_since_scan + 3)
			break;
		if (t > limit_s * 1e9) {
			printf("BENCH_ERROR converge %s timed out\n", tag);
			break;
		}
	}
	slab1 = meminfo_kb("Slab");
	final = last;
	printf("BENCH conv_%s_expected_sharing %lu\n", tag, expected);
	printf("BENCH conv_%s_final_sharing %lu\n", tag, final);
	for (k = 0; k < 3; k++) {
		for (i = 0; i < nsamp && ss[i] * 100 < final * pcts[k]; i++)
			;
		if (i == nsamp)
			i = nsamp - 1;
		printf("BENCH conv_%s_t%u_ms %.1f\n", tag, pcts[k], st[i] / 1e6);
		printf("BENCH conv_%s_cpu%u_ms %.3f\n", tag, pcts[k],
		       sc[i] / 1e6);
		printf("BENCH conv_%s_scans%u %lu\n", tag, pcts[k], sf[i]);
	}
	printf("BENCH conv_%s_cpu_total_ms %.3f\n", tag, sc[nsamp - 1] / 1e6);
	printf("BENCH mem_%s_tracked_pages %lu\n", tag, nproc * npages);
	printf("BENCH mem_%s_slab_kb_delta %ld\n", tag, slab1 - slab0);
	printf("BENCH mem_%s_slab_bytes_per_page %.1f\n", tag,
	       (slab1 - slab0) * 1024.0 / (nproc * npages));
	printf("BENCH mem_%s_general_profit %ld\n", tag,
	       (long)ksm_read("general_profit"));
	ksm_write("run", 0);
	if (advisor)
		ksm_write_str("advisor_mode", "none");
	for (i = 0; i < nproc; i++)
		kill(kids[i], SIGKILL);
	for (i = 0; i < nproc; i++)
		waitpid(kids[i], NULL, 0);
	return 0;
}

static int bench_sparse(int argc, char **argv)
{
	unsigned long gib, touched, limit, i, s0, s;
	uint64_t t0, c0, t, c, deadline;
	size_t len, step;
	char *area;
	int pid = ksmd_pid(), done;

	if (argc < 3)
		return 2;
	gib = atol(argv[0]);
	touched = atol(argv[1]);
	limit = atol(argv[2]);
	len = gib << 30;
	step = len / touched & ~(PAGE - 1);
	area = map_anon(len, MAP_NORESERVE);
	/* else one touch faults in a THP: 512 pages to scan */
	if (madvise(area, len, MADV_NOHUGEPAGE))
		die("madvise");
	for (i = 0; i < touched; i++)
		fill_page(area + i * step, 5000000 + i);
	if (madvise(area, len, MADV_MERGEABLE))
		die("madvise");
	ksm_setup(10000, 0);
	s0 = ksm_read("full_scans");
	c0 = ksmd_cpu_ns(pid);
	t0 = now_ns();
	deadline = t0 + limit * 1000000000ULL;
	ksm_write("run", 1);
	done = !wait_scans(s0 + 2, deadline);
	t = now_ns() - t0;
	c = ksmd_cpu_ns(pid) - c0;
	s = ksm_read("full_scans") - s0;
	ksm_write("run", 0);
	/*
	 * ms per full scan (more than two may have ended by the time we
	 * look); when not even one did, the time so far: a lower bound.
	 */
	printf("BENCH sparse_%luG_done %d\n", gib, done);
	printf("BENCH sparse_%luG_scans %lu\n", gib, s);
	printf("BENCH sparse_%luG_time_ms_per_pass %.3f\n", gib,
	       t / 1e6 / (s ? s : 1));
	printf("BENCH sparse_%luG_cpu_ms_per_pass %.3f\n", gib,
	       c / 1e6 / (s ? s : 1));
	return 0;
}

static long move_one(void *addr, int node, int *status)
{
	return syscall(SYS_move_pages, 0, 1UL, &addr,
		       node < 0 ? NULL : &node, status, MPOL_MF_MOVE_ALL);
}

/* Move each page to the other node; median ns per page. */
static double migrate_median(char **addrs, unsigned long n, unsigned long *bad)
{
	uint64_t *ts = calloc(n, sizeof(*ts)), tmp;
	unsigned long i, j;
	int status, node;
	double med;

	for (i = 0; i < n; i++) {
		uint64_t t0;

		if (move_one(addrs[i], -1, &status) || status < 0) {
			(*bad)++;
			continue;
		}
		node = !status;
		t0 = now_ns();
		if (move_one(addrs[i], node, &status) || status != node)
			(*bad)++;
		ts[i] = now_ns() - t0;
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && ts[j - 1] > ts[j]; j--) {
			tmp = ts[j];
			ts[j] = ts[j - 1];
			ts[j - 1] = tmp;
		}
	med = ts[n / 2];
	free(ts);
	return med;
}

static int bench_rmap(int argc, char **argv)
{
	unsigned long npages, nksm, i, s0, bad = 0, nvma = 0;
	char **ksm_addrs, **anon_addrs, line[512];
	char *area;
	FILE *f;

	if (argc < 2)
		return 2;
	npages = atol(argv[0]);
	nksm = atol(argv[1]);
	if (nksm * 4 > npages)
		return 2;
	area = map_anon(npages * PAGE, 0);
	if (madvise(area, npages * PAGE, MADV_MERGEABLE))
		die("madvise");
	/* Fault in while one VMA: one anon_vma for all. */
	for (i = 0; i < npages; i++)
		fill_page(area + i * PAGE, 7000000 + i);
	/* KSM pair j: pages 4j and 4j+2 (both read-write) alike. */
	ksm_addrs = calloc(nksm, sizeof(char *));
	anon_addrs = calloc(nksm, sizeof(char *));
	for (i = 0; i < nksm; i++) {
		fill_page(area + 4 * i * PAGE, 9000000 + i);
		fill_page(area + (4 * i + 2) * PAGE, 9000000 + i);
		ksm_addrs[i] = area + 4 * i * PAGE;
		anon_addrs[i] = area + (npages - 1 - 2 * i) * PAGE;
	}
	for (i = 1; i < npages; i += 2)
		if (mprotect(area + i * PAGE, PAGE, PROT_READ))
			die("mprotect");
	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		nvma++;
	if (f)
		fclose(f);
	ksm_setup(5000, 0);
	s0 = ksm_read("full_scans");
	ksm_write("run", 1);
	while (ksm_read("pages_shared") < nksm ||
	       ksm_read("full_scans") < s0 + 3) {
		if (ksm_read("full_scans") > s0 + 20) {
			printf("BENCH_ERROR rmap: only %lu KSM pages\n",
			       ksm_read("pages_shared"));
			break;
		}
		sleep_ms(20);
	}
	ksm_write("run", 0);
	printf("BENCH rmap_vmas %lu\n", nvma);
	printf("BENCH rmap_ksm_pages %lu\n", ksm_read("pages_shared"));
	printf("BENCH rmap_ksm_migrate_us %.1f\n",
	       migrate_median(ksm_addrs, nksm, &bad) / 1e3);
	printf("BENCH rmap_anon_migrate_us %.1f\n",
	       migrate_median(anon_addrs, nksm, &bad) / 1e3);
	printf("BENCH rmap_migrate_failures %lu\n", bad);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		;
	else if (!strcmp(argv[1], "scan"))
		rc = bench_scan(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "merge"))
		rc = bench_merge(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "domains"))
		rc = bench_domains(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "converge"))
		rc = bench_converge(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "sparse"))
		rc = bench_sparse(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "rmap"))
		rc = bench_rmap(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "waits"))
		rc = bench_waits(argc - 2, argv + 2);
	if (rc == 2)
		fprintf(stderr, "usage: see the comment at the top of ksm_bench.c\n");
	return rc;
}
