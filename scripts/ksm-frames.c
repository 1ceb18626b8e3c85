// SPDX-License-Identifier: GPL-2.0
/*
 * ksm-frames PID...: which page frames the mergeable areas (VmFlags "mg")
 * of some processes map, from /proc/PID/smaps and /proc/PID/pagemap (as
 * root).  For the clients boot (scripts/guest-clients): prints
 *
 *	PID pages N own_merged M
 *	common N
 *
 * one line per process: how many of its pages are present, and how many
 * of those are on a frame it maps more than once (what it merged with
 * itself); then how many frames are mapped by two processes or more.
 * The shared zero page (KPF_ZERO_PAGE in /proc/kpageflags), which a read
 * of untouched memory maps in every process, is no merge: left out.
 * Areas with nothing resident are skipped, and so are areas larger than
 * MAX_AREA (reported on stderr): a nested guest's RAM is 96 MiB.  pagemap
 * is read 512 entries at a time.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE		4096UL
#define PFN_MASK	((1ULL << 55) - 1)
#define PRESENT		(1ULL << 63)
#define MAXPROC		8
#define KPF_ZERO_PAGE	24
#define MAX_AREA	(1UL << 30)

static int kpageflags = -1;

static int is_zero_page(uint64_t pfn)
{
	uint64_t flags;

	if (pread(kpageflags, &flags, 8, pfn * 8) != 8)
		return 0;
	return flags >> KPF_ZERO_PAGE & 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The present frames of @pid's mergeable areas, sorted; their number. */
static size_t frames(int pid, uint64_t **out)
{
	char path[64], line[512];
	unsigned long start = 0, end = 0, s0, e0, a, rss = 0, i, cnt;
	size_t n = 0, cap = 0;
	uint64_t *v = NULL, e[512];
	ssize_t got;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (!f || fd < 0) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof(line), f)) {
		/* sscanf() stores a partial match: "Anonymous:" is hex. */
		if (sscanf(line, "%lx-%lx ", &s0, &e0) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			start = s0;
			end = e0;
			continue;
		}
		if (sscanf(line, "Rss: %lu kB", &rss) == 1)
			continue;
		if (strncmp(line, "VmFlags:", 8) || !strstr(line, " mg") || !rss)
			continue;
		if (end - start > MAX_AREA) {
			fprintf(stderr, "ksm-frames: %d: skipped %lx-%lx (%lu kB resident)\n",
				pid, start, end, rss);
			continue;
		}
		for (a = start; a < end; a += cnt * PAGE) {
			cnt = (end - a) / PAGE < 512 ? (end - a) / PAGE : 512;
			got = pread(fd, e, cnt * 8, a / PAGE * 8);
			if (got < 8)
				break;
			cnt = got / 8;
			for (i = 0; i < cnt; i++) {
				if (!(e[i] & PRESENT) ||
				    is_zero_page(e[i] & PFN_MASK))
					continue;
				if (n == cap) {
					cap = cap ? 2 * cap : 4096;
					v = realloc(v, cap * sizeof(*v));
					if (!v)
						exit(1);
				}
				v[n++] = e[i] & PFN_MASK;
			}
		}
	}
	fclose(f);
	close(fd);
	qsort(v, n, sizeof(*v), cmp_u64);
	*out = v;
	return n;
}

int main(int argc, char **argv)
{
	uint64_t *v[MAXPROC], *all;
	size_t n[MAXPROC], total = 0, i, j, k, common = 0;
	int np = argc - 1, p;

	if (np < 1 || np > MAXPROC) {
		fprintf(stderr, "usage: ksm-frames PID... (at most %d)\n", MAXPROC);
		return 2;
	}
	kpageflags = open("/proc/kpageflags", O_RDONLY);
	if (kpageflags < 0) {
		perror("/proc/kpageflags");
		return 1;
	}
	for (p = 0; p < np; p++) {
		size_t own = 0;

		n[p] = frames(atoi(argv[p + 1]), &v[p]);
		for (i = 0; i < n[p]; i = j) {
			for (j = i + 1; j < n[p] && v[p][j] == v[p][i]; j++)
				;
			if (j - i > 1)
				own += j - i;
		}
		printf("%s pages %zu own_merged %zu\n", argv[p + 1], n[p], own);
		total += n[p];
	}
	/* Each process's distinct frames, together: a frame twice is common. */
	all = malloc((total + 1) * sizeof(*all));
	if (!all)
		return 1;
	for (p = 0, k = 0; p < np; p++)
		for (i = 0; i < n[p]; i++)
			if (!i || v[p][i] != v[p][i - 1])
				all[k++] = v[p][i];
	qsort(all, k, sizeof(*all), cmp_u64);
	for (i = 0; i < k; i = j) {
		for (j = i + 1; j < k && all[j] == all[i]; j++)
			;
		if (j - i > 1)
			common++;
	}
	printf("common %zu\n", common);
	return 0;
}
