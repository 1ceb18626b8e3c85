# SPDX-License-Identifier: GPL-2.0
# Build and test harness for our KSM on Linux 6.12 (Debian's linux-source).
#
# Stages, each a file under build/ (git-ignored) that make keeps up to date;
# the logic lives in scripts/:
#
#   deps       Debian packages (scripts/install-deps.sh; apt only if missing)
#   base       build/base/           pristine unpack of the tarball
#   src        build/src/            base - upstream KSM + our files + patches/
#   kernel     build/kernel/bzImage  our kernel   (O=build/kernel)
#   baseline   build/baseline/bzImage upstream KSM, same config (O=build/baseline)
#   kernel-debug  build/kernel-debug/bzImage  ours + configs/debug.config
#   tests      build/tests/          uapi headers, upstream ksm tests, our selftests
#   initramfs  build/initramfs.cpio.gz busybox, tests, demo, scripts/guest-init
#   check, run, shell                boot it in QEMU (TCG)
#
# "make help" lists targets and variables.

SHELL := /bin/bash

# Which kernel check/run/shell boot: ours, or baseline (upstream KSM).
KERNEL ?= ours
# DEBUG=1: check/run/shell on the debug flavour (configs/debug.config).
DEBUG ?=
# make check ONLY="prog ...": only these programs (no clients boot unless
# ksm_clients is named).
ONLY ?=
export ONLY
# make check CLIENTS=0: no clients boot (CI's debug stage).
CLIENTS ?= 1
export CLIENTS
# make check SKIP="prog ...": all but these programs (not judged at all).
SKIP ?=
export SKIP
# make stress: seconds of stress in total (ksm_stress, stress-ng, trinity).
STRESS_SECS ?= 120
export STRESS_SECS
# Parallel jobs for kbuild and the tests' builds.
JOBS ?= $(shell nproc)
export JOBS

# Where everything is built (absolute; a second tree lets you try a cold
# build without touching build/).
BUILD ?= $(CURDIR)/build
override BUILD := $(abspath $(BUILD))
export BUILD
ifneq ($(filter / $(CURDIR) $(HOME),$(BUILD)),)
$(error BUILD=$(BUILD) would let "make clean" remove too much)
endif
B := $(BUILD)
BASE_STAMP := $(B)/base/.harness-unpacked
SYNCED := $(B)/src/.harness-state/synced
TESTS_STAMP := $(B)/tests/.harness-built
DEMO_BIN := $(B)/demo/ksm_demo
INITRAMFS := $(B)/initramfs.cpio.gz
# configs/debug.config is the debug flavour's only (kernel-config.sh).
CONFIGS := $(filter-out configs/debug.config,$(wildcard configs/*.config))
KCONFIG_DEPS := $(CONFIGS) scripts/kernel-config.sh scripts/build-kernel.sh
DEBUG_KCONFIG_DEPS := $(KCONFIG_DEPS) configs/debug.config
STRESS_INITRAMFS := $(B)/initramfs-stress.cpio.gz

# make run: which demo (scripts/guest-init, "harness_demo").
DEMO ?= vms
ifeq ($(filter $(DEMO),vms many slow),)
$(error DEMO must be "vms", "many" or "slow", not "$(DEMO)")
endif

ifeq ($(filter $(KERNEL),ours baseline),)
$(error KERNEL must be "ours" or "baseline", not "$(KERNEL)")
endif
ifneq ($(filter-out 0,$(DEBUG)),)
FLAVOUR := debug
KDIR := $(if $(filter ours,$(KERNEL)),kernel,baseline)-debug
else
FLAVOUR :=
KDIR := $(if $(filter ours,$(KERNEL)),kernel,baseline)
endif
KIMAGE := $(B)/$(KDIR)/bzImage
# The clients boot of make check (QEMU and ksmtuned): its nested guests boot
# the plain kernel of the same KSM, whatever the flavour checked.
NESTED_KIMAGE := $(B)/$(if $(filter ours,$(KERNEL)),kernel,baseline)/bzImage
CLIENTS_INITRAMFS := $(B)/initramfs-clients-$(KERNEL).cpio.gz

.PHONY: help deps base src kernel baseline kernel-debug baseline-debug tests \
	initramfs check run shell stress harness-test clean distclean FORCE
.DEFAULT_GOAL := help

help:
	@echo 'Harness for our KSM on Linux 6.12 (see README.md).'
	@echo
	@echo 'Main targets:'
	@echo '  make run        build, boot our kernel, show KSM merging (demo/ksm_demo.c)'
	@echo '  make check      build, boot, run the KSM test suite; boot again for the'
	@echo '                  clients test (ksmtuned, two nested QEMU guests); the last'
	@echo '                  line is "N passed, N failed, N skipped", status 1 on failure'
	@echo '  make shell      boot to an interactive busybox shell (exit: power off)'
	@echo '  make bench      our KSM against upstream, side by side (QEMU -icount):'
	@echo '                  one table; raw figures and chart in build/bench/'
	@echo '                  (BENCH_ROUNDS=3 BENCH_REALTIME=1 BENCH_ONLY="ids"'
	@echo '                  BENCH_KERNELS=ours: upstream'"'"'s logs of the last run)'
	@echo '  make bench-scale  the same at a KVM host'"'"'s size (12 GiB VM, 256 MiB'
	@echo '                  to 8 GiB, 16 guests of 512 MiB): build/bench-scale/'
	@echo '  make patch      our work as a format-patch series in build/patches/,'
	@echo '                  with checkpatch --strict totals'
	@echo '  make patch-check  make patch, then git am it patch by patch onto a fresh'
	@echo '                  copy of the base and build the kernel at each (bisectable)'
	@echo '  make stress     boot the debug kernel: ksm_stress, stress-ng, trinity'
	@echo '                  under aggressive ksmd for STRESS_SECS; fails on a splat'
	@echo '  make fresh-check  make run, then make check, in a freshly bootstrapped'
	@echo '                  Debian 12 root (debootstrap; as root): every package'
	@echo '                  must come from make deps.  CI does the same'
	@echo
	@echo 'Stages (each also runs what it needs):'
	@echo '  make deps       install missing Debian packages (apt only if needed)'
	@echo '  make base       unpack /usr/src/linux-source-6.12.tar.xz into build/base'
	@echo '  make src        bring build/src up to date (overlay + patches)'
	@echo '  make kernel     build our kernel: build/kernel/bzImage'
	@echo '  make baseline   build upstream KSM, same config: build/baseline/bzImage'
	@echo '  make kernel-debug  ours + configs/debug.config: build/kernel-debug/bzImage'
	@echo '  make baseline-debug  the same for upstream KSM: build/baseline-debug/'
	@echo '  make tests      headers, upstream ksm tests, our selftests: build/tests/'
	@echo '  make initramfs  build/initramfs.cpio.gz'
	@echo '  make harness-test  self-test of the log verdict on made-up logs (no VM)'
	@echo '  make matrix     W=1 builds of our KSM and its callers in 8 configs'
	@echo '                  (Debian amd64, i386, arm64, without KSM/NUMA/SYSFS/'
	@echo '                  MEMORY_HOTREMOVE/SWAP); MATRIX_ONLY="i386 ..."'
	@echo '  make docs-check    the ksm.rst files built by Sphinx with the kernel'"'"'s'
	@echo '                  conf.py, references resolved across Documentation/;'
	@echo '                  kernel-doc -Wall on mm/ksm*.c, include/linux/ksm.h'
	@echo '  make clean      remove build outputs, keep build/base'
	@echo '  make distclean  remove build/ entirely'
	@echo
	@echo 'Variables:'
	@echo '  KERNEL=ours|baseline  kernel for check/run/shell/stress (default: ours)'
	@echo '  DEMO=vms|many|slow    make run: 4 VM-like processes of 32 MiB image + 4'
	@echo '                        MiB own (default); 16 of 16 + 2 MiB; or vms at'
	@echo '                        upstream'"'"'s default scan rate (100 pages/20 ms)'
	@echo '  DEBUG=1               check/run/shell on the debug kernel (KASAN, lockdep,'
	@echo '                        DEBUG_VM, ...); test timeouts x4 (TIMEOUT_SCALE)'
	@echo '  ONLY="prog ..."       make check: only these programs (first word of'
	@echo '                        the list'"'"'s id); the clients boot only if'
	@echo '                        ksm_clients is named'
	@echo '  CLIENTS=0             make check: no clients boot (CI'"'"'s debug stage)'
	@echo '  SKIP="prog ..."       make check: all programs but these (CI'"'"'s debug'
	@echo '                        stage skips ksm_functional_tests, see README)'
	@echo '  STRESS_SECS=S         make stress: total stress time (default 120)'
	@echo '  JOBS=N                parallel build jobs (default: nproc)'
	@echo '  BUILD=DIR             build tree (default: build/)'
	@echo '  QEMU_TIMEOUT=S        host-side limit on one boot (check: at most'
	@echo '                        2400 s by default, debug 3600 s; run: 600 s;'
	@echo '                        shell: 3600 s; stress: STRESS_SECS + 900 s)'

deps:
	@scripts/install-deps.sh

base: $(BASE_STAMP)
# The tarball comes with the linux-source-6.12 package (deps).
/usr/src/linux-source-6.12.tar.xz: | deps
	@test -f $@
$(BASE_STAMP): /usr/src/linux-source-6.12.tar.xz | deps
	@scripts/unpack-base.sh

# Always run (it is cheap); it touches $(SYNCED) only when build/src changed.
src: $(SYNCED)
$(SYNCED): FORCE | $(BASE_STAMP)
	@scripts/sync-src.sh

kernel: $(B)/kernel/bzImage
$(B)/kernel/bzImage: $(SYNCED) $(KCONFIG_DEPS)
	@scripts/build-kernel.sh $(B)/src $(B)/kernel

baseline: $(B)/baseline/bzImage
$(B)/baseline/bzImage: $(BASE_STAMP) $(KCONFIG_DEPS)
	@scripts/build-kernel.sh $(B)/base $(B)/baseline

kernel-debug: $(B)/kernel-debug/bzImage
$(B)/kernel-debug/bzImage: $(SYNCED) $(DEBUG_KCONFIG_DEPS)
	@scripts/build-kernel.sh $(B)/src $(B)/kernel-debug debug

baseline-debug: $(B)/baseline-debug/bzImage
$(B)/baseline-debug/bzImage: $(BASE_STAMP) $(DEBUG_KCONFIG_DEPS)
	@scripts/build-kernel.sh $(B)/base $(B)/baseline-debug debug

tests: $(TESTS_STAMP)
$(TESTS_STAMP): $(SYNCED) scripts/build-tests.sh
	@scripts/build-tests.sh
	@touch $@

# The demo, static, against the same exported headers as the tests.
$(DEMO_BIN): demo/ksm_demo.c $(TESTS_STAMP)
	@mkdir -p $(@D)
	gcc -static -O2 -Wall -isystem $(B)/headers/include -o $@ $<

initramfs: $(INITRAMFS)
$(INITRAMFS): $(TESTS_STAMP) $(DEMO_BIN) scripts/guest-init scripts/mk-initramfs.sh
	@scripts/mk-initramfs.sh

# The stress tools (Debian's stress-ng and trinity, with their libraries)
# and scripts/guest-stress, appended to the test initramfs.
$(STRESS_INITRAMFS): $(INITRAMFS) scripts/mk-stress-initramfs.sh \
		scripts/guest-stress scripts/merge-exec.c
	@scripts/mk-stress-initramfs.sh

# KSM's real clients (Debian's QEMU and ksmtuned, with their libraries) and
# the nested guests' kernel and busybox initramfs, appended to the test
# initramfs.
$(CLIENTS_INITRAMFS): $(INITRAMFS) $(NESTED_KIMAGE) scripts/mk-clients-initramfs.sh \
		scripts/guest-clients scripts/nested-init scripts/ksm-frames.c
	@scripts/mk-clients-initramfs.sh $(NESTED_KIMAGE) $@

check: $(KIMAGE) $(INITRAMFS) $(CLIENTS_INITRAMFS)
	@scripts/check.sh $(KIMAGE) $(KERNEL) $(FLAVOUR)

run: $(KIMAGE) $(INITRAMFS)
	@scripts/run.sh $(KIMAGE) $(KERNEL)$(if $(FLAVOUR),-$(FLAVOUR)) $(DEMO)

shell: $(KIMAGE) $(INITRAMFS)
	@scripts/qemu-run.sh shell $(KIMAGE) - $${QEMU_TIMEOUT:-3600}

# Always on the debug kernel.
stress: $(B)/$(patsubst %-debug,%,$(KDIR))-debug/bzImage $(STRESS_INITRAMFS)
	@scripts/stress.sh $< $(KERNEL)

harness-test:
	@scripts/test-verdict.sh

# Our KSM compiled as the kernel test robot would (W=1; Debian's amd64,
# i386, arm64 and x86_64 without KSM, NUMA, SYSFS, MEMORY_HOTREMOVE, SWAP):
# scripts/matrix.sh.  Slow, not in CI.  MATRIX_ONLY="cfg ..." for a few.
.PHONY: matrix
matrix: $(SYNCED)
	@scripts/matrix.sh

# Our two rst files built by Sphinx with the kernel's conf.py, their
# references checked across Documentation/, kernel-doc -Wall on our
# sources (scripts/docs-check.sh).
.PHONY: docs-check
docs-check: $(BASE_STAMP)
	@scripts/docs-check.sh

clean:
	rm -rf $(B)/src $(B)/src.tmp $(B)/kernel $(B)/baseline \
		$(B)/kernel-debug $(B)/baseline-debug $(B)/headers \
		$(B)/tests $(B)/demo $(B)/tools $(B)/logs $(B)/initramfs.* \
		$(B)/clients $(B)/initramfs-clients-*

distclean:
	rm -rf $(B)

FORCE:

# Our KSM against upstream's, side by side (scripts/bench.sh, bench/).
.PHONY: bench
bench: $(B)/kernel/bzImage $(B)/baseline/bzImage $(TESTS_STAMP)
	@scripts/bench.sh

# The bench at a KVM host's size: a 12 GiB VM, 256 MiB to 8 GiB
# (bench/workloads-scale); results in build/bench-scale/.  Long; not in CI.
.PHONY: bench-scale
bench-scale: $(B)/kernel/bzImage $(B)/baseline/bzImage $(TESTS_STAMP)
	@BENCH_SCALE=1 scripts/bench.sh

# The README's two commands in a freshly bootstrapped Debian 12 root, as a
# newcomer runs them (scripts/fresh-root.sh; root only; .ci/run does the
# same with its stages).
.PHONY: fresh-check
fresh-check:
	@scripts/fresh-root.sh /bin/bash -c 'make run && make check'

# The series for review (scripts/mkpatch.sh).
.PHONY: patch
patch:
	@scripts/mkpatch.sh

# The series applied with git am to a fresh copy of the base, the kernel
# built after every patch (scripts/patch-check.sh).
.PHONY: patch-check
patch-check: patch
	@scripts/patch-check.sh
