#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Unpack Debian's linux-source tarball into build/base, once.
#
# build/base stays pristine: it is the reference our tree is copied from and
# the source of the baseline kernel (which is built out of tree, O=...).
# The stamp build/base/.harness-unpacked is written last, so an interrupted
# unpack is redone from scratch.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

base=$BUILD/base
stamp=$base/.harness-unpacked

[[ -f $BASE_TARBALL ]] || die "$BASE_TARBALL not found (apt-get install $BASE_PKG)"
# Done already, unless the package brought a newer tarball.
if [[ -f $stamp && ! $BASE_TARBALL -nt $stamp ]]; then
	exit 0
fi

log "unpacking $BASE_TARBALL into $base"
rm -rf "$base" "$base.tmp"
mkdir -p "$base.tmp"
# The tarball holds linux-source-6.12/...; drop that first component.
# --checkpoint prints a progress dot every ~100 MB of archive data.
tar -C "$base.tmp" --strip-components=1 -xJf "$BASE_TARBALL" \
	--checkpoint=10000 --checkpoint-action=dot
echo
mv "$base.tmp" "$base"
touch "$stamp"
base_version
