#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Check kernel .rst files with plain docutils (Debian's python3-docutils).

Usage: check-rst.py [--srctree DIR]... [--doc-root DIR] FILE.rst...

Sphinx and the kernel's Sphinx extensions add directives and roles that
docutils does not know; this script registers stand-ins for them, so that
only real reStructuredText problems are reported:

- ``.. kernel-doc::`` runs scripts/kernel-doc as the kernel's extension
  does and parses what it prints, so that the comments it pulls in are
  checked too; a missing file or DOC section, or anything kernel-doc
  warns about, is an error.  Paths are looked up in each --srctree in
  turn (our repository first, then a kernel tree that has scripts/).
- Other directives (toctree, code-block, c:function, flat-table, ...) are
  accepted with any argument and option; those whose content is text are
  parsed.
- Roles (ref, doc, c:func, manpage, ...) are accepted; :ref: and :doc:
  targets must resolve: a label of a checked file, or of any .rst file
  under --doc-root (a kernel Documentation/ directory), or for :doc: an
  existing document.  File paths written as Documentation/...rst must
  exist too, and each checked file under Documentation/ must be listed by
  a toctree of its directory's index.rst there.

Every message of docutils at level WARNING or above, and every check
above, is printed as "file:line: message".  Exit status: 0 if nothing was
reported, 1 otherwise, 2 on bad usage.
"""

import argparse
import io
import os
import re
import subprocess
import sys

try:
    from docutils import nodes
    from docutils.core import publish_doctree
    from docutils.parsers.rst import Directive, directives, roles
    from docutils.statemachine import StateMachine, StringList
except ImportError:
    sys.exit('check-rst.py: needs docutils (Debian: apt-get install python3-docutils)')

problems = []           # (file, line, message)
refs = []               # (kind, target, file, line) for :ref: and :doc:
srctrees = []
KERNEL_DOC_LINENO = re.compile(r'^\.\. LINENO (\d+)$')
DOCUTILS_MSG = re.compile(r'^\S.*?:\d*: \((DEBUG|INFO|WARNING|ERROR|SEVERE)/\d\) ')


def report(path, line, msg):
    problems.append((path, line, msg))


def find_in_srctrees(rel):
    for tree in srctrees:
        if os.path.exists(os.path.join(tree, rel)):
            return os.path.join(tree, rel)
    return None


class AnyOptions(dict):
    """An option_spec that takes every option, with its value as text."""
    def __missing__(self, key):
        return directives.unchanged

    def __bool__(self):
        return True


class Stub(Directive):
    """A directive docutils lacks: arguments and options taken as they are."""
    optional_arguments = 64
    final_argument_whitespace = True
    option_spec = AnyOptions()
    has_content = True
    parse_content = False

    def run(self):
        if not (self.parse_content and self.content):
            return []
        node = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


class ParsedStub(Stub):
    parse_content = True


class KernelDoc(Directive):
    """The kernel's kernel-doc directive (Documentation/sphinx/kerneldoc.py)."""
    required_arguments = 1
    optional_arguments = 4
    final_argument_whitespace = True
    option_spec = {
        'doc': directives.unchanged_required,
        'export': directives.unchanged,
        'internal': directives.unchanged,
        'identifiers': directives.unchanged,
        'no-identifiers': directives.unchanged,
        'functions': directives.unchanged,
    }
    has_content = False

    def run(self):
        src, line = self.state_machine.get_source_and_line(self.lineno)
        rel = self.arguments[0]
        path = find_in_srctrees(rel)
        tool = None
        for tree in srctrees:
            if os.path.exists(os.path.join(tree, 'scripts/kernel-doc')):
                tool = os.path.join(tree, 'scripts/kernel-doc')
                break
        if not path:
            report(src, line, 'kernel-doc: no file %s in %s' % (rel, ', '.join(srctrees)))
            return []
        if not tool:
            report(src, line, 'kernel-doc: no scripts/kernel-doc in %s' % ', '.join(srctrees))
            return []

        cmd = ['perl', tool, '-rst', '-enable-lineno', '-sphinx-version', '5.3.0']
        opts = self.options
        if 'export' in opts:
            cmd += ['-export']
        elif 'internal' in opts:
            cmd += ['-internal']
        elif 'doc' in opts:
            cmd += ['-function', opts['doc']]
        elif 'identifiers' in opts:
            names = opts['identifiers'].split()
            if names:
                for name in names:
                    cmd += ['-function', name]
            else:
                cmd += ['-no-doc-sections']
        if 'no-identifiers' in opts:
            for name in opts['no-identifiers'].split():
                cmd += ['-nosymbol', name]
        cmd.append(path)

        run = subprocess.run(cmd, capture_output=True, text=True)
        for msg in run.stderr.splitlines():
            report(src, line, 'kernel-doc %s: %s' % (rel, msg))
        if run.returncode:
            report(src, line, 'kernel-doc %s: exit status %d' % (rel, run.returncode))

        # Lines carry their place in the C file, as in the real extension.
        content = StringList()
        offset = 0
        for text in run.stdout.splitlines():
            m = KERNEL_DOC_LINENO.match(text)
            if m:
                offset = int(m.group(1)) - 1
                continue
            content.append(text, rel, offset)
            offset += 1
        if not any(t.strip() for t in content):
            what = 'DOC: %s' % opts['doc'] if 'doc' in opts else 'anything'
            report(src, line, 'kernel-doc: %s not found in %s' % (what, rel))
            return []
        node = nodes.section()
        node.document = self.state.document
        # Messages about these lines name the C file and its line (what
        # Sphinx's switch_source_input() does for the real extension).
        reporter = self.state.memo.reporter
        saved = reporter.get_source_and_line
        lines = StateMachine([], None)
        lines.input_lines = content
        reporter.get_source_and_line = lines.get_source_and_line
        try:
            self.state.nested_parse(content, 0, node, match_titles=1)
        finally:
            reporter.get_source_and_line = saved
        return node.children


def text_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [nodes.literal(rawtext, text)], []


def xref_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    m = re.match(r'^(.*?)\s*<([^<>]+)>$', text, re.S)
    target = (m.group(2) if m else text).strip()
    src, line = inliner.reporter.get_source_and_line(lineno)
    refs.append((name, target, src, line))
    return [nodes.literal(rawtext, m.group(1) if m else text)], []


PARSED_DIRECTIVES = (
    'only ifconfig seealso versionadded versionchanged deprecated hlist '
    'centered glossary c:function c:macro c:struct c:union c:enum '
    'c:enumerator c:member c:var c:type cssclass rst-class').split()
LITERAL_DIRECTIVES = (
    'toctree code-block sourcecode highlight literalinclude index '
    'tabularcolumns productionlist sectionauthor codeauthor '
    'kernel-include kernel-figure kernel-image kernel-render kernel-abi '
    'kernel-feat kernel-feat-list maintainers-include flat-table '
    'c:namespace c:namespace-push c:namespace-pop c:alias '
    'graphviz kernel-doc-only').split()
TEXT_ROLES = (
    'c:func c:type c:macro c:struct c:union c:enum c:enumerator c:member '
    'c:data c:var c:expr c:texpr c:identifier manpage file command envvar '
    'option term abbr kbd menuselection guilabel samp program download '
    'any dfn mimetype regexp makevar keyword token numref func').split()


def register():
    for name in PARSED_DIRECTIVES:
        directives.register_directive(name, ParsedStub)
    for name in LITERAL_DIRECTIVES:
        directives.register_directive(name, Stub)
    directives.register_directive('kernel-doc', KernelDoc)
    for name in TEXT_ROLES:
        roles.register_local_role(name, text_role)
    for name in ('ref', 'doc'):
        roles.register_local_role(name, xref_role)


LABEL = re.compile(r'^\s*\.\.\s+_(`[^`]+`|[^:`]+):\s*$')


def labels_of(path):
    found = set()
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for text in f:
                m = LABEL.match(text)
                if m:
                    found.add(m.group(1).strip('`').strip().lower())
    except OSError:
        pass
    return found


def doc_tree_labels(root, skip):
    found = set()
    for top, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            if name.endswith('.rst') and os.path.realpath(path) not in skip:
                found |= labels_of(path)
    return found


INCOMING = re.compile(r':ref:`([^`<>]+)`|`[^`]*<([^<>`]+)>`')


def incoming_refs(root, skip):
    """Every (label, file, line) that an .rst file under root points at."""
    found = []
    for top, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            if not name.endswith('.rst') or os.path.realpath(path) in skip:
                continue
            with open(path, encoding='utf-8', errors='replace') as f:
                for n, text in enumerate(f, 1):
                    for m in INCOMING.finditer(text):
                        label = (m.group(1) or m.group(2)).strip().lower()
                        found.append((label, os.path.relpath(path, root), n))
    return found


def listed_in_index(doc_root, rel):
    """Is Documentation/<dir>/<name>.rst listed by <dir>/index.rst?"""
    parts = rel.split('/')
    if len(parts) < 2 or parts[0] != 'Documentation' or parts[-1] == 'index.rst':
        return True
    index = os.path.join(doc_root, *parts[1:-1], 'index.rst')
    entry = parts[-1][:-len('.rst')]
    try:
        with open(index, encoding='utf-8') as f:
            text = f.read()
    except OSError:
        return False
    return re.search(r'^\s+%s(\.rst)?\s*$' % re.escape(entry), text, re.M) is not None


def check(path, rel):
    with open(path, encoding='utf-8') as f:
        source = f.read()
    stream = io.StringIO()
    publish_doctree(source, source_path=rel, settings_overrides={
        'report_level': 2, 'halt_level': 5, 'warning_stream': stream,
        'file_insertion_enabled': False, 'raw_enabled': True,
        'input_encoding': 'utf-8', 'tab_width': 8,
    })
    # docutils: "file:line: (LEVEL/n) text", then maybe the offending
    # lines, which are not messages of their own.
    for msg in stream.getvalue().splitlines():
        if DOCUTILS_MSG.match(msg):
            problems.append((None, None, msg))
    for n, text in enumerate(source.splitlines(), 1):
        if text != text.rstrip():
            report(rel, n, 'trailing whitespace')
        for doc in re.findall(r'\bDocumentation/[\w./-]+\.rst\b', text):
            if not find_in_srctrees(doc):
                report(rel, n, 'no such file: %s' % doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--srctree', action='append', default=[],
                    help='kernel tree(s) for kernel-doc and Documentation/ '
                         'paths, searched in order (default: .)')
    ap.add_argument('--doc-root', help='a Documentation/ directory whose '
                    'labels and index files references may point into')
    ap.add_argument('files', nargs='+')
    args = ap.parse_args()

    srctrees.extend(os.path.abspath(t) for t in (args.srctree or ['.']))
    register()

    for path in args.files:
        if not os.path.isfile(path):
            print('%s: no such file' % path, file=sys.stderr)
            sys.exit(2)
    rels = {path: os.path.relpath(path) for path in args.files}
    for path in args.files:
        check(path, rels[path])

    ours = set()
    for path in args.files:
        ours |= labels_of(path)
    known = set(ours)
    skip = {os.path.realpath(p) for p in args.files}
    if args.doc_root:
        # The doc tree's own version of a checked file is replaced by ours:
        # its labels do not count, and those that other files point at
        # must still be defined by ours.
        replaced = {}
        for path in args.files:
            rel = rels[path]
            if rel.startswith('Documentation/'):
                old = os.path.join(args.doc_root, rel[len('Documentation/'):])
                if os.path.isfile(old):
                    replaced[rel] = labels_of(old) - labels_of(path)
                    skip.add(os.path.realpath(old))
        known |= doc_tree_labels(args.doc_root, skip)
        lost = {label: rel for rel, labels in replaced.items() for label in labels}
        for label, where, n in incoming_refs(args.doc_root, skip):
            if label in lost and label not in known:
                report(lost[label], 1, 'label "%s", used by %s:%d, is no longer '
                       'defined' % (label, where, n))
        for path in args.files:
            rel = rels[path]
            if rel.startswith('Documentation/') and not listed_in_index(args.doc_root, rel):
                report(rel, 1, 'not listed in the toctree of %s/index.rst'
                       % os.path.dirname(rel[len('Documentation/'):]))

    for kind, target, src, line in refs:
        if kind == 'ref' and target.lower() not in known:
            report(src, line, 'unresolved :ref: target "%s"' % target)
        elif kind == 'doc':
            here = os.path.dirname(src[len('Documentation/'):]) \
                if src.startswith('Documentation/') else ''
            doc = target[1:] if target.startswith('/') else os.path.join(here, target)
            if not args.doc_root or not (
                    os.path.exists(os.path.join(args.doc_root, doc + '.rst')) or
                    find_in_srctrees(os.path.join('Documentation', doc + '.rst'))):
                report(src, line, 'unresolved :doc: target "%s"' % target)

    for src, line, msg in problems:
        print(msg if src is None else '%s:%s: %s' % (src, line, msg))
    names = ', '.join(rels[p] for p in args.files) if len(args.files) < 4 \
        else '%d files' % len(args.files)
    if problems:
        print('check-rst: %d problem(s) in %s' % (len(problems), names), file=sys.stderr)
        return 1
    print('check-rst: %s: valid reStructuredText, references resolve' % names)
    return 0


if __name__ == '__main__':
    sys.exit(main())
