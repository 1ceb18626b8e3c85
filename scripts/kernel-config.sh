#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Generate the kernel .config in an output directory:
#   tinyconfig, then configs/*.config merged over it, then olddefconfig,
# then check that every option a fragment asks for survived with the value
# asked (a dependency we missed makes olddefconfig drop an option quietly).
#
# usage: kernel-config.sh SRCDIR OUTDIR [FLAVOUR]
#   FLAVOUR  debug: configs/debug.config too, merged last.  A flavour's
#            fragment (configs/<flavour>.config) is used by that flavour
#            only; every other configs/*.config is used by every kernel.
#
# The .config is regenerated only when the fragments or this script change
# (hash kept in OUTDIR/.harness-config-hash), so an unchanged config does
# not make kbuild redo anything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

src=$1 out=$2 flavour=${3:-}
FLAVOURS=(debug)
mkdir -p "$out"
shopt -s nullglob
fragments=()
for f in "$ROOT"/configs/*.config; do
	name=$(basename "$f" .config)
	[[ " ${FLAVOURS[*]} " == *" $name "* ]] || fragments+=("$f")
done
((${#fragments[@]})) || die "no configs/*.config fragments"
if [[ -n $flavour ]]; then
	[[ " ${FLAVOURS[*]} " == *" $flavour "* ]] || die "unknown flavour $flavour"
	[[ -f $ROOT/configs/$flavour.config ]] || die "no configs/$flavour.config"
	fragments+=("$ROOT/configs/$flavour.config")
fi

hash=$(cat "$0" "${fragments[@]}" | sha256sum | cut -d' ' -f1)
if [[ -f $out/.config && -f $out/.harness-config-hash &&
      $(cat "$out/.harness-config-hash") == "$hash" ]]; then
	exit 0
fi

log "configuring $out: tinyconfig + ${fragments[*]##*/}"
rm -f "$out/.harness-config-hash"
make -s -C "$src" O="$out" ARCH=$KARCH tinyconfig
# -m: merge only; olddefconfig then resolves dependencies.
(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" \
	"$out/.config" "${fragments[@]}" >/dev/null)
make -s -C "$src" O="$out" ARCH=$KARCH olddefconfig

# Options that our patches/ add: a tree without them (the baseline, built
# from the pristine build/base) cannot have them, and that is no error.
OURS_ONLY=(CONFIG_KSM_KUNIT_TEST)

# Check every "CONFIG_X=v" and "# CONFIG_X is not set" of the fragments.
bad=0
while read -r frag line; do
	if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		opt=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
	elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		opt=${BASH_REMATCH[1]} want=n
	else
		continue
	fi
	if [[ " ${OURS_ONLY[*]} " == *" $opt "* ]] &&
	   ! grep -rqs --include='Kconfig*' "^config ${opt#CONFIG_}\$" "$src/mm"; then
		continue
	fi
	got=$(grep -E "^$opt=" "$out/.config" | cut -d= -f2- || true)
	[[ -n $got ]] || got=n
	if [[ $got != "$want" ]]; then
		warn "$opt: ${frag##*/} asks for $want, olddefconfig gave $got"
		bad=1
	fi
done < <(for f in "${fragments[@]}"; do sed "s|^|$f |" "$f"; done)
((bad == 0)) || die "config check failed (missing dependencies?) in $out/.config"

echo "$hash" > "$out/.harness-config-hash"
log "config OK: $(grep -c '=y' "$out/.config") options enabled"
