// SPDX-License-Identifier: GPL-2.0
/*
 * merge-exec: run a program with KSM merging all of its memory, the way
 * newer stress-ng's --ksm does it (Debian 12's stress-ng 0.15.06 has no
 * --ksm), and trinity without any change to it.
 *
 *   merge-exec [-u UID] PROGRAM [ARGS...]
 *
 * prctl(PR_SET_MEMORY_MERGE, 1) marks the mm merge-any; the mark is kept
 * across execve() (ksm_execve) and inherited by fork(), so every anonymous
 * area the program and its children ever map is mergeable.  -u drops to
 * UID (and GID = UID, no supplementary groups) before the exec: trinity
 * refuses to run as root.
 *
 * Part of the test harness (make stress); built static by
 * scripts/mk-stress-initramfs.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE	67
#endif

int main(int argc, char **argv)
{
	long uid = -1;
	int opt;

	while ((opt = getopt(argc, argv, "+u:")) != -1) {
		if (opt != 'u')
			goto usage;
		uid = strtol(optarg, NULL, 10);
	}
	if (optind >= argc)
		goto usage;

	if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
		fprintf(stderr, "merge-exec: PR_SET_MEMORY_MERGE: %s\n",
			strerror(errno));
		return 126;
	}
	if (uid >= 0 && (setgroups(0, NULL) || setgid(uid) || setuid(uid))) {
		fprintf(stderr, "merge-exec: dropping to uid %ld: %s\n", uid,
			strerror(errno));
		return 126;
	}
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "merge-exec: %s: %s\n", argv[optind], strerror(errno));
	return 127;

usage:
	fprintf(stderr, "usage: merge-exec [-u UID] PROGRAM [ARGS...]\n");
	return 2;
}
