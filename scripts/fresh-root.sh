#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run a harness command inside a freshly bootstrapped Debian 12 root, as a
# new user's machine has it: nothing there but what debootstrap's minbase
# variant installs, bookworm with bookworm-updates and bookworm-security in
# its sources.  Every package the harness needs must then be installed by
# the harness itself (scripts/install-deps.sh), so a missing one fails here
# and not on a newcomer's machine (rsync was found that way, too late).
#
# usage: fresh-root.sh COMMAND [ARG...]
#   e.g. fresh-root.sh make check   (make fresh-check), or .ci/run
#
# The root is FRESH_DIR (default /var/tmp/ksm-fresh.PID) with /proc, /sys
# and /dev mounted and a clone of this checkout's HEAD at /ksm, where
# COMMAND runs; its build/ starts empty.  Whatever happens, the mounts go
# and the root is removed at the end (FRESH_KEEP=1 keeps it, unmounted).
# The logs of the run are copied to build/fresh-logs/ first.  A root left
# behind by a killed run is removed by the next one.
#
# Needs root (debootstrap, chroot, mount); installs debootstrap on the host
# if it is missing, and nothing else there.  Uncommitted changes are not in
# the clone.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

(($#)) || die "usage: ${0##*/} COMMAND [ARG...]"
[[ $(id -u) == 0 ]] || die "a fresh root needs root (debootstrap, chroot, mount)"

SUITE=bookworm
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# The README's "apt-get install git make", before its two commands.
FIRST_PACKAGES="git make"
PREFIX=/var/tmp/ksm-fresh.
R=${FRESH_DIR:-$PREFIX$$}
# Passed into the root when set: the harness's own knobs.
PASS_VARS=(JOBS ONLY DEBUG KERNEL STRESS_SECS CI_STRESS_SECS QEMU_TIMEOUT
	   TIMEOUT_SCALE)

# Unmount everything under $1 and remove it, never crossing into another
# file system: with a mount left, rm stays out of it (rm
# --one-file-system), so the host's /dev or /sys cannot be touched.
remove_root() {
	local root=${1%/} m
	[[ -d $root ]] || return 0
	# Deepest first; lazily, should a process still sit in one.
	grep -o " $root/[^ ]*" /proc/self/mounts | sort -r |
	while read -r m; do
		umount -R "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true
	done
	if grep -q " $root/" /proc/self/mounts; then
		warn "mounts remain under $root; not removing it"
		return 1
	fi
	[[ -n ${FRESH_KEEP:-} && $root == "$R" ]] && return 0
	rm -rf --one-file-system "$root"
}

teardown() {
	local rc=$?
	if [[ -d $R/ksm/build/logs ]]; then
		rm -rf "$BUILD/fresh-logs"
		mkdir -p "$BUILD/fresh-logs"
		cp -a "$R/ksm/build/logs/." "$BUILD/fresh-logs/" || true
		log "fresh root: logs copied to $BUILD/fresh-logs"
	fi
	remove_root "$R" && log "fresh root: $R removed${FRESH_KEEP:+ (kept: FRESH_KEEP)}"
	exit "$rc"
}

# Roots of runs that were killed (their pid is gone).
for old in "$PREFIX"*; do
	[[ -d $old && $old != "$R" ]] || continue
	pid=${old#"$PREFIX"}
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2> /dev/null && continue
	log "fresh root: removing $old, left by a run that is gone"
	remove_root "$old" || true
	rm -f "$old.debootstrap.log"
done

harness_lock "fresh root: $*"
[[ ! -e $R ]] || die "$R exists"
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v debootstrap > /dev/null; then
	log "fresh root: installing debootstrap on the host"
	DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends debootstrap
fi

start=$SECONDS
log "fresh root: debootstrap --variant=minbase $SUITE into $R"
debootstrap --variant=minbase "$SUITE" "$R" "$MIRROR" > "$R.debootstrap.log" 2>&1 ||
	{ tail -20 "$R.debootstrap.log"; die "debootstrap failed"; }
rm -f "$R.debootstrap.log"
log "fresh root: debootstrap took $((SECONDS - start)) s"

cat > "$R/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
cp /etc/resolv.conf "$R/etc/resolv.conf"
mount -t proc proc "$R/proc"
# rslave: an unmount inside never propagates back to the host.
mount --rbind /sys "$R/sys"
mount --make-rslave "$R/sys"
mount --rbind /dev "$R/dev"
mount --make-rslave "$R/dev"

# What the README tells a newcomer to install before anything else: git to
# clone, make to run the two commands.  The clone itself is made by the
# host's git, from this checkout.
log "fresh root: apt-get install $FIRST_PACKAGES (the README's first step)"
chroot "$R" /usr/bin/env -i DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	/bin/sh -c "apt-get -q update && apt-get -q install -y --no-install-recommends $FIRST_PACKAGES" \
	> "$R/first-packages.log" 2>&1 ||
	{ tail -20 "$R/first-packages.log"; die "apt-get install $FIRST_PACKAGES failed"; }

git clone --quiet --no-hardlinks "$ROOT" "$R/ksm"
git -C "$R/ksm" checkout --quiet --detach "$(git -C "$ROOT" rev-parse HEAD)"
[[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no) ]] ||
	warn "fresh root: uncommitted changes of $ROOT are not in the clone"
log "fresh root: clone of $(git -C "$ROOT" log -1 --format='%h %s') at /ksm"

envs=(HOME=/root LANG=C.UTF-8 TERM=dumb
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for v in "${PASS_VARS[@]}"; do
	[[ -z ${!v+x} ]] || envs+=("$v=${!v}")
done

log "fresh root: running \"$*\" in /ksm"
# Without fd 9, the host's harness lock: nothing inside holds it.
rc=0
chroot "$R" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd /ksm && exec "$@"' \
	fresh-root "$@" 9>&- || rc=$?
log "fresh root: \"$*\" exited with status $rc after $((SECONDS - start)) s in all"
exit "$rc"
