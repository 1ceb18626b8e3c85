#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages the harness needs, but only when one is
# missing: with everything present this touches neither apt nor the network.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PACKAGES=(
	build-essential bc bison flex libelf-dev libssl-dev	# kernel build
	python3						# kernel scripts, log verdict
	cpio xz-utils kmod				# unpack, initramfs
	rsync						# make headers_install (the tests)
	linux-source-6.12				# the base tree
	qemu-system-x86					# the test VM (TCG); also in
							# it: make check's clients boot
	ksmtuned procps				# make check's clients boot
	busybox-static					# guest userspace
	libnuma-dev					# ksm_tests (static libnuma.a)
	stress-ng trinity				# make stress (copied into the VM)
	python3-docutils				# make docs-check
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	# "install ok installed" only: a removed package leaves its status.
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
	log "packages: all ${#PACKAGES[@]} present"
	exit 0
fi

[[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}); run as root or install them"
log "installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -q update
apt-get -q install -y --no-install-recommends "${missing[@]}"
