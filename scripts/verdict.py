#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Decide the verdict of a "make check" (or "make run") boot from its console log.

usage: verdict.py check LOG TESTS_LIST KNOWN_FAILURES [--qemu-rc N]
                 [--boot NAME LOG TESTS_LIST QEMU_RC]...
       verdict.py run LOG [--qemu-rc N]
       verdict.py stress LOG --ksm-stress STATE [--qemu-rc N]

The guest only reports; the host judges, and the default is failure:

* every program of TESTS_LIST must have a "### BEGIN <id>" and an
  "### END <id> rc=<n>" on the console, and no "### TIMEOUT <id>";
* its TAP output must hold a plan 1..N and a result for each of 1..N;
  any "not ok" fails, "ok ... # SKIP" is a skip (never a pass);
* a program with plan 1..1 (ksm_tests) is one test whose id is the
  program's command line; in a longer plan each result is its own test,
  "<program>:<text after ok N>";
* an exit status other than 0 or 4 (kselftest's skip) with no failing
  result to explain it fails the program;
* "### HARNESS DONE" must be there (the guest got through the list), QEMU
  must not have timed out, and no kernel splat may appear anywhere on the
  console (a splat fails the run even if every test passed).

Each --boot is a further boot of the same check (the clients boot), judged
the same way against its own list; the failures that belong to a boot
rather than to a program name it ("guest: harness did not finish (clients
boot)").  One summary covers every boot.

tests/known-failures turns the failure of a listed test into an XFAIL (and a
pass into an XPASS, counted as passed).  Splats, timeouts and a guest that
did not finish are never excused.

Output: one line per test (PASS/FAIL/SKIP/XFAIL/XPASS <id>), then
"N xfailed", "N flaky" (with their ids: passed only on a retry), then, last, "N passed, N failed, N skipped".  Exit status 1 if
anything failed.

"make stress" (scripts/guest-stress) is judged the same way, with these
tests: ksm_stress (its TAP must pass; STATE "absent" makes it a skip,
"broken ..." a failure), stress-ng and trinity (they must reach their END
marker: the kernel survived them; their exit status and complaints are
printed as INFO, not judged), "counters zero after run=2", and as above
every splat, a guest that did not finish, and a QEMU timeout.
"""

import argparse
import re
import sys

BEGIN = re.compile(r'^### BEGIN (.+)$')
END = re.compile(r'^### END (.+) rc=(\d+) time=(\d+)s$')
TIMEOUT = re.compile(r'^### TIMEOUT (.+) after (\d+)s$')
DONE = '### HARNESS DONE'

PLAN = re.compile(r'^1\.\.(\d+)(.*)$')
RESULT = re.compile(r'^(not ok|ok) (\d+)(.*)$')
RUN_NAME = re.compile(r'^# \[RUN\] (\S+)')
BAIL = re.compile(r'^Bail out!(.*)$')

# Kernel splats.  Kernel console lines carry a printk timestamp
# (CONFIG_PRINTK_TIME), which keeps test output that happens to say
# "WARNING:" from counting; the timestamp may sit mid-line when a kernel
# message cuts into a line of test output.
SPLAT_PATTERNS = [
    r'BUG:', r'WARNING:', r'Oops', r'Kernel panic', r'kernel BUG at',
    r'general protection fault',
    r'possible circular locking', r'possible recursive locking',
    r'inconsistent lock state', r'suspicious RCU usage',
    # lockdep's reports not headed by "WARNING:" (not the bare word: the
    # debug kernel boots with "RCU lockdep checking is enabled.")
    r'DEBUG_LOCKS_WARN_ON', r'turning off the locking correctness validator',
    r'possible irq lock inversion', r'bad unlock balance', r'held lock freed',
    r'\bKASAN\b', r'\bUBSAN\b',
    r'hung_task', r'blocked for more than',
    r'soft lockup', r'hard LOCKUP',
    r'self-detected stall', r'detected stalls', r'RCU stall', r'rcu: INFO',
    r'list_add corruption', r'list_del corruption',
]
KMSG_INSIDE = re.compile(r'(?<=.)\[\s*\d+\.\d{6}\] ')
SPLAT = re.compile(r'\[\s*\d+\.\d+\].*(' + '|'.join(SPLAT_PATTERNS) + ')')


def read_console(path):
    """The console as a list of lines, without the serial line's \\r."""
    with open(path, 'rb') as f:
        text = f.read().decode('utf-8', errors='replace')
    lines = []
    for line in text.split('\n'):
        line = line.replace('\r', '')
        # ksm_functional_tests prints some results without a newline, so
        # the next "# [RUN] ..." line sticks to them: split it off.
        while '# [RUN] ' in line[1:]:
            cut = line.index('# [RUN] ', 1)
            lines.append(line[:cut].rstrip())
            line = line[cut:]
        # A kernel message that starts in the middle of a line of test
        # output ("ok 1 KSM merging[   1.65] tsc: ...") goes on its own.
        m = KMSG_INSIDE.search(line)
        if m:
            lines.append(line[:m.start()])
            line = line[m.start():]
        lines.append(line)
    return lines


def read_tests_list(path):
    """[(limit, id)] of the programs, and [(group, reason)] of unbuildable groups."""
    programs, broken = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('!'):
                group, _, reason = line[1:].strip().partition(' ')
                broken.append((group, reason))
                continue
            limit, _attempts, _dir, test_id = line.split(None, 3)
            programs.append((int(limit), test_id))
    return programs, broken


def read_known_failures(path):
    """Lines "<test-id> <reason>"; the id may contain spaces (see match)."""
    entries = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith('#'):
                    entries.append(line)
    except FileNotFoundError:
        pass
    return entries


class Known:
    """tests/known-failures: an entry matches a test whose id starts it."""

    def __init__(self, entries):
        self.entries = entries
        self.used = set()

    def match(self, *ids):
        """The reason if one of ids (test id, aliases) is listed, else None."""
        for entry in self.entries:
            for test_id in ids:
                if test_id and (entry == test_id or entry.startswith(test_id + ' ')):
                    self.used.add(entry)
                    return entry[len(test_id):].strip() or 'listed'
        return None


class Report:
    def __init__(self, known):
        self.known = known
        self.passed = self.failed = self.skipped = self.xfailed = 0
        self.lines = []

    def out(self, line):
        self.lines.append(line)

    def test(self, status, test_id, detail='', aliases=(), excusable=True):
        """Count one test; status is 'pass', 'fail' or 'skip'."""
        reason = self.known.match(test_id, *aliases) if excusable else None
        suffix = f'  -- {detail}' if detail else ''
        if reason is not None and status in ('fail', 'skip'):
            self.xfailed += 1
            self.out(f'XFAIL {test_id} ({reason}){suffix}')
        elif reason is not None:
            self.passed += 1
            self.out(f'XPASS {test_id}')
            self.out(f'      {test_id} passes now: remove it from tests/known-failures')
        elif status == 'pass':
            self.passed += 1
            self.out(f'PASS {test_id}')
        elif status == 'skip':
            self.skipped += 1
            self.out(f'SKIP {test_id}{suffix}')
        else:
            self.failed += 1
            self.out(f'FAIL {test_id}{suffix}')


def split_blocks(lines):
    """Map program id -> its lines between BEGIN and END, plus END facts.

    A program run again (the list allows some more attempts) has several
    blocks: the last one is judged, 'attempts' says how many there were.
    """
    blocks, current = {}, None
    for line in lines:
        m = BEGIN.match(line)
        if m:
            attempts = blocks[m.group(1)]['attempts'] + 1 if m.group(1) in blocks else 1
            current = {'lines': [], 'rc': None, 'time': None, 'timeout': None,
                       'attempts': attempts}
            blocks[m.group(1)] = current
            continue
        if current is None:
            continue
        m = TIMEOUT.match(line)
        if m and m.group(1) in blocks:
            blocks[m.group(1)]['timeout'] = int(m.group(2))
            continue
        m = END.match(line)
        if m and m.group(1) in blocks:
            blocks[m.group(1)]['rc'] = int(m.group(2))
            blocks[m.group(1)]['time'] = int(m.group(3))
            current = None
            continue
        current['lines'].append(line)
    return blocks


def parse_tap(lines):
    """Plan, results by number, and a bail-out message, from a TAP stream.

    A number can appear twice when a forked child of the test prints too
    (ksm_functional_tests does); the last line names the test, and a
    "not ok" in any of them fails it.
    """
    plan, plan_skip, bail = None, None, None
    results = {}
    run_name = None
    for line in lines:
        m = RUN_NAME.match(line)
        if m:
            run_name = m.group(1)
            continue
        m = BAIL.match(line)
        if m:
            bail = m.group(1).strip() or 'Bail out!'
            continue
        m = PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            rest = m.group(2)
            if plan == 0 and '# SKIP' in rest:
                plan_skip = rest.split('# SKIP', 1)[1].strip()
            continue
        m = RESULT.match(line)
        if not m:
            continue
        ok = m.group(1) == 'ok'
        num = int(m.group(2))
        text, _, directive = m.group(3).partition('#')
        text, directive = text.strip(), directive.strip()
        status = 'pass' if ok else 'fail'
        if ok and re.match(r'(SKIP|XFAIL)\b', directive, re.I):
            status = 'skip'
        if not text:
            # "ok 3 # SKIP reason": the reason is all the name there is.
            text = re.sub(r'^SKIP\s*', '', directive, flags=re.I) or f'test {num}'
        prev = results.get(num)
        if prev and prev['status'] == 'fail':
            status = 'fail'
        results[num] = {'status': status, 'name': text, 'run': run_name,
                        'detail': re.sub(r'^SKIP\s*', '', directive, flags=re.I)
                        if status != 'pass' else ''}
    return plan, plan_skip, results, bail


def judge_program(report, test_id, block):
    """Report the tests of one program."""
    prog = test_id.split()[0]
    if block is None:
        report.test('fail', test_id, 'never started (guest stopped earlier?)')
        return
    if block['timeout'] is not None:
        report.test('fail', test_id, f'timed out after {block["timeout"]}s',
                    excusable=False)
        return
    if block['rc'] is None:
        report.test('fail', test_id, 'no END marker (guest died or hung in it)',
                    excusable=False)
        return

    rc = block['rc']
    rc_ok = rc in (0, 4)
    plan, plan_skip, results, bail = parse_tap(block['lines'])

    if plan == 0 and plan_skip is not None:
        report.test('skip', test_id, f'whole program skipped: {plan_skip}')
        return
    if plan is None:
        report.test('fail', test_id, f'no TAP plan (rc={rc}{", " + bail if bail else ""})')
        return

    if plan == 1:
        # One test: the program's command line is its id.
        res = results.get(1)
        if res is None:
            report.test('fail', test_id, f'no result (rc={rc}{", " + bail if bail else ""})')
        elif res['status'] == 'fail' or not rc_ok:
            report.test('fail', test_id, f'{res["name"]}, rc={rc}')
        else:
            report.test(res['status'], test_id, res['detail'])
        return

    failing = False
    for num in sorted(results):
        res = results[num]
        sub_id = f'{prog}:{res["name"]}'
        aliases = [f'{prog}:{res["run"]}'] if res['run'] else []
        hint = f'test {num}' + (f', {res["run"]}' if res['run'] else '')
        detail = ', '.join(x for x in (res['detail'], hint) if x) \
            if res['status'] != 'pass' else ''
        report.test(res['status'], sub_id, detail, aliases)
        failing |= res['status'] == 'fail'
    missing = [n for n in range(1, plan + 1) if n not in results]
    extra = [n for n in results if n > plan]
    if missing or extra or bail:
        why = []
        if missing:
            why.append(f'plan 1..{plan} but no result for {missing}')
        if extra:
            why.append(f'results beyond plan 1..{plan}: {extra}')
        if bail:
            why.append(bail)
        report.test('fail', test_id, '; '.join(why) + f' (rc={rc})')
    elif not rc_ok and not failing:
        report.test('fail', test_id, f'exit status {rc} with no failing test')


def find_splats(lines):
    """[(where, line)] for every splat line; where: "during <program>" etc."""
    splats, where = [], 'during boot'
    for line in lines:
        m = BEGIN.match(line)
        if m:
            where = f'during {m.group(1)}'
            continue
        m = END.match(line)
        if m:
            where = f'after {m.group(1)}'
            continue
        if SPLAT.search(line):
            splats.append((where, line.strip()))
    return splats


def report_splats(report, lines, boot=''):
    splats = find_splats(lines)
    by_where = {}
    for where, line in splats:
        by_where.setdefault(where, []).append(line)
    for where, found in by_where.items():
        report.test('fail', f'kernel splat {where}{boot}',
                    f'{len(found)} line(s), first: {found[0]}', excusable=False)
    return splats


def judge_boot(report, log, tests_list, qemu_rc, boot=''):
    """Judge one boot's console against its list; [flaky ids], [splats].

    boot names a boot after the first (" (clients boot)") in the ids of
    the failures that are the boot's rather than a program's.
    """
    lines = read_console(log)
    programs, broken = read_tests_list(tests_list)
    blocks = split_blocks(lines)

    times = [(blocks[t]['time'], t) for _, t in programs
             if t in blocks and blocks[t]['time'] is not None]
    for seconds, test_id in times:
        report.out(f'TIME {seconds:4d}s {test_id}')

    for group, reason in broken:
        report.test('fail', group, reason)
    flaky = []
    for _limit, test_id in programs:
        judge_program(report, test_id, blocks.get(test_id))
        block = blocks.get(test_id)
        if block and block['attempts'] > 1:
            n = block['attempts']
            if block['rc'] == 0:
                report.out(f'FLAKY {test_id}: passed on attempt {n}, '
                           f'after {n - 1} failed attempt(s)')
                flaky.append(test_id)
            else:
                report.out(f'NOTE {test_id}: failed all {n} attempts')

    splats = report_splats(report, lines, boot)
    if DONE not in lines:
        report.test('fail', f'guest: harness did not finish{boot}',
                    'no "### HARNESS DONE"', excusable=False)
    if qemu_rc == 124:
        report.test('fail', f'host: QEMU timed out{boot}', '', excusable=False)
    return flaky, [(where + boot, line) for where, line in splats]


def check(args):
    report = Report(Known(read_known_failures(args.known_failures)))
    flaky, splats = judge_boot(report, args.log, args.tests_list, args.qemu_rc)
    for name, log, tests_list, qemu_rc in args.boot or []:
        boot_flaky, boot_splats = judge_boot(report, log, tests_list, int(qemu_rc),
                                             f' ({name} boot)')
        flaky += boot_flaky
        splats += boot_splats

    for entry in report.known.entries:
        if entry not in report.known.used:
            report.out(f'NOTE tests/known-failures entry matched no test: {entry}')
    if splats:
        report.out(f'NOTE kernel splats (first {min(len(splats), 20)} lines):')
        for where, line in splats[:20]:
            report.out(f'     [{where}] {line}')

    print('\n'.join(report.lines))
    print(f'{report.xfailed} xfailed')
    print(f'{len(flaky)} flaky' + (f' (passed only on a retry): {", ".join(flaky)}'
                                   if flaky else ''))
    print(f'{report.passed} passed, {report.failed} failed, {report.skipped} skipped')
    return 1 if report.failed else 0


def run(args):
    """make run: the demo said OK, and the kernel stayed clean."""
    lines = read_console(args.log)
    ok = True
    if not any(line.startswith('### DEMO rc=0') for line in lines):
        print('FAIL demo: no "### DEMO rc=0" on the console')
        ok = False
    for where, line in find_splats(lines):
        print(f'FAIL kernel splat: {line}')
        ok = False
    if args.qemu_rc == 124:
        print('FAIL host: QEMU timed out')
        ok = False
    print('demo: OK' if ok else 'demo: FAILED')
    return 0 if ok else 1


STRESS_TOOLS = ('stress-ng', 'trinity')
AFTER = re.compile(r'^### KSM AFTER run=2 pages_shared=(\d+) pages_sharing=(\d+)')
TOOL_NOTE = re.compile(r'(fail|error|abort|taint|segmentation|unsuccessful|'
                       r'passed:|skipped:|untrustworthy|killed)', re.I)


def stress(args):
    """make stress: ksm_stress passed, the tools ran to their end, clean kernel."""
    lines = read_console(args.log)
    report = Report(Known([]))
    blocks = split_blocks(lines)

    for test_id in ('ksm_stress',) + STRESS_TOOLS:
        block = blocks.get(test_id)
        if block and block['time'] is not None:
            report.out(f'TIME {block["time"]:4d}s {test_id}')

    state = args.ksm_stress
    if state == 'absent':
        report.test('skip', 'ksm_stress', 'not in the tree yet (no ksm_stress.c)')
    elif state == 'skipped':
        report.test('skip', 'ksm_stress', 'left out (STRESS_SKIP_KSM_STRESS=1)')
    elif state.startswith('broken'):
        report.test('fail', 'ksm_stress', state[len('broken'):].strip())
    else:
        judge_program(report, 'ksm_stress', blocks.get('ksm_stress'))

    for tool in STRESS_TOOLS:
        block = blocks.get(tool)
        if block is None or block['rc'] is None:
            # never started, or the guest died or hung in it
            judge_program(report, tool, block)
            continue
        report.test('pass', f'{tool} ran to its end (kernel survived it)')
        notes = [line for line in block['lines']
                 if TOOL_NOTE.search(line) and not line.startswith('### KSM')]
        report.out(f'INFO {tool}: exit status {block["rc"]}'
                   + (' (stopped by its time limit)' if block['rc'] == 124 else '')
                   + (f'; {len(notes)} line(s) of note:' if notes else ''))
        for line in notes[:15]:
            report.out(f'INFO   {line.strip()}')
        if len(notes) > 15:
            report.out(f'INFO   ... {len(notes) - 15} more in the log')

    for line in lines:
        if line.startswith('### KSM '):
            report.out(f'INFO {line[4:]}')

    after = [AFTER.match(line) for line in lines]
    after = [m for m in after if m]
    if not after:
        report.test('fail', 'counters zero after run=2', 'no "### KSM AFTER" line',
                    excusable=False)
    else:
        shared, sharing = int(after[-1].group(1)), int(after[-1].group(2))
        report.test('pass' if shared == 0 and sharing == 0 else 'fail',
                    'counters zero after run=2',
                    f'pages_shared={shared} pages_sharing={sharing}', excusable=False)

    splats = report_splats(report, lines)
    if DONE not in lines:
        report.test('fail', 'guest: harness did not finish', 'no "### HARNESS DONE"',
                    excusable=False)
    if args.qemu_rc == 124:
        report.test('fail', 'host: QEMU timed out', '', excusable=False)
    if splats:
        report.out(f'NOTE kernel splats (first {min(len(splats), 20)} lines):')
        for where, line in splats[:20]:
            report.out(f'     [{where}] {line}')

    print('\n'.join(report.lines))
    print(f'{report.passed} passed, {report.failed} failed, {report.skipped} skipped')
    return 1 if report.failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='mode', required=True)
    p = sub.add_parser('check')
    p.add_argument('log')
    p.add_argument('tests_list')
    p.add_argument('known_failures')
    p.add_argument('--qemu-rc', type=int, default=0)
    p.add_argument('--boot', nargs=4, action='append',
                   metavar=('NAME', 'LOG', 'TESTS_LIST', 'QEMU_RC'),
                   help='another boot of the same check, judged alike')
    p = sub.add_parser('run')
    p.add_argument('log')
    p.add_argument('--qemu-rc', type=int, default=0)
    p = sub.add_parser('stress')
    p.add_argument('log')
    p.add_argument('--ksm-stress', required=True,
                   help='present | absent | skipped | "broken <why>"')
    p.add_argument('--qemu-rc', type=int, default=0)
    args = parser.parse_args()
    return {'check': check, 'run': run, 'stress': stress}[args.mode](args)


if __name__ == '__main__':
    sys.exit(main())
