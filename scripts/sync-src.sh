#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bring build/src, the tree our kernel is built from, up to date:
#
#   build/src = build/base
#             - upstream KSM (mm/ksm.c, include/linux/ksm.h, both ksm.rst)
#             + our files (repo's mm/, include/, Documentation/,
#               tools/testing/selftests/ksm/, same relative paths)
#             + patches/*.patch applied in order with patch -p1
#
# Incremental by default: an overlay file is copied only when its content
# differs, so unchanged files keep their mtime and kbuild stays incremental;
# a file we stopped shipping is restored from base (or removed).  The tree
# is rebuilt from base when the patch set changes, or when an overlaid file
# that a patch touches changes (copying it would silently drop the patch).
#
# build/src/.harness-state/synced is touched only when something changed:
# the Makefile rebuilds the kernel, headers and tests when it is newer.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

base=$BUILD/base
src=$BUILD/src
state=$src/.harness-state

# Upstream files that our implementation replaces.  They are removed from
# build/src even when we do not (yet) ship a replacement: a build that
# silently used upstream's KSM would prove nothing.
UPSTREAM_REMOVED=(
	mm/ksm.c
	include/linux/ksm.h
	Documentation/admin-guide/mm/ksm.rst
	Documentation/mm/ksm.rst
)
OVERLAY_DIRS=(mm include Documentation tools/testing/selftests/ksm)

[[ -f $base/.harness-unpacked ]] || die "build/base missing (scripts/unpack-base.sh)"
# Not while another job builds from build/src (see harness_lock in lib.sh).
harness_lock "sync of $src"

# Our overlay files, relative to the repo root, sorted.
overlay_files() {
	local d
	for d in "${OVERLAY_DIRS[@]}"; do
		if [[ -d $ROOT/$d ]]; then
			(cd "$ROOT" && find "$d" -type f)
		fi
	done | LC_ALL=C sort
}

# "sha256  path" of every overlay file: what we laid over base last time.
overlay_manifest() {
	local f
	while read -r f; do
		(cd "$ROOT" && sha256sum "$f")
	done < <(overlay_files)
}

shopt -s nullglob
patches=("$ROOT"/patches/*.patch)
shopt -u nullglob

# One hash over the names and contents of the patch set.
patch_set_hash() {
	{
		printf '%s\n' "${patches[@]##*/}"
		if ((${#patches[@]})); then
			cat "${patches[@]}"
		fi
	} | sha256sum | cut -d' ' -f1
}

# Files a patch touches (the b/ side, or the a/ side of a deletion).
patched_files() {
	((${#patches[@]})) || return 0
	awk '/^(\+\+\+|---) / {
		p = $2; sub(/\t.*/, "", p)
		if (p == "/dev/null") next
		sub(/^[^\/]*\//, "", p); print p
	}' "${patches[@]}" | LC_ALL=C sort -u
}

new_manifest=$(overlay_manifest)
new_patch_hash=$(patch_set_hash)
new_patched=$(patched_files)

full=0
if [[ ! -f $state/patches.sha ]]; then
	full=1
elif [[ $base/.harness-unpacked -nt $state/patches.sha ]]; then
	log "build/base was unpacked anew: rebuilding build/src from base"
	full=1
elif [[ $(cat "$state/patches.sha") != "$new_patch_hash" ]]; then
	log "patch set changed: rebuilding build/src from base"
	full=1
elif [[ -n $new_patched ]]; then
	# Overlay files that changed (or appeared/vanished) since last time...
	# (diff exits 1 when the lists differ: not an error here.)
	changed=$( (diff "$state/overlay.manifest" <(echo "$new_manifest") || true) |
		  awk '/^[<>]/ {print $3}' | LC_ALL=C sort -u)
	# ...and are also touched by a patch.
	if [[ -n $(comm -12 <(echo "$changed") <(echo "$new_patched")) ]]; then
		log "an overlaid file that a patch touches changed: rebuilding build/src"
		full=1
	fi
fi

changed_any=0

if ((full)); then
	# Files that differed from base in the old tree: touched after the copy
	# so kbuild rebuilds them even where base's (older) mtime came back.
	old_touched=""
	if [[ -d $state ]]; then
		old_touched=$(cat <(awk '{print $2}' "$state/overlay.manifest") \
				  "$state/patched.list" 2>/dev/null || true)
	fi
	log "copying ${base#$ROOT/} to ${src#$ROOT/}"
	rm -rf "$src.tmp"
	cp -a "$base" "$src.tmp"
	rm -f "$src.tmp/.harness-unpacked"
	for f in "${UPSTREAM_REMOVED[@]}"; do
		rm -f "$src.tmp/$f"
	done
	while read -r _ f; do
		[[ -n $f ]] || continue
		mkdir -p "$src.tmp/$(dirname "$f")"
		cp "$ROOT/$f" "$src.tmp/$f"
	done <<< "$new_manifest"
	for p in "${patches[@]}"; do
		log "applying ${p#$ROOT/}"
		patch -d "$src.tmp" -p1 --batch --forward --no-backup-if-mismatch \
			< "$p" || die "patch ${p#$ROOT/} does not apply"
	done
	while read -r f; do
		[[ -n $f && -e $src.tmp/$f ]] && touch "$src.tmp/$f"
	done <<< "$old_touched"
	rm -rf "$src"
	mv "$src.tmp" "$src"
	changed_any=1
else
	# Incremental: copy changed files, take back the ones we stopped shipping.
	while read -r _ f; do
		[[ -n $f ]] || continue
		# A patched overlay file differs from ours on purpose; had ours
		# changed, we would be in the full rebuild above.
		grep -qxF "$f" <<< "$new_patched" && continue
		if ! cmp -s "$ROOT/$f" "$src/$f"; then
			log "overlay: $f"
			mkdir -p "$src/$(dirname "$f")"
			cp "$ROOT/$f" "$src/$f"
			changed_any=1
		fi
	done <<< "$new_manifest"
	while read -r f; do
		[[ -n $f ]] || continue
		grep -qxF "$f" <(awk '{print $2}' <<< "$new_manifest") && continue
		if [[ -f $base/$f ]] && ! printf '%s\n' "${UPSTREAM_REMOVED[@]}" | grep -qxF "$f"; then
			log "overlay: $f no longer ours, restored from base"
			cp "$base/$f" "$src/$f"
		else
			log "overlay: $f no longer ours, removed"
			rm -f "$src/$f"
		fi
		changed_any=1
	done < <(awk '{print $2}' "$state/overlay.manifest")
fi

mkdir -p "$state"
echo "$new_manifest" > "$state/overlay.manifest"
echo "$new_patch_hash" > "$state/patches.sha"
echo "$new_patched" > "$state/patched.list"
if ((changed_any)) || [[ ! -f $state/synced ]]; then
	touch "$state/synced"
fi
