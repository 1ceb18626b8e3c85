#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make docs-check: our two documents and the kernel-doc of our sources.
#
# 1. Sphinx (Debian's python3-sphinx, installed if missing) builds our two
#    ksm.rst files with the kernel's own conf.py and extensions (kerneldoc,
#    kfigure, automarkup, cdomain, ...) from build/base, as "make htmldocs"
#    would, the kernel-doc directives reading our sources.  Any warning or
#    error about them fails, except an undefined reference: the source
#    tree of this build holds only our two documents (a full htmldocs
#    takes far longer than this check should), so a reference to the rest
#    of Documentation/ cannot resolve here.  Step 2 resolves those.
# 2. scripts/check-rst.py, for what a Sphinx build of two documents cannot
#    check: that every :ref: and :doc: resolves against the whole of
#    Documentation/, that every Documentation/... path written exists, and
#    that each document is in its directory's toctree.
# 3. kernel-doc -none -Wall on mm/ksm*.c and include/linux/ksm.h: nothing
#    to report.
#
# kernel-doc and the Sphinx setup are taken from build/base: the same as
# build/src's, without the harness lock a sync of build/src takes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cd "$ROOT"
DOCS=(Documentation/admin-guide/mm/ksm.rst Documentation/mm/ksm.rst)
SOURCES=(mm/ksm*.c include/linux/ksm.h)
base=$BUILD/base
out=$BUILD/docs
[[ -f $base/.harness-unpacked ]] || die "no build/base: run it through make (make docs-check)"
apt_install_missing python3-sphinx
status=0

# 1. Sphinx, on a source tree of our two documents and an index.
rm -rf "$out"
mkdir -p "$out/src"
{
	printf 'KSM\n===\n\n.. toctree::\n\n'
	for doc in "${DOCS[@]}"; do
		rel=${doc#Documentation/}
		mkdir -p "$out/src/$(dirname "$rel")"
		cp "$doc" "$out/src/$rel"
		printf '   %s\n' "${rel%.rst}"
	done
} > "$out/src/index.rst"
kver=$(base_version | awk '{print $3}')
sphinx_rc=0
(cd "$base/Documentation" &&
 PYTHONDONTWRITEBYTECODE=1 sphinx-build -q -b html -c "$base/Documentation" \
	-d "$out/doctrees" -D kerneldoc_srctree="$ROOT" \
	-D kerneldoc_bin="$base/scripts/kernel-doc" \
	-D version="$kver" -D release="$kver" "$out/src" "$out/html") \
	> "$out/sphinx.log" 2>&1 || sphinx_rc=$?
# Messages name the copies; say the files of this repository instead.
sed -i "s|$out/src/|Documentation/|g" "$out/sphinx.log"
# Not ours to judge: the theme's notice and the missing graphviz (dot).
problems=$(grep -v -e '^Using [a-z_]* theme' -e 'WARNING: dot(1) not found' \
	       -e 'WARNING: undefined label:' -e 'WARNING: unknown document:' \
	       "$out/sphinx.log" || true)
if ((sphinx_rc)) || [[ -n $problems ]]; then
	printf '%s\n' "$problems"
	warn "Sphinx (kernel conf.py): status $sphinx_rc, messages above (log: $out/sphinx.log)"
	status=1
else
	log "Sphinx $(sphinx-build --version | awk '{print $2}') with the kernel's conf.py: ${DOCS[*]} build clean ($out/html)"
fi

# 2. References and paths across the whole of Documentation/.
if scripts/check-rst.py --srctree . --srctree "$base" \
	--doc-root "$base/Documentation" "${DOCS[@]}"; then
	:
else
	status=1
fi

# 3. kernel-doc.
kdoc=$(perl "$base/scripts/kernel-doc" -none -Wall "${SOURCES[@]}" 2>&1 || true)
if [[ -n $kdoc ]]; then
	printf '%s\n' "$kdoc"
	warn "kernel-doc -none -Wall has something to say"
	status=1
else
	log "kernel-doc -none -Wall: nothing to report in ${SOURCES[*]}"
fi
exit "$status"
