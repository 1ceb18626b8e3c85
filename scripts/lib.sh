# SPDX-License-Identifier: GPL-2.0
# Common helpers for the harness scripts.  Source it; do not run it.
#
# Every script works from the repository root and keeps all its outputs
# under build/ (git-ignored).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}

# Debian's kernel source package and its tarball: the base we build on.
BASE_PKG=linux-source-6.12
BASE_TARBALL=${BASE_TARBALL:-/usr/src/$BASE_PKG.tar.xz}

# The x86_64 kernel is always configured and built with an explicit ARCH:
# with ARCH unset (ARCH=x86) tinyconfig would pick a 32-bit kernel.
KARCH=x86_64

JOBS=${JOBS:-$(nproc)}

log() { printf '>>> %s\n' "$*"; }
warn() { printf '!!! %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# "base: linux-source-6.12 6.12.117 (Debian 6.12.117-1~deb12u1)".
base_version() {
	local mk=$BUILD/base/Makefile kver pkgver
	if [[ -f $mk ]]; then
		kver=$(awk '$1=="VERSION"{v=$3} $1=="PATCHLEVEL"{p=$3}
			    $1=="SUBLEVEL"{s=$3} END{print v"."p"."s}' "$mk")
	else
		kver=unknown
	fi
	pkgver=$(dpkg-query -W -f='${Version}' "$BASE_PKG" 2>/dev/null || echo '?')
	printf 'base: %s %s (Debian %s)\n' "$BASE_PKG" "$kver" "$pkgver"
}

# Replace $2 by $1 only when the content differs, so the mtime of an
# unchanged file (and everything make derives from it) stays put.
install_if_changed() {
	local src=$1 dst=$2
	if ! cmp -s "$src" "$dst"; then
		mkdir -p "$(dirname "$dst")"
		cp "$src" "$dst.tmp.$$"
		mv -f "$dst.tmp.$$" "$dst"
	fi
}

# Take the machine-wide harness lock on fd 9 for the rest of the calling
# script: one heavy job at a time on this 2-core machine.  Kernel builds
# and test boots take it because a boot beside a kernel build or another
# boot gets so little CPU that ksm_tests' own 120 s limits fire (seen:
# ksm_tests -P -s 100 at 1 s alone, over 120 s beside a second VM); the
# sync of build/src and the test build take it so that two make runs in
# one tree never change build/src while the other compiles from it.
# WHAT says what we are about to do, for whoever waits for us.
harness_lock() {
	local what=$1 lock=${TMPDIR:-/tmp}/ksm-harness.lock
	exec 9>> "$lock"
	if ! flock -n 9; then
		log "waiting for another harness job: $(cat "$lock.who" 2>/dev/null || echo '?')"
		flock 9
	fi
	echo "$what (pid $$, $(date +%H:%M:%S), ${BUILD:-?})" > "$lock.who"
}
