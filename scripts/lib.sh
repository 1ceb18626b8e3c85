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

# A step that fails says what failed: set -e alone exits without a word
# (make then prints only "Error 141" for a SIGPIPE, say).
trap 'warn "${0##*/}: line $LINENO: \"$BASH_COMMAND\" failed (status $?)"' ERR

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

# Install the Debian packages named that are not installed yet: those of
# a target outside CI (make matrix, make docs-check), which
# scripts/install-deps.sh leaves out to keep CI's fresh root small.
apt_install_missing() {
	local pkg status
	local -a need=()
	for pkg in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
		[[ $status == "install ok installed" ]] || need+=("$pkg")
	done
	((${#need[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "missing packages (${need[*]}); run as root or install them"
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${need[@]}" > /dev/null ||
		{ apt-get update -q > /dev/null &&
		  apt-get install -y -q --no-install-recommends "${need[@]}" > /dev/null; }
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

# Print gen_init_cpio spec lines (see scripts/mk-initramfs.sh) that carry
# the host's FILEs into a guest: each FILE at its own path with the content
# of the file it resolves to (libraries and firmware are often symlinks),
# the shared libraries ldd names for the ELF ones with the ELF interpreter
# (/lib64/ld-linux-x86-64.so.2), and every parent directory first.  This is
# how Debian's programs (stress-ng, trinity, QEMU, ksmtuned's tools) come
# into the busybox guest.
cpio_spec_with_libs() {
	local f d
	local -a elves=() libs=() files=()
	for f in "$@"; do
		[[ -e $f ]] || die "no $f"
		[[ $(od -An -N4 -tx1 "$f") != ' 7f 45 4c 46' ]] || elves+=("$f")
	done
	# ldd prints "name => /path (addr)" and the interpreter as
	# "/path (addr)"; "PROGRAM:" headers when given several files.
	if ((${#elves[@]})); then
		mapfile -t libs < <(ldd "${elves[@]}" | awk '
			$2 == "=>" && $3 ~ /^\// {print $3}
			$1 ~ /^\// && $1 !~ /:$/ {print $1}')
	fi
	mapfile -t files < <(printf '%s\n' "$@" "${libs[@]}" | sort -u)
	for f in "${files[@]}"; do
		d=$(dirname "$f")
		while [[ $d != / ]]; do echo "$d"; d=$(dirname "$d"); done
	done | sort -u | while read -r d; do echo "dir $d 0755 0 0"; done
	for f in "${files[@]}"; do
		echo "file $f $(readlink -f "$f") 0755 0 0"
	done
}

# Write OUT: the test initramfs (build/initramfs.cpio.gz) with one more
# archive appended, made from the gen_init_cpio spec SPEC.  The kernel
# unpacks concatenated archives in order, so a later file replaces an
# earlier one at the same path (a busybox applet, /harness/tests.list).
initramfs_append() {
	local spec=$1 out=$2 base=$BUILD/initramfs.cpio.gz
	local gen=$BUILD/tools/gen_init_cpio
	[[ -f $base ]] || die "no $base (scripts/mk-initramfs.sh)"
	[[ -x $gen ]] || die "no $gen (scripts/mk-initramfs.sh builds it)"
	"$gen" "$spec" | gzip -n -6 > "$out.extra.$$"
	cat "$base" "$out.extra.$$" > "$out.tmp.$$"
	rm -f "$out.extra.$$"
	mv -f "$out.tmp.$$" "$out"
}

# Print gen_init_cpio spec lines for a static BUSYBOX as /bin/busybox with
# one symlink per applet ("usr/bin/awk" etc.), for a guest's userspace.
busybox_cpio_spec() {
	local busybox=$1 applet
	echo "file /bin/busybox $busybox 0755 0 0"
	"$busybox" --list-full | while read -r applet; do
		[[ $applet == bin/busybox ]] && continue
		echo "slink /$applet /bin/busybox 0777 0 0"
	done
}

# Boot KERNEL in MODE with scripts/qemu-run.sh (which reads INITRD,
# QEMU_MEM and QEMU_APPEND from the environment), its console kept in LOG
# and build/logs/LINK pointing to LOG, under a LIMIT in seconds; then say
# that WHAT took so long.  Sets qemu_rc to QEMU's exit status (124: timed
# out) instead of failing.
harness_boot() {
	local what=$1 mode=$2 kernel=$3 log=$4 limit=$5 link=$6 start=$SECONDS
	set +e
	"$ROOT/scripts/qemu-run.sh" "$mode" "$kernel" "$log" "$limit"
	qemu_rc=$?
	set -e
	ln -sfn "$(basename "$log")" "$BUILD/logs/$link"
	echo
	log "$what took $((SECONDS - start)) s; console log: ${log#$ROOT/}"
}
