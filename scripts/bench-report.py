#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Report of "make bench" (scripts/bench.sh): read the console logs of
the boots in BENCH_DIR/logs/<mode>-<kernel>-<round>.log, and write

  BENCH_DIR/raw.csv         every figure: mode,kernel,round,metric,value
  BENCH_DIR/conv-<kernel>-<tag>.dat   pages_sharing over time (round 1)
  BENCH_DIR/table.md        the table (also printed)
  BENCH_DIR/convergence.png the chart (bench/convergence.gp), if gnuplot
  BENCH_DIR/profile.txt     with BENCH_PROFILE=1: the kernel functions
                            that executed the most instructions in round 1

usage: bench-report.py BENCH_DIR [scale]
("scale": the table of make bench-scale, bench/workloads-scale.)
Exit status 1 if a boot did not finish, a workload failed, or a kernel
printed a splat.
"""
import csv
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# metric, what, unit, better ("lo"/"hi"), target (text), check(ratio, ours)
TABLE = [
    ("merge_P_MiBps", "1 merge throughput, ksm_tests -P -s 100", "MiB/s",
     "hi", ">= 2x", lambda r, o: r >= 2),
    ("merge_H_MiBps", "1 merge throughput, ksm_tests -H -s 100", "MiB/s",
     "hi", ">= 2x", lambda r, o: r >= 2),
    ("merge_cpu_ns_per_page",
     "1 ksmd CPU per page, -P's workload, no busy poller", "ns", "lo", "",
     None),
    ("scan_cpu_ns_per_scanned_page",
     "2 ksmd CPU per scanned page (64 MiB unique)", "ns", "lo", "<= 0.5x",
     lambda r, o: r <= 0.5),
    ("scan_cpu_ms_per_pass", "2 ksmd CPU per full scan (16384 pages)",
     "ms", "lo", "", None),
    ("scan_pages_scanned_per_pass", "2 pages scanned per full scan",
     "pages", "", "", None),
    ("dom_1_cpu_ns_per_scanned_page",
     "2 ksmd CPU per scanned page, 1 process", "ns", "lo", "", None),
    ("dom_8_cpu_ns_per_scanned_page",
     "2 ksmd CPU per scanned page, 8 processes", "ns", "lo", "", None),
    ("dom_64_cpu_ns_per_scanned_page",
     "2 ksmd CPU per scanned page, 64 processes", "ns", "lo", "", None),
    ("dom_64_over_1", "2 64 domains / 1 domain (ours: process mode)", "x",
     "lo", "<= 1.1 (ours)", lambda r, o: o <= 1.1),
    ("conv_default_t99_ms", "3 time to 99%, 100 pages/20 ms", "ms", "lo",
     "", None),
    ("conv_default_cpu99_ms", "3 ksmd CPU to 99%, 100 pages/20 ms", "ms",
     "lo", "<= 0.5x", lambda r, o: r <= 0.5),
    ("conv_aggressive_t99_ms", "3 time to 99%, 1000 pages/0 ms", "ms", "lo",
     "<= 0.5x", lambda r, o: r <= 0.5),
    ("conv_aggressive_cpu99_ms", "3 ksmd CPU to 99%, 1000 pages/0 ms", "ms",
     "lo", "<= 0.5x", lambda r, o: r <= 0.5),
    ("conv_default_final_sharing", "3 final pages_sharing (100 pages/20 ms)",
     "pages", "hi", "", None),
    ("cow_merged_ms", "4 COW break, ksm_tests -C -p 100 (merged)", "ms",
     "lo", "<= 1.05x", lambda r, o: r <= 1.05),
    ("cow_unmerged_ms", "4 write, not merged (reference)", "ms", "lo", "",
     None),
    ("unmerge_ms", "4 unmerge, ksm_tests -D -s 100", "ms", "lo", "<= 1.05x",
     lambda r, o: r <= 1.05),
    ("mem_default_slab_bytes_per_page", "5 slab bytes per tracked page",
     "B", "lo", "<= 64 B", lambda r, o: o <= 64),
    ("sparse_1G_cpu_ms_per_pass", "6 ksmd CPU per pass, 1 GiB, 16 pages",
     "ms", "lo", "", None),
    ("sparse_64G_cpu_ms_per_pass", "6 ksmd CPU per pass, 64 GiB, 16 pages",
     "ms", "lo", "", None),
    ("sparse_32768G_cpu_ms_per_pass",
     "6 ksmd CPU per pass, 32 TiB, 16 pages", "ms", "lo",
     "O(touched)", None),
    ("rmap_ksm_migrate_us", "6 move_pages of a KSM page, 20000 VMAs",
     "us", "lo", "< 1000 us", lambda r, o: o < 1000),
    ("rmap_anon_migrate_us", "6 move_pages of an anon page (reference)",
     "us", "lo", "", None),
]

# make bench-scale (bench/workloads-scale), same columns.
TABLE_SCALE = [
    ("scan_256M_cpu_ns_per_scanned_page",
     "S1 ksmd CPU per scanned page, 256 MiB unique", "ns", "lo", "", None),
    ("scan_1G_cpu_ns_per_scanned_page",
     "S1 ksmd CPU per scanned page, 1 GiB unique", "ns", "lo", "", None),
    ("scan_4G_cpu_ns_per_scanned_page",
     "S1 ksmd CPU per scanned page, 4 GiB unique", "ns", "lo", "", None),
    ("scan_8G_cpu_ns_per_scanned_page",
     "S1 ksmd CPU per scanned page, 8 GiB unique", "ns", "lo", "<= 0.5x",
     lambda r, o: r <= 0.5),
    ("scale_8G_over_256M", "S1 cost per page, 8 GiB / 256 MiB", "x", "lo",
     "<= 1.1 (ours)", lambda r, o: o <= 1.1),
    ("mem_scan_256M_slab_bytes_per_page",
     "S3 slab per unique page, 256 MiB", "B", "lo", "", None),
    ("mem_scan_8G_slab_bytes_per_page", "S3 slab per unique page, 8 GiB",
     "B", "lo", "<= 16 B", lambda r, o: o <= 16),
    ("breakeven_dup_pct",
     "S3 break-even duplicate rate (slab per unique page / 4096)", "%",
     "lo", "", None),
    ("mem_scan_8G_general_profit", "S3 general_profit, 8 GiB unique", "B",
     "hi", "", None),
]
for _tag, _what in (("kvm_aggr", "1000 pages/0 ms"),
                    ("kvm_adv", "advisor scan-time"),
                    ("kvm_def", "100 pages/20 ms")):
    for _p in (50, 90, 99):
        TABLE_SCALE.append((f"conv_{_tag}_t{_p}_ms",
                            f"S2 KVM-like 8 GiB, time to {_p}%, {_what}",
                            "ms", "lo", "", None))
    TABLE_SCALE.append((f"conv_{_tag}_cpu99_ms",
                        f"S2 KVM-like 8 GiB, ksmd CPU to 99%, {_what}",
                        "ms", "lo", "", None))
    TABLE_SCALE.append((f"conv_{_tag}_final_sharing",
                        f"S2 KVM-like 8 GiB, final pages_sharing, {_what}",
                        "pages", "hi", "", None))
TABLE_SCALE += [
    ("mem_kvm_aggr_slab_bytes_per_page",
     "S3 slab per tracked page, KVM-like 8 GiB", "B", "lo", "<= 32 B",
     lambda r, o: o <= 32),
    ("mem_kvm_aggr_general_profit", "S3 general_profit, KVM-like 8 GiB",
     "B", "hi", "", None),
]
for _what, _name in (("run0", "echo 0 > run"),
                     ("madvise", "madvise(MADV_MERGEABLE)")):
    for _stat, _word in (("max", "longest"), ("med", "median")):
        TABLE_SCALE.append((f"waits_8G_{_what}_{_stat}_ms",
                            f"S4 {_word} wait of {_name}, 8 GiB, "
                            "ksmd flat out", "ms", "lo", "", None))


def parse_log(path):
    """Figures of one boot, and the problems seen in it."""
    figs, samples, problems = {}, [], []
    cur = None
    out = {}
    done = False
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if re.search(r"\b(BUG|WARNING|Oops|INFO: task .* blocked|"
                         r"rcu_.*stall|soft lockup|Kernel panic)\b", line):
                problems.append("splat: " + line.strip())
            m = re.match(r"### BEGIN (\S+)", line)
            if m:
                cur = m.group(1)
                out[cur] = []
                continue
            m = re.match(r"### END (\S+) rc=(\d+)", line)
            if m:
                if m.group(2) != "0":
                    problems.append(f"{m.group(1)} exited {m.group(2)}")
                cur = None
                continue
            if line.startswith("### BENCH DONE"):
                done = True
            if cur:
                out[cur].append(line)
            m = re.match(r"BENCH (\S+) (\S+)$", line)
            if m:
                figs[m.group(1)] = float(m.group(2))
            m = re.match(r"BENCH_ERROR (.*)", line)
            if m:
                problems.append(m.group(1))
            m = re.match(r"SAMPLE (\S+) (\S+) (\d+) (\d+) (\d+) (\S+)", line)
            if m:
                samples.append((m.group(1), float(m.group(2)),
                                int(m.group(3)), int(m.group(5)),
                                float(m.group(6))))
    if not done:
        problems.append("the boot did not finish (no ### BENCH DONE)")
    # ksm_tests: "Average speed:  X MiB/s", "Total time:  S s"
    for wid, lines in out.items():
        text = "\n".join(lines)
        times = [float(x) for x in re.findall(r"Total time:\s+([\d.]+) s",
                                              text)]
        speeds = [float(x) for x in
                  re.findall(r"Average speed:\s+([\d.]+) MiB/s", text)]
        if wid in ("merge_P", "merge_H") and speeds:
            figs[wid + "_MiBps"] = speeds[0]
            figs[wid + "_ms"] = times[0] * 1e3
        elif wid == "cow" and len(times) >= 2:
            figs["cow_unmerged_ms"] = times[0] * 1e3
            figs["cow_merged_ms"] = times[1] * 1e3
        elif wid == "unmerge" and times:
            figs["unmerge_ms"] = times[0] * 1e3
    one = figs.get("dom_1_cpu_ns_per_scanned_page")
    many = figs.get("dom_64_cpu_ns_per_scanned_page")
    if one and many:
        figs["dom_64_over_1"] = many / one
    small = figs.get("scan_256M_cpu_ns_per_scanned_page")
    big = figs.get("scan_8G_cpu_ns_per_scanned_page")
    if small and big:
        figs["scale_8G_over_256M"] = big / small
    unique = figs.get("mem_scan_8G_slab_bytes_per_page")
    if unique is not None:
        # Merging a duplicate saves a page; every tracked page costs
        # this much slab: KSM pays off above this share of duplicates.
        figs["breakeven_dup_pct"] = 100 * unique / 4096
    return figs, samples, problems


def profile(bdir, kernel, top=25):
    """Instructions per kernel function, from BENCH_DIR/prof/KERNEL.txt
    (bench/qemu-prof.c) and the kernel's System.map."""
    prof = os.path.join(bdir, "prof", kernel + ".txt")
    smap = os.path.join(bdir, kernel + ".System.map")
    if not os.path.exists(prof) or not os.path.exists(smap):
        return []
    import bisect
    syms = []
    with open(smap) as f:
        for line in f:
            a, t, name = line.split()[:3]
            if t in "tTwW":
                syms.append((int(a, 16), name))
    syms.sort()
    addrs = [a for a, _ in syms]
    per = {}
    total = 0
    with open(prof) as f:
        for line in f:
            a, n = line.split()
            a, n = int(a, 16), int(n)
            i = bisect.bisect_right(addrs, a) - 1
            name = syms[i][1] if i >= 0 else "?"
            per[name] = per.get(name, 0) + n
            total += n
    out = [f"{kernel}: {total / 1e6:.1f} M kernel instructions in all"]
    for name, n in sorted(per.items(), key=lambda x: -x[1])[:top]:
        out.append(f"  {n / 1e6:10.2f} M {100 * n / total:5.1f}%  {name}")
    return out


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def main():
    bdir = sys.argv[1]
    table = TABLE_SCALE if sys.argv[2:] == ["scale"] else TABLE
    logdir = os.path.join(bdir, "logs")
    runs = {}   # (mode, kernel) -> list of figs
    samples = {}
    bad = []
    rows = []
    for name in sorted(os.listdir(logdir)):
        m = re.match(r"(icount|realtime)-(ours|baseline)-(\d+)\.log$", name)
        if not m:
            continue
        mode, kernel, rnd = m.group(1), m.group(2), int(m.group(3))
        figs, samp, problems = parse_log(os.path.join(logdir, name))
        for p in problems:
            bad.append(f"{name}: {p}")
        runs.setdefault((mode, kernel), []).append(figs)
        for k, v in figs.items():
            rows.append((mode, kernel, rnd, k, v))
        if mode == "icount" and rnd == 1:
            samples[kernel] = samp
    with open(os.path.join(bdir, "raw.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mode", "kernel", "round", "metric", "value"])
        w.writerows(rows)
    for kernel, samp in samples.items():
        for tag in sorted({s[0] for s in samp}):
            with open(os.path.join(bdir, f"conv-{kernel}-{tag}.dat"),
                      "w") as f:
                f.write("# t_s pages_sharing full_scans ksmd_cpu_ms\n")
                for s in samp:
                    if s[0] == tag:
                        f.write(f"{s[1] / 1e3:.3f} {s[2]} {s[3]} {s[4]}\n")

    def med(mode, kernel, metric):
        vals = [r[metric] for r in runs.get((mode, kernel), [])
                if metric in r]
        return statistics.median(vals) if vals else None

    def spread(mode, kernel, metric):
        vals = [r[metric] for r in runs.get((mode, kernel), [])
                if metric in r]
        if len(vals) < 2 or not statistics.median(vals):
            return ""
        return f"±{(max(vals) - min(vals)) / 2 / statistics.median(vals):.0%}"

    lines = []
    for mode in ("icount", "realtime"):
        n_o = len(runs.get((mode, "ours"), []))
        n_b = len(runs.get((mode, "baseline"), []))
        if not n_o and not n_b:
            continue
        title = ("QEMU -icount shift=0,sleep=off (virtual time = guest "
                 "instructions)" if mode == "icount" else
                 "QEMU TCG without -icount (real time; a check only)")
        lines.append(f"{title}: medians of {n_o} boot(s) of ours, "
                     f"{n_b} of upstream")
        lines.append("")
        lines.append("| metric | unit | ours | upstream | ours/upstream "
                     "| target | met |")
        lines.append("|---|---|---:|---:|---:|---|---|")
        for metric, what, unit, better, target, check in table:
            o = med(mode, "ours", metric)
            b = med(mode, "baseline", metric)
            if o is None and b is None:
                continue
            ratio = o / b if o is not None and b else None
            met = ""
            if check and ratio is not None and mode == "icount":
                met = "yes" if check(ratio, o) else "**no**"
            rs = f"{ratio:.2f}x" if ratio is not None else "-"
            lines.append(f"| {what} | {unit} | {fmt(o)} "
                         f"{spread(mode, 'ours', metric)} | {fmt(b)} "
                         f"{spread(mode, 'baseline', metric)} | {rs} | "
                         f"{target} | {met} |")
        lines.append("")
    # sparse scans that did not finish
    for mode, kernel in sorted(runs):
        for span in ("1G", "64G", "32768G"):
            d = med(mode, kernel, f"sparse_{span}_done")
            if d is not None and d < 1:
                lines.append(f"note: {mode}/{kernel}: the {span} sparse "
                             "area did not finish two full scans within "
                             "the limit; its figure is a lower bound")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(bdir, "table.md"), "w") as f:
        f.write(text + "\n")
    print(f"raw figures: {os.path.join(bdir, 'raw.csv')}")

    gp = os.path.join(ROOT, "bench", "convergence.gp")
    # The chart plots both convergence runs: none without them (BENCH_ONLY).
    dats = [os.path.join(bdir, f"conv-{k}-{m}.dat")
            for k in ("ours", "baseline") for m in ("default", "aggressive")]
    if not all(os.path.exists(d) for d in dats):
        samples = None
        print("chart: not drawn (a convergence workload was not run)")
    if samples and subprocess.run(["sh", "-c", "command -v gnuplot"],
                                  capture_output=True).returncode == 0:
        r = subprocess.run(["gnuplot", "-e", f"dir='{bdir}'", gp],
                           capture_output=True, text=True)
        if r.returncode:
            bad.append("gnuplot: " + r.stderr.strip())
        else:
            print(f"chart: {os.path.join(bdir, 'convergence.png')}")
    prof = profile(bdir, "ours") + profile(bdir, "baseline")
    if prof:
        with open(os.path.join(bdir, "profile.txt"), "w") as f:
            f.write("\n".join(prof) + "\n")
        print("\nkernel profile of round 1 (instructions per function):")
        print("\n".join(prof))
    for b in bad:
        print("PROBLEM:", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
