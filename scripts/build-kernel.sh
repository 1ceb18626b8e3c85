#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Configure (if needed) and build a kernel out of tree, then leave a copy of
# the image as OUTDIR/bzImage.
#
# usage: build-kernel.sh SRCDIR OUTDIR [FLAVOUR]
#   FLAVOUR  debug: with configs/debug.config (see kernel-config.sh)
#
# kbuild's own output is shown (make's progress lines), so a long cold build
# is never silent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

src=$1 out=$2 flavour=${3:-}
"$ROOT/scripts/kernel-config.sh" "$src" "$out" "$flavour"

# One heavy job at a time on this machine (see harness_lock in lib.sh).
harness_lock "kernel build in $out"

log "building ${flavour:+$flavour }kernel: $src -> $out (make -j$JOBS bzImage)"
start=$SECONDS
# Without the harness's own make variables: "make check DEBUG=1" would
# pass DEBUG=1 down (MAKEFLAGS) to tools/lib/subcmd, which then builds
# with -O0 instead of -O3; objtool is relinked, every object depends on
# objtool, and the whole kernel was rebuilt each time DEBUG=1 came or went
# (make check DEBUG=1, then make stress, then make check).
env -u MAKEFLAGS -u MAKEOVERRIDES -u MFLAGS -u DEBUG \
	make -C "$src" O="$out" ARCH=$KARCH -j"$JOBS" bzImage
# A plain copy: its fresh mtime tells make this stage is done.
cp "$out/arch/x86/boot/bzImage" "$out/bzImage"
log "kernel ready: $out/bzImage ($(du -h "$out/bzImage" | cut -f1)," \
    "make took $((SECONDS - start)) s)"
