// SPDX-License-Identifier: GPL-2.0
/*
 * ksm_demo: watch KSM merge the memory of processes that hold the same data.
 *
 * The picture is a host running several virtual machines booted from the same
 * image: each VM process holds its own copy of the image in anonymous memory,
 * plus some memory of its own.  KSM should find that the image copies are
 * identical and keep one copy of each page.
 *
 * The parent forks NPROC children.  Each child builds its data itself after
 * the fork (so no page is shared through fork's copy-on-write): IMAGE_MIB of
 * pseudo-random "image" from one seed, the same in every child, and
 * UNIQUE_MIB from a seed of its own.  It marks the area MADV_MERGEABLE,
 * remembers a checksum of it, and waits.  The parent starts ksmd, prints one
 * status line, updated in place, until merging stops growing, prints what was
 * saved against what could be saved, and asks every child to check that its
 * memory still holds what it wrote.  Exit status 0 only if enough was merged
 * and no byte changed.
 *
 * Usage: ksm_demo [-n nproc] [-i image_mib] [-u unique_mib]
 *                 [-p pages_to_scan] [-s sleep_millisecs] [-t timeout_s]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KSM_DIR		"/sys/kernel/mm/ksm/"
#define MAX_PROCS	64
#define IMAGE_SEED	0x9e3779b97f4a7c15ULL

/* Command line settings, with their defaults. */
static int nproc = 4;
static long image_mib = 32;
static long unique_mib = 4;
static long pages_to_scan = 1000;
static long sleep_ms = 20;
static long timeout_s = 300;

static long page_size;

/* KSM knobs we change, saved to be put back at the end. */
static const char *const saved_knobs[] = { "run", "pages_to_scan", "sleep_millisecs" };
static long saved_values[3];

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "\nksm_demo: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static long read_knob(const char *name)
{
	char path[128];
	long val;
	FILE *f;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	f = fopen(path, "r");
	if (!f)
		die("cannot open %s: %s", path, strerror(errno));
	if (fscanf(f, "%ld", &val) != 1)
		die("cannot read %s", path);
	fclose(f);
	return val;
}

static void write_knob(const char *name, long val)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	f = fopen(path, "w");
	if (!f)
		die("cannot open %s: %s", path, strerror(errno));
	fprintf(f, "%ld", val);
	if (fclose(f))
		die("cannot write %ld to %s: %s", val, path, strerror(errno));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: fast, and the same sequence for the same seed everywhere. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dULL;
}

static void fill(uint64_t *p, size_t bytes, uint64_t seed)
{
	uint64_t state = seed;
	size_t i;

	for (i = 0; i < bytes / sizeof(*p); i++)
		p[i] = next_random(&state);
}

/* FNV-1a over 64-bit words: enough to notice any changed byte. */
static uint64_t checksum(const uint64_t *p, size_t bytes)
{
	uint64_t sum = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < bytes / sizeof(*p); i++)
		sum = (sum ^ p[i]) * 0x100000001b3ULL;
	return sum;
}

/*
 * One child: build the data, report 'R'eady, wait for the 'V'erify request,
 * answer 'O'k or 'X' (changed), exit.
 */
static void child(int index, int to_parent, int from_parent)
{
	size_t image = image_mib << 20, unique = unique_mib << 20;
	uint64_t sum_before, sum_after;
	char c;
	void *area;

	area = mmap(NULL, image + unique, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("child %d: mmap: %s", index, strerror(errno));
	/*
	 * Small pages only: ksmd would split huge pages first, which is a
	 * fine thing to test but makes this demo slower under emulation.
	 */
	madvise(area, image + unique, MADV_NOHUGEPAGE);
	fill(area, image, IMAGE_SEED);
	fill((uint64_t *)((char *)area + image), unique, IMAGE_SEED + 1 + index);
	sum_before = checksum(area, image + unique);
	if (madvise(area, image + unique, MADV_MERGEABLE))
		die("child %d: madvise(MADV_MERGEABLE): %s", index, strerror(errno));

	if (write(to_parent, "R", 1) != 1 || read(from_parent, &c, 1) != 1)
		_exit(3);
	sum_after = checksum(area, image + unique);
	c = sum_after == sum_before ? 'O' : 'X';
	if (write(to_parent, &c, 1) != 1)
		_exit(3);
	_exit(c == 'O' ? 0 : 1);
}

static void usage(void)
{
	fprintf(stderr, "usage: ksm_demo [-n nproc] [-i image_mib] [-u unique_mib]\n"
			"                [-p pages_to_scan] [-s sleep_millisecs] [-t timeout_s]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int to_parent[MAX_PROCS][2], from_parent[MAX_PROCS][2];
	pid_t pids[MAX_PROCS];
	long image_pages, expected, sharing, shared, scans, base_scans;
	long best = 0, scans_at_best = 0, i;
	double start, converged_at = 0, last_print = 0;
	bool reached = false, intact = true;
	int opt, status;
	char c;

	while ((opt = getopt(argc, argv, "n:i:u:p:s:t:")) != -1) {
		switch (opt) {
		case 'n': nproc = atoi(optarg); break;
		case 'i': image_mib = atol(optarg); break;
		case 'u': unique_mib = atol(optarg); break;
		case 'p': pages_to_scan = atol(optarg); break;
		case 's': sleep_ms = atol(optarg); break;
		case 't': timeout_s = atol(optarg); break;
		default: usage();
		}
	}
	if (nproc < 2 || nproc > MAX_PROCS || image_mib < 1 || unique_mib < 0)
		usage();

	setvbuf(stdout, NULL, _IONBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	image_pages = (image_mib << 20) / page_size;
	/* One KSM page per image page; every other copy maps it. */
	expected = (nproc - 1) * image_pages;

	if (access(KSM_DIR "run", W_OK))
		die("%s not available: is CONFIG_KSM on?", KSM_DIR "run");
	for (i = 0; i < 3; i++)
		saved_values[i] = read_knob(saved_knobs[i]);
	write_knob("run", 2);	/* stop and unmerge: start from nothing */

	printf("ksm_demo: %d processes, each %ld MiB image (same in all) + %ld MiB own data\n",
	       nproc, image_mib, unique_mib);
	printf("ksm_demo: could save %ld pages = %.1f MiB; ksmd: pages_to_scan %ld, sleep_millisecs %ld\n",
	       expected, expected * page_size / 1048576.0, pages_to_scan, sleep_ms);

	for (i = 0; i < nproc; i++) {
		if (pipe(to_parent[i]) || pipe(from_parent[i]))
			die("pipe: %s", strerror(errno));
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0)
			child(i, to_parent[i][1], from_parent[i][0]);
	}
	for (i = 0; i < nproc; i++)
		if (read(to_parent[i][0], &c, 1) != 1 || c != 'R')
			die("child %ld did not get ready", i);
	printf("ksm_demo: all processes hold their data; starting ksmd\n");

	write_knob("pages_to_scan", pages_to_scan);
	write_knob("sleep_millisecs", sleep_ms);
	base_scans = read_knob("full_scans");
	write_knob("run", 1);
	start = now();

	/*
	 * Converged when every possible page is merged, or when pages_sharing
	 * has not grown for two full scans (after at least two: the first one
	 * only learns checksums).
	 */
	for (;;) {
		double t = now() - start;

		scans = read_knob("full_scans") - base_scans;
		shared = read_knob("pages_shared");
		sharing = read_knob("pages_sharing");
		if (sharing > best) {
			best = sharing;
			scans_at_best = scans;
			converged_at = t;
		}
		if (t - last_print >= 0.5 || sharing >= expected) {
			printf("\r[%6.1fs] full_scans %3ld  pages_shared %7ld  pages_sharing %7ld  saved %7.1f MiB ",
			       t, scans, shared, sharing, sharing * page_size / 1048576.0);
			last_print = t;
		}
		if (sharing >= expected) {
			reached = true;
			break;
		}
		if (scans >= 2 && scans - scans_at_best >= 2)
			break;
		if (t > timeout_s) {
			printf("\nksm_demo: timeout after %ld s\n", timeout_s);
			break;
		}
		usleep(100000);
	}
	printf("\n");
	if (!best)
		converged_at = now() - start;

	printf("ksm_demo: expected saving %.1f MiB (%ld pages), achieved %.1f MiB (%ld pages, %.1f%%)\n",
	       expected * page_size / 1048576.0, expected,
	       best * page_size / 1048576.0, best, 100.0 * best / expected);
	printf("ksm_demo: %s after %.1f s, %ld full scans\n",
	       reached ? "converged" : "stopped growing", converged_at, scans);

	for (i = 0; i < nproc; i++) {
		if (write(from_parent[i][1], "V", 1) != 1 ||
		    read(to_parent[i][0], &c, 1) != 1 || c != 'O')
			intact = false;
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			intact = false;
	}
	printf("ksm_demo: memory of all %d processes %s\n", nproc,
	       intact ? "intact (checksums match)" : "CHANGED (checksum mismatch)");

	write_knob("run", 2);
	for (i = 2; i >= 0; i--)
		write_knob(saved_knobs[i], saved_values[i]);

	/* Merging 90% of what can be merged is a success for a demo. */
	if (!intact || best * 10 < expected * 9) {
		printf("ksm_demo: FAILED\n");
		return 1;
	}
	printf("ksm_demo: OK\n");
	return 0;
}
