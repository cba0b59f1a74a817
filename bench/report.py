#!/usr/bin/python3
"""Writes the benchmark report (Markdown and PNG plots) from the JSON of bench/results/.

  report.py RESULTS_DIR REPORT.md      (plots go to a `bench/` folder next to REPORT.md)

Everything in the report comes from the JSON files of RESULTS_DIR (written by
bench/all.sh): nothing is measured here. Every figure is set against peers measured in the
same run of bench/all.sh.
"""
import glob
import json
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# ------------------------------------------------------------------------------- loading


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# Google Benchmark names -> (workload, implementation). Suites name them differently:
# "workload/impl" (switchable, tree), "BM_Op/impl_variant" (dpdk_mempool, dpdk_lcore),
# "BM_Workload_Impl" (bitset, context) or one name per implementation (bump, sources,
# parser).
# Longer names first: an implementation is the longest of these its name starts with.
KNOWN_IMPLS = ["rte_mempool_cache", "lcore_heap", "flow_context", "ring_mp_mc", "stack",
               "ctxalloc", "rte_mempool", "rte_malloc", "lcore"]
OURS = {"switchable": "ctxalloc", "tree": "tree", "dpdk_mempool": "ctxalloc",
        "bump": "BumpAllocate", "bitset": "BitSet", "context": "Context",
        "sources": "ArenaRing", "parser": "CtxfwdParse", "dpdk_lcore": "ctxalloc"}


def split_name(suite, name):
    name = name.replace("/real_time", "")
    if "/" in name:
        left, right = name.split("/", 1)
        if left.startswith("BM_"):
            for impl in KNOWN_IMPLS:
                if right.startswith(impl):
                    variant = right[len(impl):].strip("_")
                    return (left[3:] + (" " + variant if variant else ""), impl)
            return (left[3:], right)
        return (left, right)
    parts = name[3:].split("_") if name.startswith("BM_") else [name]
    if len(parts) == 1:
        return (suite, parts[0])
    return ("_".join(parts[:-1]), parts[-1])


def gbench_tables(results):
    """suite -> {workload: {impl: median ns}}, and the rounds."""
    tables = {}
    rounds = 0
    for path in sorted(glob.glob(os.path.join(results, "gbench-*.json"))):
        doc = json.load(open(path))
        rounds = max(rounds, doc["rounds"])
        t = tables.setdefault(doc["suite"], {})
        for name, e in doc["benchmarks"].items():
            w, impl = split_name(doc["suite"], name)
            t.setdefault(w, {})[impl] = e["median_ns"]
    return tables, rounds


def callgrind_tables(results):
    """group -> {entry: instructions per op}; peer files fold into their suite's group, with
    their `malloc_` entries renamed after the peer."""
    groups = {}
    for path in sorted(glob.glob(os.path.join(results, "callgrind-*.json"))):
        stem = os.path.basename(path)[len("callgrind-"):-len(".json")]
        suite, peer = stem, None
        for p in ("mimalloc", "jemalloc", "tcmalloc"):
            if stem.endswith("_" + p):
                suite, peer = stem[: -len(p) - 1], p
        doc = json.load(open(path))
        g = groups.setdefault(suite, {})
        for k, v in doc.items():
            per = v.get("per_op", v.get("per_packet"))
            if per is None:
                continue
            if peer and k.startswith("malloc_"):
                k = peer + k[len("malloc"):]
            elif peer is None and suite in ("switchable",) and k.startswith("malloc_"):
                k = "glibc" + k[len("malloc"):]
            g[k] = float(per)
    return groups


# ---------------------------------------------------------------------------------- goals


class Goals:
    def __init__(self):
        self.rows = []

    def add(self, issue, goal, value, target, met, how):
        self.rows.append((issue, goal, value, target, met, how))

    def ratio(self, issue, goal, num, den, target, higher_is_better, how, fmt="%.2fx"):
        want = ("≥ " if higher_is_better else "≤ ") + fmt % target
        if num is None or den is None or den == 0:
            self.add(issue, goal, "not measured", want, None, how)
            return
        r = num / den
        met = r >= target if higher_is_better else r <= target
        self.add(issue, goal, fmt % r, want, met, how)


def get(d, *keys):
    for k in keys:
        if d is None or k not in d:
            return None
        d = d[k]
    return d


def collect_goals(results, gb, cg):
    g = Goals()
    # Issue 2: bump allocation <= 1.5x the instructions of a bare increment.
    g.ratio(2, "bump allocation vs a bare pointer increment (instructions)",
            get(cg, "bump", "bump"), get(cg, "bump", "bare_increment"), 1.5, False,
            "callgrind")
    # Issue 3: bit set faster than glibc malloc+free, in time and instructions.
    for w, key in (("OneBlock", "one"), ("FourBlocks", "four")):
        g.ratio(3, "bit set %s: glibc time / bit-set time" % w,
                get(gb, "bitset", w, "GlibcMalloc"), get(gb, "bitset", w, "BitSet"), 1.0, True,
                "median of alternating runs")
        g.ratio(3, "bit set %s: glibc instructions / bit-set instructions" % w,
                get(cg, "bitset", "glibc_" + key), get(cg, "bitset", "bitset_" + key), 1.0, True,
                "callgrind")
    # Issue 4: trees against rte_malloc; footprint against mimalloc.
    g.ratio(4, "tree, random sizes: rte_malloc time / tree time",
            get(gb, "tree", "random", "rte"), get(gb, "tree", "random", "tree"), 2.0, True,
            "median of alternating runs")
    g.ratio(4, "tree, fragmented: rte_malloc time / tree time",
            get(gb, "tree", "fragmented", "rte"), get(gb, "tree", "fragmented", "tree"), 100.0,
            True, "median of alternating runs", fmt="%.0fx")
    g.ratio(4, "global heap, random sizes: rte_malloc time / global heap time",
            get(gb, "tree", "random", "rte"), get(gb, "tree", "random", "global_heap"), 2.0, True,
            "median of alternating runs")
    g.ratio(4, "global heap, fragmented: rte_malloc time / global heap time",
            get(gb, "tree", "fragmented", "rte"), get(gb, "tree", "fragmented", "global_heap"),
            100.0, True, "median of alternating runs", fmt="%.0fx")
    mem = load(results, "memory.json") or {}
    frag = {f["peer"]: f["ratio"] for f in mem.get("fragmentation", [])}
    for ours in ("tree", "global_heap"):
        g.ratio(4, "footprint (peak RSS / peak live): %s / mimalloc" % ours, frag.get(ours),
                frag.get("mimalloc"), 1.0, False, "random workload, every byte written")
    # Issue 5: the switchable allocator against mimalloc.
    g.ratio(5, "thread-heap allocate+free: mimalloc time / ctxalloc time",
            get(gb, "switchable", "pairs", "mimalloc"), get(gb, "switchable", "pairs", "ctxalloc"),
            1.0, True, "median of alternating runs")
    g.ratio(5, "thread-heap allocate+free: mimalloc / ctxalloc instructions",
            get(cg, "switchable", "mimalloc_pairs"), get(cg, "switchable", "ctxalloc_pairs"), 1.0,
            True, "callgrind")
    g.ratio(5, "producer/consumer: mimalloc time / ctxalloc time",
            get(gb, "switchable", "producer_consumer", "mimalloc"),
            get(gb, "switchable", "producer_consumer", "ctxalloc"), 1.0, True,
            "median of alternating runs (spinning threads on 2 shared cores: swings widely)")
    g.ratio(5, "producer/consumer: mimalloc / ctxalloc instructions",
            get(cg, "switchable", "mimalloc_pc"), get(cg, "switchable", "ctxalloc_pc"), 1.0, True,
            "callgrind, lock-step hand-over")
    cs = get(cg, "switchable", "context_scope")
    g.add(5, "context install + restore (instructions)", "%.1f" % cs if cs else "not measured",
          "< 20", None if cs is None else cs < 20, "callgrind")
    # Issue 6: the preload library against mimalloc, whole processes.
    pre = load(results, "preload.json") or {}
    for w in ("pairs", "batch", "pc_lockstep", "pc"):
        r = get(pre, "%s_ctxalloc" % w, "cpu_ratio_to_mimalloc")
        g.ratio(6, "LD_PRELOAD %s: mimalloc CPU time / ctxalloc" % w, 1.0 if r else None, r, 1.0,
                True, "median of alternating processes")
    cgp = load(results, "callgrind-preload.json") or {}
    for w in ("pairs", "batch", "pc_lockstep"):
        g.ratio(6, "LD_PRELOAD %s: mimalloc / ctxalloc instructions" % w,
                get(cgp, "%s_mimalloc" % w, "per_op"), get(cgp, "%s_ctxalloc" % w, "per_op"), 1.0,
                True, "callgrind")
    # Issue 7: the mempool driver.
    for v in ("cache_32", "nocache_32"):
        g.ratio(7, "mempool bulk 32 (%s): ctxalloc time / ring_mp_mc time" % v,
                get(gb, "dpdk_mempool", "GetPut " + v, "ctxalloc"),
                get(gb, "dpdk_mempool", "GetPut " + v, "ring_mp_mc"), 1.03, False,
                "median of alternating runs")
    tp = load(results, "testpmd.json") or {}
    g.ratio(7, "testpmd --mbcache=0: ctxalloc pps / ring_mp_mc pps",
            get(tp, "mbcache_0", "ctxalloc_mpps"), get(tp, "mbcache_0", "ring_mp_mc_mpps"), 1.0,
            True, "median of alternating runs")
    # Issue 8: the per-lcore allocators (bench_dpdk_lcore).
    g.ratio(8, "per-flow lifecycle: rte_malloc time / ctxalloc time",
            get(gb, "dpdk_lcore", "Flow", "rte_malloc"), get(gb, "dpdk_lcore", "Flow", "ctxalloc"),
            5.0, True, "median of alternating runs")
    g.ratio(8, "per-packet allocate+free: ctxalloc time / rte_mempool (cached) time",
            get(gb, "dpdk_lcore", "Packet", "lcore_heap"),
            get(gb, "dpdk_lcore", "Packet", "rte_mempool_cache"), 2.0, False,
            "median of alternating runs")
    # Issue 9: ctxfwd.
    fwd = load(results, "ctxfwd.json") or {}
    c = get(fwd, "ctxalloc", "median_pps")
    g.ratio(9, "ctxfwd --flow-alloc ctxalloc / rte_malloc (pps)", c,
            get(fwd, "rte_malloc", "median_pps"), 1.3, True, "median of alternating runs")
    g.ratio(9, "ctxfwd --flow-alloc ctxalloc / malloc (pps)", c, get(fwd, "malloc", "median_pps"),
            1.1, True, "median of alternating runs")
    g.ratio(9, "ctxfwd (ctxalloc) / testpmd io forwarding (pps)", c,
            get(fwd, "testpmd", "median_pps"), 0.6, True, "median of alternating runs")
    # Issue 16: growing flow contexts (bench/callgrind_flow_contexts.cc).
    cr = get(cg, "flow_contexts", "create_release_growing")
    g.add(16, "flow context create + release (instructions)",
          "%.1f" % cr if cr else "not measured", "≤ 60", None if cr is None else cr <= 60,
          "callgrind, a warm pool with 64 other flows live")
    fa = get(cg, "flow_contexts", "alloc_growing")
    g.add(16, "allocation that fits the current chunk (instructions)",
          "%.1f" % fa if fa else "not measured", "≤ 10", None if fa is None else fa <= 10,
          "callgrind, 32 B in a 64 KiB first chunk, the loop and a reset every 1000 included")
    g.ratio(16, "short flow lifecycle: malloc / growing context instructions",
            get(cg, "flow_contexts", "flow_malloc"), get(cg, "flow_contexts", "flow_growing"),
            2.0, True, "callgrind: context + 4 blocks + release vs 4 malloc + 4 free")
    # Issue 16: the flow-scale mix under callgrind (10^4 live flows), the driver's own
    # instructions (the null peer's) taken off both sides.
    for what, how in (("lifecycle", "a flow closed and one opened per op"),
                      ("packet", "a packet of a random flow, churn included")):
        null, mal, gro = (get(cg, "flow_contexts", "scale_%s_%s" % (what, p))
                          for p in ("null", "malloc", "growing"))
        if None not in (null, mal, gro):
            g.ratio(16, "flow-scale mix %s: malloc / growing context instructions" % what,
                    mal - null, gro - null, 2.0 if what == "lifecycle" else 1.0, True,
                    "callgrind, 10^4 live flows, %s, minus the driver's (null peer): %.0f vs "
                    "%.0f" % (how, mal - null, gro - null))
    # Issue 16: the flow-scale benchmark (bench/flow_scale_bench.cc), at its largest count.
    fs = load(results, "flow_scale.json")
    if fs and fs["results"]:
        top = max(r["flows"] for r in fs["results"])
        at = {r["peer"]: r for r in fs["results"] if r["flows"] == top and "skipped" not in r}
        how = "bench/flow_scale, %d flows, median of %d alternating rounds" % (top, fs["rounds"])
        mr = get(at, "growing", "memory_ratio")
        g.add(16, "flow scale: bytes held / bytes asked, growing contexts",
              "%.2fx" % mr if mr else "not measured", "≤ 1.30x",
              None if mr is None else mr <= 1.3, how)
        g.ratio(16, "flow scale open + close: malloc time / growing context time",
                get(at, "malloc", "open_close_ns"), get(at, "growing", "open_close_ns"), 2.0,
                True, how)
        if get(at, "growing", "open_close_warm_ns"):
            g.ratio(16, "flow scale open + close, warm memory: malloc time / growing time",
                    get(at, "malloc", "open_close_warm_ns"),
                    get(at, "growing", "open_close_warm_ns"), 2.0, True,
                    how + "; the second pass, on the first pass's memory")
        g.ratio(16, "flow scale per packet: malloc time / growing context time",
                get(at, "malloc", "packet_ns"), get(at, "growing", "packet_ns"), 1.0, True, how)
    # Issue 18: the mimalloc-bench suite (bench/mimalloc_bench.py), one row per program.
    mb = load(results, "mimalloc_bench.json")
    if mb:
        for name, ratios in mimalloc_bench_ratios(mb).items():
            t, best, best_peer, rss = ratios
            met = t <= 1.0 and best <= 1.1 and rss <= 1.1
            g.add(18, "mimalloc-bench %s: ctxalloc time / mimalloc, / best peer; peak RSS / "
                  "mimalloc" % name, "%.2fx, %.2fx (%s), %.2fx" % (t, best, best_peer, rss),
                  "≤ 1.00x, ≤ 1.10x, ≤ 1.10x", met, "median of %d alternating rounds" %
                  mb["rounds"])
        gm = statistics.geometric_mean([r[0] for r in mimalloc_bench_ratios(mb).values()])
        g.add(18, "mimalloc-bench geometric mean: ctxalloc time / mimalloc time", "%.2fx" % gm,
              "≤ 0.95x", gm <= 0.95, "median of %d alternating rounds" % mb["rounds"])
    return g


def mimalloc_bench_ratios(mb):
    """program -> (ctxalloc/mimalloc time, ctxalloc/best other peer time, that peer,
    ctxalloc/mimalloc peak RSS), from the medians."""
    out = {}
    for name, e in mb["programs"].items():
        p = e["peers"]
        if "ctxalloc" not in p or "mimalloc" not in p:
            continue
        c = p["ctxalloc"]["median_time"]
        others = {k: v["median_time"] for k, v in p.items() if k != "ctxalloc"}
        best_peer = min(others, key=others.get)
        out[name] = (c / p["mimalloc"]["median_time"], c / others[best_peer], best_peer,
                     p["ctxalloc"]["median_rss_kib"] / p["mimalloc"]["median_rss_kib"])
    return out


# ---------------------------------------------------------------------------------- plots


def bar_plot(path, title, labels, series, ylabel, ref_line=None, log=False):
    """series: {name: [value per label]} (None: missing)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels) * max(1, len(series)) / 2 + 3), 4))
    n = len(series)
    width = 0.8 / max(n, 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if ref_line is not None:
        ax.axhline(ref_line, color="black", linewidth=0.8, linestyle="--")
    if log:
        ax.set_yscale("log")
    if n > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------------- report


def load_profiles():
    """bench/profiles.md: {issue: its section}, sections headed `### issue N: ...`."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles.md")
    sections, issue, lines = {}, None, []
    if not os.path.exists(path):
        return sections
    with open(path) as f:
        for line in f.read().splitlines():
            m = re.match(r"### issue (\d+):", line)
            if m:
                if issue is not None:
                    sections[issue] = "\n".join(lines).strip()
                issue, lines = int(m.group(1)), [line]
            elif issue is not None:
                lines.append(line)
    if issue is not None:
        sections[issue] = "\n".join(lines).strip()
    return sections


def fmt_ns(v):
    if v is None:
        return "-"
    return "%.1f" % v if v < 1000 else "%.0f" % v


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    results, out = sys.argv[1], sys.argv[2]
    plots = os.path.join(os.path.dirname(os.path.abspath(out)), "bench")
    os.makedirs(plots, exist_ok=True)
    machine = load(results, "machine.json") or {}
    gb, rounds = gbench_tables(results)
    cg = callgrind_tables(results)
    goals = collect_goals(results, gb, cg)
    profiles = load_profiles()
    smoke = machine.get("smoke", False)

    md = []
    md.append("# ctxalloc benchmarks\n")
    md.append("Written by `bench/report.py` from the JSON in `bench/results/`, which "
              "`bash bench/all.sh` produced in one run%s. Nothing here is typed by hand "
              "but the profiles of the misses (bench/profiles.md): run the command again to "
              "replace it.\n" %
              (" (SMOKE MODE: seconds-long runs that only check the benchmarks work; the "
               "figures mean nothing)" if smoke else ""))
    md.append("## Machine\n")
    md.append("| | |\n|---|---|")
    for k in ("date", "cpu", "cpus", "memory_gib", "kernel", "os", "compiler",
              "load_average_at_start"):
        if k in machine:
            md.append("| %s | %s |" % (k.replace("_", " "), machine[k]))
    for pkg, v in sorted(machine.get("packages", {}).items()):
        md.append("| %s | %s |" % (pkg, v))
    md.append("")
    md.append("## How to read it\n")
    md.append(
        "- **Times** are medians over %d rounds; every round runs each benchmark binary once, "
        "in a shuffled order, so the peers (one malloc per process: glibc, mimalloc, jemalloc, "
        "tcmalloc, each in its own binary) alternate and share the machine's load alike. This "
        "machine is shared and loaded by other work: times are indicative, ratios between "
        "columns of one run are what to read. Ratios are *peer time / ctxalloc time*: above 1, "
        "ctxalloc is faster.\n"
        "- **Instructions** come from `valgrind --tool=callgrind`, counted inside the "
        "workload's functions only: stable on a loaded machine.\n"
        "- **Memory**: each workload runs alone in a fresh process; *growth* is the peak "
        "resident set during the workload minus the resident set before it (the kernel's "
        "peak mark reset before the workload), *source peak* the peak of ctxalloc's own "
        "segment sources (bytes mapped from the OS, resident or not).\n" % rounds)

    md.append("## Goals\n")
    md.append("| issue | goal | measured | target | | how |\n|---|---|---|---|---|---|")
    for issue, goal, value, target, met, how in goals.rows:
        mark = "met" if met else ("not measured" if met is None else "**missed**")
        md.append("| %d | %s | %s | %s | %s | %s |" % (issue, goal, value, target, mark, how))
    md.append("")

    missed_rows = [r for r in goals.rows if r[4] is False]
    if missed_rows:
        md.append("## Where the time goes in the misses\n")
        md.append("Every missed goal above, with the profile of its issue from "
                  "`bench/profiles.md` (written by hand from `callgrind_annotate` runs whose "
                  "commands it gives; the figures above are this run's).\n")
        for issue, goal, value, target, _, _ in missed_rows:
            has = "see *issue %d* below" % issue if issue in profiles else \
                "**no profile written yet**"
            md.append("- issue %d, %s: %s against %s: %s" % (issue, goal, value, target, has))
        md.append("")
        for issue in sorted({r[0] for r in missed_rows}):
            if issue in profiles:
                md.append(profiles[issue])
                md.append("")
    md.append("## Time per operation (ns, median) and ratios to ctxalloc\n")
    for suite in sorted(gb):
        t = gb[suite]
        ours = OURS.get(suite)
        impls = []
        for w in t.values():
            for impl in w:
                if impl not in impls:
                    impls.append(impl)
        if ours in impls:
            impls.remove(ours)
            impls.insert(0, ours)
        md.append("### %s\n" % suite)
        md.append("| workload | " + " | ".join(impls) + " |")
        md.append("|---|" + "---|" * len(impls))
        labels, series = [], {i: [] for i in impls if i != ours}
        for w in sorted(t):
            row = t[w]
            base = row.get(ours)
            cells = []
            for impl in impls:
                v = row.get(impl)
                if v is None:
                    cells.append("-")
                elif impl == ours or base is None:
                    cells.append(fmt_ns(v))
                else:
                    cells.append("%s (%.2fx)" % (fmt_ns(v), v / base))
            md.append("| %s | %s |" % (w, " | ".join(cells)))
            if base is not None and len(row) > 1:
                labels.append(w)
                for impl in series:
                    series[impl].append(row[impl] / base if impl in row else None)
        md.append("")
        series = {k: v for k, v in series.items() if any(x is not None for x in v)}
        if labels and series:
            png = "time-%s.png" % suite
            bar_plot(os.path.join(plots, png), "%s: peer time / %s time (> 1: %s faster)" %
                     (suite, ours, ours), labels, series, "ratio", ref_line=1.0,
                     log=max(x for v in series.values() for x in v if x) > 20)
            md.append("![%s](bench/%s)\n" % (suite, png))

    md.append("## Instructions per operation (callgrind)\n")
    for group in sorted(cg):
        entries = cg[group]
        md.append("### %s\n" % group)
        md.append("| workload | instructions per op |\n|---|---|")
        for k in sorted(entries):
            md.append("| %s | %.1f |" % (k, entries[k]))
        md.append("")
        if len(entries) > 1:
            png = "instructions-%s.png" % group
            keys = sorted(entries)
            bar_plot(os.path.join(plots, png), "%s: instructions per operation" % group, keys,
                     {"instructions": [entries[k] for k in keys]}, "instructions",
                     log=max(entries.values()) > 50 * max(1, min(entries.values())))
            md.append("![%s](bench/%s)\n" % (group, png))

    mem = load(results, "memory.json")
    if mem:
        md.append("## Memory per workload\n")
        md.append("Each workload of the callgrind drivers, %d operations, alone in a process.\n"
                  % mem["ops"])
        md.append("| driver:workload | resident before (KiB) | peak growth (KiB) | ctxalloc "
                  "source peak (KiB) |\n|---|---|---|---|")
        for k in sorted(mem["workloads"]):
            f = mem["workloads"][k]
            src = f["source_peak_bytes"] // 1024 if "ctxalloc" in k or "context" in k else "-"
            md.append("| %s | %d | %d | %s |" % (k, f["rss_before_kib"], f["growth_kib"], src))
        md.append("")
        if mem.get("fragmentation"):
            md.append("### Footprint under fragmentation (tree suite's random workload)\n")
            md.append("| allocator | peak taken (MB) | peak live (MB) | taken / live |\n"
                      "|---|---|---|---|")
            for f in mem["fragmentation"]:
                md.append("| %s | %.1f | %.1f | %.3f |" % (f["peer"], f["peak_taken"] / 1e6,
                                                         f["peak_live"] / 1e6, f["ratio"]))
            md.append("")
            png = "footprint.png"
            bar_plot(os.path.join(plots, png), "peak RSS / peak live bytes (lower is better)",
                     [f["peer"] for f in mem["fragmentation"]],
                     {"footprint": [f["ratio"] for f in mem["fragmentation"]]}, "ratio",
                     ref_line=1.0)
            md.append("![footprint](bench/%s)\n" % png)

    pre = load(results, "preload.json")
    if pre:
        md.append("## Whole processes under LD_PRELOAD (bench/preload_peers.sh)\n")
        md.append("| workload/peer | CPU ns per op | ratio to mimalloc | wall ns | wall ratio |"
                  "\n|---|---|---|---|---|")
        for k in sorted(pre):
            v = pre[k]
            md.append("| %s | %.2f | %.3f | %.2f | %.3f |" % (
                k, v["cpu_ns"], v["cpu_ratio_to_mimalloc"], v["wall_ns"],
                v["wall_ratio_to_mimalloc"]))
        md.append("")

    fwd = load(results, "ctxfwd.json")
    if fwd:
        md.append("## ctxfwd and dpdk-testpmd (bench/ctxfwd_fwd.sh)\n")
        md.append("Workload: %s; %s runs of %s s each, alternating.\n" % (
            fwd.get("workload"), fwd.get("reps"), fwd.get("seconds_per_run")))
        md.append("| run | median pps | runs |\n|---|---|---|")
        names = [k for k in fwd if isinstance(fwd[k], dict) and "median_pps" in fwd[k]]
        for k in names:
            md.append("| %s | %d | %s |" % (k, fwd[k]["median_pps"],
                                            ", ".join(str(x) for x in fwd[k]["runs"])))
        md.append("")
        png = "ctxfwd.png"
        bar_plot(os.path.join(plots, png), "packets per second (median)", names,
                 {"pps": [fwd[k]["median_pps"] for k in names]}, "pps")
        md.append("![ctxfwd](bench/%s)\n" % png)
    tp = load(results, "testpmd.json")
    if tp:
        md.append("## dpdk-testpmd io forwarding on the ctxalloc mempool driver "
                  "(bench/testpmd_bench.sh)\n")
        md.append("| mbuf cache | ctxalloc Mpps | ring_mp_mc Mpps | ratio | paired ratio "
                  "median |\n|---|---|---|---|---|")
        for k in ("mbcache_default", "mbcache_0"):
            if k in tp:
                v = tp[k]
                md.append("| %s | %.2f | %.2f | %.3f | %.3f |" % (
                    k, v["ctxalloc_mpps"], v["ring_mp_mc_mpps"], v["ratio"],
                    v["paired_ratio_median"]))
        md.append("")

    fs = load(results, "flow_scale.json")
    if fs and fs["results"]:
        md.append("## A million flows (bench/flow_scale_bench.cc)\n")
        md.append(
            "F concurrent flows of a seeded mix (80%% short: a 48 B key, a 96 B state, 2-6 "
            "packets each keeping a 40-200 B record; 18%% long: 50-400 packets of 64-512 B "
            "records in a rolling window of 8; 2%% large: as long, 100-1000 packets, plus a "
            "16 KiB block); a flow that ends is replaced at once. Peers in the same process, "
            "alternating over %d rounds, medians (seed %d, %d packets per flow, at least "
            "20000; load average %s at the start, %s at the end). *open+close*: a flow "
            "opened (its context, key and state) and closed, F then F; *packet*: one packet "
            "of a random flow, flow churn included; *held / asked*: the bytes the peer holds "
            "for the live flows over the bytes they asked, after the packets (growing: chunks "
            "and large blocks handed out; malloc: mallinfo2 uordblks + hblkhd; rte_malloc: "
            "heap_allocsz_bytes; rte_mempool: 256 B objects in use x element size, larger "
            "blocks by rte_malloc; pmr: what the resources took from new/delete plus the "
            "resources). *open+close* is the first pass, on fresh memory (first-touch page "
            "faults included: *faults* counts them per flow); *warm* is a second pass at once "
            "on the memory the first left (the growing pool keeps its empty segments, "
            "FlowChunks::set_spare_segments, as an lcore keeps its flow memory).\n" % (
                fs["rounds"], fs["seed"], fs["packets_per_flow"],
                fs.get("load_average_start", "?"), fs.get("load_average_end", "?")))
        counts = sorted({r["flows"] for r in fs["results"]})
        peers = []
        for r in fs["results"]:
            if r["peer"] not in peers:
                peers.append(r["peer"])
        cell = {(r["flows"], r["peer"]): r for r in fs["results"] if "skipped" not in r}
        skipped = ["%s at %d flows (%s)" % (r["peer"], r["flows"], r["skipped"])
                   for r in fs["results"] if "skipped" in r]
        if skipped:
            md.append("Not run: %s.\n" % "; ".join(skipped))
        md.append("| flows | peer | open+close ns | faults / flow | warm open+close ns | "
                  "packet ns | faults / packet | held / asked | held MiB |\n"
                  "|---|---|---|---|---|---|---|---|---|")
        opt = lambda r, k, f: f % r[k] if k in r else "-"
        for n in counts:
            for p in peers:
                r = cell.get((n, p))
                if r:
                    md.append("| %d | %s | %.1f | %s | %s | %.1f | %s | %.2fx | %.1f |" % (
                        n, p, r["open_close_ns"], opt(r, "open_close_faults", "%.3f"),
                        opt(r, "open_close_warm_ns", "%.1f"), r["packet_ns"],
                        opt(r, "packet_faults", "%.3f"), r["memory_ratio"],
                        r["held_bytes"] / 1048576.0))
        md.append("")
        gr = cell.get((counts[-1], "growing"))
        if gr and "held_usable_bytes" in gr:
            rest = (gr["held_bytes"] - gr["held_usable_bytes"] - gr["held_header_bytes"] -
                    gr["held_context_bytes"])
            kinds = ", ".join(
                "%s %d flows %.0f B held / %.0f B asked (%.2fx)" % (
                    k, gr[k + "_flows"], gr[k + "_held_bytes"] / max(gr[k + "_flows"], 1),
                    gr[k + "_asked_bytes"] / max(gr[k + "_flows"], 1),
                    gr[k + "_held_bytes"] / max(gr[k + "_asked_bytes"], 1))
                for k in ("short", "long", "large"))
            md.append(
                "Where the growing peer's held bytes go at %d flows (the last round): %.1f MiB "
                "held for %.1f MiB asked; usable bytes of live blocks %.1f MiB (class rounding: "
                "%.1f MiB over the asked), block headers %.1f MiB, contexts (chunk header + "
                "object) %.1f MiB, the rest -- free blocks and chunk tails not used -- %.1f "
                "MiB. Per flow kind: %s.\n" % (
                    counts[-1], gr["held_bytes"] / 1048576.0, gr["asked_bytes"] / 1048576.0,
                    gr["held_usable_bytes"] / 1048576.0,
                    (gr["held_usable_bytes"] - gr["asked_bytes"]) / 1048576.0,
                    gr["held_header_bytes"] / 1048576.0, gr["held_context_bytes"] / 1048576.0,
                    rest / 1048576.0, kinds))
        labels = ["%d flows" % n for n in counts]
        for key, title, png, ref in (
                ("open_close_ns", "flow open + close, ns (lower is better)",
                 "flow-scale-open-close.png", None),
                ("packet_ns", "one packet, ns (lower is better)", "flow-scale-packet.png", None),
                ("memory_ratio", "bytes held / bytes asked (goal for growing: 1.3)",
                 "flow-scale-memory.png", 1.3)):
            series = {p: [get(cell, (n, p), key) if (n, p) in cell else None for n in counts]
                      for p in peers}
            bar_plot(os.path.join(plots, png), title, labels, series, key, ref_line=ref,
                     log=key != "memory_ratio")
            md.append("![flow scale %s](bench/%s)\n" % (key, png))

    mb = load(results, "mimalloc_bench.json")
    if mb:
        peers = list(next(iter(mb["programs"].values()))["peers"])
        md.append("## mimalloc-bench under LD_PRELOAD (bench/mimalloc_bench.py)\n")
        md.append(
            "The programs of the public mimalloc-bench suite (%s), built from its sources with "
            "cmake, each run with the arguments of the suite's bench.sh (procs = %d) under every "
            "peer by LD_PRELOAD (glibc: none; each library checked to be the one serving "
            "malloc first); %d round(s) (%s mode), each running every program under every peer "
            "with a different peer first; medians. *Time* is elapsed seconds, or for larson, "
            "rptest, xmalloc-test and glibc-thread the suite's relative time from the "
            "program's own throughput; *RSS* is GNU time's peak resident set. CPU %s; load "
            "average %s at the start, %s at the end; %.0f s. Cells: median (ratio to "
            "mimalloc's; lower is better).\n" % (
                mb.get("source"), mb["procs"], mb["rounds"], mb["mode"],
                mb.get("cpu_model", "?"), mb["load_average_start"], mb["load_average_end"],
                mb["seconds"]))
        for what, key, fmt in (("time (s)", "median_time", "%.3f"),
                               ("peak RSS (MiB)", "median_rss_kib", "%.1f")):
            md.append("| program | " + " | ".join("%s %s" % (p, what) for p in peers) + " |")
            md.append("|---|" + "---|" * len(peers))
            series = {p: [] for p in peers if p != "mimalloc"}
            labels = []
            for name, e in mb["programs"].items():
                mi = e["peers"]["mimalloc"][key]
                scale = 1024.0 if key == "median_rss_kib" else 1.0
                cells = []
                for p in peers:
                    v = e["peers"][p][key]
                    cells.append((fmt % (v / scale)) + ("" if p == "mimalloc" else
                                                        " (%.2fx)" % (v / mi if mi else 0)))
                    if p != "mimalloc":
                        series[p].append(v / mi if mi else None)
                labels.append(name)
                md.append("| %s | %s |" % (name, " | ".join(cells)))
            gm = ["geometric mean"] + [
                "-" if p == "mimalloc" else "%.2fx" % statistics.geometric_mean(
                    [x for x in series[p] if x]) for p in peers]
            md.append("| %s |" % " | ".join(gm))
            md.append("")
            png = "mimalloc-bench-%s.png" % ("time" if key == "median_time" else "rss")
            bar_plot(os.path.join(plots, png), "mimalloc-bench: %s / mimalloc's (lower is "
                     "better)" % what.split(" (")[0], labels, series, "ratio", ref_line=1.0,
                     log=True)
            md.append("![mimalloc-bench %s](bench/%s)\n" % (what, png))

    ng = load(results, "numa_guest.json")
    if ng:
        g, a, c = ng["guest"], ng["access"], ng["ctxfwd"]
        md.append("## Two NUMA nodes in an emulated guest (bench/numa_guest.sh)\n")
        md.append("A QEMU guest with 2 nodes x 1 vCPU (%s, accel %s, kernel %s; "
                  "scripts/numa_guest.sh). **Software emulation: these times are what the "
                  "guest reports, not hardware figures** -- TCG emulates every load alike, so "
                  "local and remote memory cost the same in it. The placement figures are "
                  "exact: the guest kernel's own page-by-page answer.\n" % (
                      g["qemu"], g["accel"], g["kernel"]))
        md.append("From node 0's CPU, a %d MiB buffer bound to each node (MemoryMapSource, "
                  "MPOL_BIND, populated); %d alternating rounds, medians:\n" % (
                      a["buffer_mib"], a["rounds"]))
        md.append("| buffer | pages on node 0 | pages on node 1 | dependent load ns | "
                  "sequential read GB/s | numastat local_node / other_node |\n"
                  "|---|---|---|---|---|---|")
        for k in ("local", "remote"):
            if k not in a:
                continue
            v = a[k]
            st = a.get("numastat_delta", {}).get("node%d" % v["node"], {})
            md.append("| %s (node %d) | %d | %d | %.1f | %.2f | %s / %s |" % (
                k, v["node"], v["pages_on_node0"], v["pages_on_node1"], v["chase_ns_median"],
                v["read_gbs_median"], st.get("local_node", "-"), st.get("other_node", "-")))
        if "remote_over_local_chase" in a:
            md.append("\nRemote / local dependent-load time: %.2f; local / remote read "
                      "bandwidth: %.2f (about 1.0 under emulation; on hardware remote memory is "
                      "slower, by an amount this guest cannot show).\n" % (a["remote_over_local_chase"],
                                             a["local_over_remote_read"]))
        md.append("ctxfwd on config/two-socket.ini, a worker lcore on each node, %s packets "
                  "received (%.0f pps in the guest); each heap's pages by node "
                  "(ctxalloc::dpdk::lcore_placement):\n" % (c["rx_packets"], c["rx_pps"] or 0))
        md.append("| lcore | socket | heap pages | on its node | on the other node | flows |\n"
                  "|---|---|---|---|---|---|")
        for l in c["lcores"]:
            md.append("| %s | %s | %s | %s | %s | %s |" % (
                l["lcore"], l["socket"], l["heap_pages"], l["heap_local_pages"],
                l["heap_remote_pages"], l["flows_created"]))
        md.append("")

    with open(out, "w") as f:
        f.write("\n".join(md) + "\n")
    missed = [r for r in goals.rows if r[4] is False]
    unprofiled = sorted({r[0] for r in missed} - set(profiles))
    if unprofiled:
        print("report: no profile in bench/profiles.md for the misses of issue(s) %s" %
              ", ".join(map(str, unprofiled)))
    print("report: %s (%d goals: %d met, %d missed, %d not measured)" % (
        out, len(goals.rows), sum(1 for r in goals.rows if r[4]), len(missed),
        sum(1 for r in goals.rows if r[4] is None)))


if __name__ == "__main__":
    main()
