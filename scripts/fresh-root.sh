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
# The work directory is FRESH_DIR (default /var/tmp/ksm-fresh.PID, made
# here, root's only): the root is its root/, with /proc, /sys and /dev
# mounted and a clone of this checkout's HEAD at /ksm, where COMMAND runs;
# its build/ starts empty.  The logs of the run are copied to
# build/fresh-logs/; then, whatever happened, the mounts go and the
# directory is removed (FRESH_KEEP=1 keeps it, unmounted).  A directory
# left by a killed run is removed by the next run.
#
# Safety: the script runs in a mount namespace of its own with every mount
# private (unshare), so no mount or unmount made here reaches the host's,
# and the mounts die with the last process inside, even after a SIGKILL.
# Mount points are compared as literal strings; rm never crosses into
# another file system and is not run while /proc, /sys or /dev are still
# mounted in the root.  Daemons are not started inside (policy-rc.d): one
# would act on the host's /sys (ksmtuned on its KSM, say).
#
# Needs root (unshare, debootstrap, chroot, mount); installs debootstrap on
# the host if it is missing, and nothing else there.  Uncommitted changes
# are not in the clone.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

(($#)) || die "usage: ${0##*/} COMMAND [ARG...]"
[[ $(id -u) == 0 ]] || die "a fresh root needs root (unshare, debootstrap, chroot, mount)"

if [[ -z ${KSM_FRESH_NAMESPACE:-} ]]; then
	KSM_FRESH_NAMESPACE=1 exec unshare --mount --propagation private -- \
		"$0" "$@"
fi

SUITE=bookworm
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# The README's "apt-get install git make", before its two commands.
FIRST_PACKAGES="git make"
PREFIX=/var/tmp/ksm-fresh.
# Passed into the root: the harness's own knobs, when set.
PASS_VARS=(JOBS ONLY DEBUG KERNEL STRESS_SECS CI_STRESS_SECS QEMU_TIMEOUT
	   TIMEOUT_SCALE)

if [[ -n ${FRESH_DIR:-} ]]; then
	W=$(realpath -m -- "$FRESH_DIR")
else
	W=$PREFIX$$
fi
# Absolute, not /, and nothing /proc/self/mounts would escape.
[[ $W == /?* && $W != *[[:space:]\\]* ]] || die "FRESH_DIR: not a usable path: $W"
[[ -d $(dirname "$W") ]] || die "FRESH_DIR: no directory $(dirname "$W")"
R=$W/root
child=

# The mount points under directory $1, deepest first.
mounts_under() {
	awk -v d="$1/" 'substr($2, 1, length(d)) == d {print $2}' \
		/proc/self/mounts | sort -r
}

# Kill what still runs inside the root of work directory $1.
kill_inside() {
	local p
	for p in /proc/[0-9]*; do
		[[ $(readlink "$p/root" 2> /dev/null) == "$1/root" ]] &&
			kill -KILL "${p#/proc/}" 2> /dev/null
	done
	return 0
}

# Unmount everything under work directory $1; 1 if a mount remains.
unmount_all() {
	local m
	kill_inside "$1"
	while read -r m; do
		umount -R "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true
	done < <(mounts_under "$1")
	if [[ -n $(mounts_under "$1") ]]; then
		warn "mounts remain under $1; not removing it"
		return 1
	fi
	return 0
}

remove_dir() {
	local d
	[[ -d $1 ]] || return 0
	unmount_all "$1" || return 1
	for d in proc sys dev; do
		if mountpoint -q "$1/root/$d"; then
			warn "$1/root/$d is still a mount point; not removing $1"
			return 1
		fi
	done
	rm -rf --one-file-system "$1"
}

teardown() {
	local rc=$?
	set +e
	trap '' INT TERM
	if [[ -n $child ]]; then
		kill_inside "$W"
		wait "$child" 2> /dev/null
	fi
	if [[ -d $R/ksm/build/logs ]]; then
		rm -rf "$BUILD/fresh-logs"
		mkdir -p "$BUILD/fresh-logs" &&
			cp -a "$R/ksm/build/logs/." "$BUILD/fresh-logs/" &&
			log "fresh root: logs copied to $BUILD/fresh-logs"
	fi
	if [[ ${FRESH_KEEP:-0} == 1 ]]; then
		unmount_all "$W" && touch "$W/.keep" &&
			log "fresh root: $W kept, unmounted (FRESH_KEEP=1)"
	else
		remove_dir "$W" && log "fresh root: $W removed"
	fi
	exit "$rc"
}

harness_lock "fresh root: $*"

# Work directories of runs that were killed: root's, numeric, pid gone.
for old in "$PREFIX"*; do
	[[ -d $old && ! -L $old && -O $old && $old != "$W" ]] || continue
	pid=${old#"$PREFIX"}
	[[ $pid =~ ^[0-9]+$ && ! -e $old/.keep ]] || continue
	kill -0 "$pid" 2> /dev/null && continue
	log "fresh root: removing $old, left by a run that is gone"
	remove_dir "$old" || true
done

# Ours alone: mkdir fails if anyone made it first.
mkdir -m 0700 "$W" || die "$W exists"
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

apt_install_missing debootstrap

start=$SECONDS
log "fresh root: debootstrap --variant=minbase $SUITE into $R"
debootstrap --variant=minbase "$SUITE" "$R" "$MIRROR" > "$W/debootstrap.log" 2>&1 ||
	{ tail -20 "$W/debootstrap.log"; die "debootstrap failed"; }
log "fresh root: debootstrap took $((SECONDS - start)) s"

cat > "$R/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
cp /etc/resolv.conf "$R/etc/resolv.conf"
printf '#!/bin/sh\n# fresh-root.sh: no daemon starts in this root.\nexit 101\n' \
	> "$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc"
# rslave as well as the namespace's private: belt and braces.
mount --rbind --make-rslave /sys "$R/sys"
mount --rbind --make-rslave /dev "$R/dev"

# What the README tells a newcomer to install before anything else: git to
# clone, make to run the two commands.  The clone itself is made by the
# host's git, from this checkout.
log "fresh root: apt-get install $FIRST_PACKAGES (the README's first step)"
chroot "$R" /usr/bin/env -i DEBIAN_FRONTEND=noninteractive \
	PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c \
	"apt-get -q update && apt-get -q install -y --no-install-recommends $FIRST_PACKAGES" \
	> "$W/first-packages.log" 2>&1 9>&- ||
	{ tail -20 "$W/first-packages.log"; die "apt-get install $FIRST_PACKAGES failed"; }

git_h() { git -c safe.directory="$ROOT" -C "$ROOT" "$@" 9>&-; }
git -c safe.directory="$ROOT" clone --quiet --no-hardlinks "$ROOT" "$R/ksm" 9>&-
git -C "$R/ksm" checkout --quiet --detach "$(git_h rev-parse HEAD)" 9>&-
[[ -z $(git_h status --porcelain --untracked-files=no) ]] ||
	warn "fresh root: uncommitted changes of $ROOT are not in the clone"
log "fresh root: clone of $(git_h log -1 --format='%h %s') at /ksm"

envs=(HOME=/root LANG=C.UTF-8 TERM=dumb
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for v in "${PASS_VARS[@]}"; do
	[[ -z ${!v+x} ]] || envs+=("$v=${!v}")
done

log "fresh root: running \"$*\" in /ksm"
# In the background, so that a signal to this script ends it too (the
# teardown kills what runs inside); without fd 9, the host's harness lock.
chroot "$R" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd /ksm && exec "$@"' \
	fresh-root "$@" 9>&- &
child=$!
rc=0
wait "$child" || rc=$?
child=
log "fresh root: \"$*\" exited with status $rc after $((SECONDS - start)) s in all"
exit "$rc"
