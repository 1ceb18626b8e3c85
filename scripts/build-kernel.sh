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
make -C "$src" O="$out" ARCH=$KARCH -j"$JOBS" bzImage
# A plain copy: its fresh mtime tells make this stage is done.
cp "$out/arch/x86/boot/bzImage" "$out/bzImage"
log "kernel ready: $out/bzImage ($(du -h "$out/bzImage" | cut -f1)," \
    "make took $((SECONDS - start)) s)"
