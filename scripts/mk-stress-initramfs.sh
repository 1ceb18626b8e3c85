#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build build/initramfs-stress.cpio.gz for "make stress": the test
# initramfs (build/initramfs.cpio.gz) with a second archive appended (the
# kernel unpacks concatenated cpio archives in order), which adds:
#
#   /harness/guest-stress     scripts/guest-stress (what the guest runs)
#   /harness/merge-exec       scripts/merge-exec.c, static
#   /tests/ksm/ksm_stress     our torture test, if it was built
#   /usr/bin/stress-ng, /usr/bin/trinity   Debian's, as installed on the host
#   their shared libraries    at the paths ldd names, with the ELF
#                             interpreter (/lib64/ld-linux-x86-64.so.2)
#   /etc/passwd, /etc/group   root and nobody (trinity runs as nobody)
#
# Also writes build/stress/ksm_stress.state: "present", "absent" (no
# ksm_stress.c in the tree: not written yet) or "broken <why>" (the source
# is there but no static binary came out of the test build); the host's
# verdict fails "broken".
set -euo pipefail
source "$(dirname "$0")/lib.sh"

out=$BUILD/initramfs-stress.cpio.gz
work=$BUILD/stress
spec=$work/initramfs.spec
tools=(/usr/bin/stress-ng /usr/bin/trinity)
ksm_src=$BUILD/src/tools/testing/selftests/ksm/ksm_stress.c
ksm_bin=$BUILD/tests/ksm/ksm_stress

for t in "${tools[@]}"; do
	[[ -x $t ]] || die "no $t (apt-get install stress-ng trinity; make deps)"
done
mkdir -p "$work"

gcc -static -O2 -Wall -o "$work/merge-exec" "$ROOT/scripts/merge-exec.c"

if [[ -x $ksm_bin ]] && ! readelf -d "$ksm_bin" | grep NEEDED > /dev/null; then
	state=present
elif [[ -f $ksm_src ]]; then
	state="broken ${ksm_bin#$ROOT/} was not built (or is not static): see build/logs/selftests-ksm-build.log"
else
	state=absent
fi
echo "$state" > "$work/ksm_stress.state"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
	> "$work/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/group"

{
	cpio_spec_with_libs "${tools[@]}"
	echo "dir /etc 0755 0 0"
	echo "file /etc/passwd $work/passwd 0644 0 0"
	echo "file /etc/group $work/group 0644 0 0"
	echo "file /harness/guest-stress $ROOT/scripts/guest-stress 0755 0 0"
	echo "file /harness/merge-exec $work/merge-exec 0755 0 0"
	[[ $state != present ]] || echo "file /tests/ksm/ksm_stress $ksm_bin 0755 0 0"
} > "$spec"

initramfs_append "$spec" "$out"
log "stress initramfs ready: ${out#$ROOT/} ($(du -h "$out" | cut -f1));" \
    "ksm_stress: $state"
