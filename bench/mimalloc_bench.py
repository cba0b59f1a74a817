#!/usr/bin/python3
"""The mimalloc-bench suite (github.com/daanx/mimalloc-bench) under every malloc peer.

  mimalloc_bench.py [--quick | --smoke] [--rounds N] [--only P,P] [--out DIR] [SRC]

SRC is a checkout of mimalloc-bench (default: $MIMALLOC_BENCH); it is only read: its
bench/ programs are built with cmake into $BUILD/mimalloc-bench (BUILD: build/release).
Every round runs every program once under each peer -- glibc, ctxalloc
(libctxalloc_preload.so of BUILD), mimalloc, jemalloc, tcmalloc (Debian's shared objects),
by LD_PRELOAD -- starting with a different peer each round and program, so that the peers
share the machine's load alike. Per run: the time (elapsed seconds; for larson, rptest,
xmalloc-test and glibc-thread the program's own relative time, as the suite's bench.sh
computes it), peak RSS (GNU time's %M), user and system seconds. A run that exits
non-zero fails the whole command. Before the programs, each peer's library is checked to
be the one serving malloc (bench/preload_driver, which reports it).

Modes: the default runs each program with the arguments of the suite's bench.sh (procs =
the CPU count), ROUNDS_MB (3) rounds; --quick one round of the same; --smoke three
programs with small arguments, one round, in a few seconds (bench/all.sh --smoke:
checks that the runner works). Results: OUT/mimalloc_bench.json (OUT: $BENCH_RESULTS
or bench/results), read by
bench/report.py.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = ["glibc", "ctxalloc", "mimalloc", "jemalloc", "tcmalloc"]
EXPECT = {"glibc": "libc.so.6", "ctxalloc": "libctxalloc_preload.so",
          "mimalloc": "libmimalloc.so.2", "jemalloc": "libjemalloc.so.2",
          "tcmalloc": "libtcmalloc_minimal.so.4"}


def peer_libs(build):
    return {"glibc": None,
            "ctxalloc": os.path.realpath(os.path.join(
                build, "src/ctxalloc/replace/libctxalloc_preload.so")),
            "mimalloc": LIBDIR + "/libmimalloc.so.2",
            "jemalloc": LIBDIR + "/libjemalloc.so.2",
            "tcmalloc": LIBDIR + "/libtcmalloc_minimal.so.4"}


def programs(src, procs, smoke):
    """name -> (cmake target, argv after the binary, stdin file or None, metric).

    The arguments are bench.sh's (run_test); metric "elapsed" or the name of a parser
    of the program's output."""
    b = os.path.join(src, "bench")
    p = str(procs)
    if smoke:  # a few seconds in all: checks the build, the peers and the runner
        return {
            "cfrac": ("cfrac", ["175451865205073170563711"], None, "elapsed"),
            "mstressN": ("mstress", [p, "5", "2"], None, "elapsed"),
            "cache-scratch1": ("cache-scratch", ["1", "100", "1", "200000", p], None,
                               "elapsed"),
        }
    return {
        "cfrac": ("cfrac", ["17545186520507317056371138836327483792789528"], None, "elapsed"),
        "espresso": ("espresso", [os.path.join(b, "espresso/largest.espresso")], None,
                     "elapsed"),
        "barnes": ("barnes", [], os.path.join(b, "barnes/input"), "elapsed"),
        "larsonN": ("larson", ["5", "8", "1000", "5000", "100", "4141", p], None, "larson"),
        "larsonN-sized": ("larson-sized", ["5", "8", "1000", "5000", "100", "4141", p], None,
                          "larson"),
        "mstressN": ("mstress", [p, "50", "25"], None, "elapsed"),
        "rptestN": ("rptest", [p, "0", "1", "2", "500", "1000", "100", "8", "16000"], None,
                    "rptest"),
        "alloc-test1": ("alloc-test", ["1"], None, "elapsed"),
        "alloc-testN": ("alloc-test", [str(min(procs, 16))], None, "elapsed"),
        "xmalloc-testN": ("xmalloc-test", ["-w", p, "-t", "5", "-s", "64"], None, "xmalloc"),
        "cache-scratch1": ("cache-scratch", ["1", "1000", "1", "2000000", p], None, "elapsed"),
        "cache-scratchN": ("cache-scratch", [p, "1000", "1", "2000000", p], None, "elapsed"),
        "cache-thrash1": ("cache-thrash", ["1", "1000", "1", "2000000", p], None, "elapsed"),
        "cache-thrashN": ("cache-thrash", [p, "1000", "1", "2000000", p], None, "elapsed"),
        "glibc-simple": ("glibc-simple", [], None, "elapsed"),
        "glibc-thread": ("glibc-thread", [p], None, "glibc_thread"),
        "malloc-large": ("malloc-large", [], None, "elapsed"),
        "mleak10": ("mleak", ["5"], None, "elapsed"),
        "mleak100": ("mleak", ["50"], None, "elapsed"),
    }


# The suite's relative times (bench.sh): what the program reports instead of its elapsed
# time, because it runs for a fixed time or a fixed number of operations per thread.
def relative_time(metric, out):
    if metric == "larson":
        m = re.search(r"relative time: ([0-9.]+)", out)
        return float(m.group(1)) if m else None
    if metric == "xmalloc":
        m = re.search(r"rtime: ([0-9.]+)", out)
        return float(m.group(1)) if m else None
    if metric == "rptest":
        m = re.search(r"\.\.\.([0-9]+) memory ops", out)
        return 2000000.0 / int(m.group(1)) if m and int(m.group(1)) > 0 else None
    if metric == "glibc_thread":
        m = re.match(r"\s*([0-9.]+)", out)
        return 1e9 / float(m.group(1)) if m and float(m.group(1)) > 0 else None
    raise ValueError(metric)


def build_suite(src, build_dir, targets):
    bench = os.path.join(src, "bench")
    if not os.path.isfile(os.path.join(bench, "CMakeLists.txt")):
        raise SystemExit("mimalloc_bench: %s is not a mimalloc-bench checkout (no "
                         "bench/CMakeLists.txt)" % src)
    os.makedirs(build_dir, exist_ok=True)
    steps = [["make", "-C", build_dir, "-j2"] + sorted(set(targets))]
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        steps.insert(0, ["cmake", "-S", bench, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"])
    for cmd in steps:  # the suite's own warnings are not ours: shown only on failure
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit("mimalloc_bench: %s failed:\n%s%s" % (" ".join(cmd), p.stdout[-3000:],
                                                                    p.stderr[-3000:]))


def check_peers(build, libs):
    """Each library must be what serves malloc in a process it is preloaded into."""
    driver = os.path.join(build, "bench/preload_driver")
    for peer, lib in libs.items():
        if lib is not None and not os.path.isfile(lib):
            raise SystemExit("mimalloc_bench: %s missing: %s" % (peer, lib))
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if lib:
            env["LD_PRELOAD"] = lib
        out = subprocess.run([driver, "pairs", "1000"], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        if not out or out[-1] != EXPECT[peer]:
            raise SystemExit("mimalloc_bench: under %s, malloc came from %s" %
                             (peer, out[-1] if out else "?"))


def run_once(binary, argv, stdin, lib, cwd, timeout):
    """Runs one program under /usr/bin/time, as the suite's bench.sh does: GNU time forks
    from a small process, so the child's peak RSS is the program's own (a child forked
    from this Python process would start with Python's pages in its peak)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    with open(stdin or os.devnull) as fin, tempfile.TemporaryFile("w+") as fout, \
            tempfile.NamedTemporaryFile("r", dir=cwd) as ftime:
        cmd = ["/usr/bin/time", "-o", ftime.name, "-f", "%M %U %S %x", binary] + argv
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.STDOUT, env=env,
                               cwd=cwd, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = -9
        elapsed = time.monotonic() - t0
        fout.seek(0)
        out = fout.read()
        fields = ftime.read().split()
    usage = {"rss_kib": 0, "user": 0.0, "sys": 0.0}
    if len(fields) >= 3 and rc == 0:
        usage = {"rss_kib": int(fields[-4]), "user": float(fields[-3]),
                 "sys": float(fields[-2])}
    return rc, elapsed, usage, out


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("src", nargs="?", default=os.environ.get("MIMALLOC_BENCH"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS_MB", "3")))
    ap.add_argument("--only", default="", help="comma-separated program names")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--out", default=os.environ.get("BENCH_RESULTS", "bench/results"))
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()
    if not a.src:
        raise SystemExit("mimalloc_bench: give the mimalloc-bench checkout (argument or "
                         "MIMALLOC_BENCH)")
    src = os.path.realpath(a.src)
    build = os.environ.get("BUILD", "build/release")
    build_dir = os.path.join(build, "mimalloc-bench")
    rounds = 1 if (a.quick or a.smoke) else a.rounds
    procs = os.cpu_count() or 1
    progs = programs(src, procs, a.smoke)
    if a.only:
        names = a.only.split(",")
        unknown = [n for n in names if n not in progs]
        if unknown:
            raise SystemExit("mimalloc_bench: unknown program(s) %s; known: %s" %
                             (", ".join(unknown), ", ".join(progs)))
        progs = {n: progs[n] for n in names}
    libs = {p: lib for p, lib in peer_libs(build).items() if p in a.peers.split(",")}
    peers = [p for p in PEERS if p in libs]

    build_suite(src, build_dir, [t for t, _, _, _ in progs.values()])
    check_peers(build, libs)

    results = {name: {p: [] for p in peers} for name in progs}
    load_start = load_average()
    start = time.time()
    work = tempfile.mkdtemp(prefix="ctxalloc-mb.")  # programs may write files in their cwd
    try:
        for r in range(rounds):
            for i, (name, (target, argv, stdin, metric)) in enumerate(progs.items()):
                for k in range(len(peers)):
                    peer = peers[(k + r + i) % len(peers)]
                    binary = os.path.realpath(os.path.join(build_dir, target))
                    rc, elapsed, usage, out = run_once(binary, argv, stdin, libs[peer], work,
                                                       a.timeout)
                    if rc != 0:
                        raise SystemExit("mimalloc_bench: %s under %s failed (exit %d):\n%s" %
                                         (name, peer, rc, out[-2000:]))
                    t = elapsed if metric == "elapsed" else relative_time(metric, out)
                    if t is None:
                        raise SystemExit("mimalloc_bench: %s under %s: no %s figure in its "
                                         "output:\n%s" % (name, peer, metric, out[-2000:]))
                    results[name][peer].append({
                        "time": round(t, 4), "elapsed": round(elapsed, 4),
                        "rss_kib": usage["rss_kib"], "user": usage["user"],
                        "sys": usage["sys"]})
                    print("round %d %-15s %-9s %8.3f s %8d KiB" % (r + 1, name, peer, t,
                                                                      usage["rss_kib"]),
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    doc = {"source": src, "procs": procs, "rounds": rounds, "cpu_model": cpu_model(),
           "mode": "smoke" if a.smoke else ("quick" if a.quick else "full"),
           "load_average_start": load_start, "load_average_end": load_average(),
           "seconds": round(time.time() - start, 1), "programs": {}}
    for name, (target, argv, stdin, metric) in progs.items():
        entry = {"command": " ".join([target] + argv + (["< " + stdin] if stdin else [])),
                 "metric": metric, "peers": {}}
        for p in peers:
            runs = results[name][p]
            entry["peers"][p] = {
                "median_time": statistics.median(x["time"] for x in runs),
                "median_rss_kib": statistics.median(x["rss_kib"] for x in runs),
                "runs": runs}
        doc["programs"][name] = entry
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "mimalloc_bench.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    print("mimalloc_bench: %d programs x %d peers x %d rounds in %.0f s (load %s -> %s): %s"
          % (len(progs), len(peers), rounds, doc["seconds"], load_start, doc["load_average_end"],
             path))
    summary(doc)


def summary(doc):
    """Time and RSS per program relative to mimalloc, and the geometric means."""
    peers = list(next(iter(doc["programs"].values()))["peers"])
    if "mimalloc" not in peers:
        return
    print("%-15s %s" % ("time/mimalloc", " ".join("%9s" % p for p in peers)))
    logs = {p: [] for p in peers}
    for name, e in doc["programs"].items():
        mi = e["peers"]["mimalloc"]["median_time"]
        cells = []
        for p in peers:
            r = e["peers"][p]["median_time"] / mi if mi > 0 else float("nan")
            logs[p].append(r)
            cells.append("%9.3f" % r)
        rss = e["peers"].get("ctxalloc", {}).get("median_rss_kib")
        mrss = e["peers"]["mimalloc"]["median_rss_kib"]
        print("%-15s %s   rss ctxalloc/mimalloc %.2f" % (name, " ".join(cells),
                                                         (rss or 0) / mrss))
    print("%-15s %s" % ("geomean", " ".join("%9.3f" % statistics.geometric_mean(logs[p])
                                             for p in peers)))


if __name__ == "__main__":
    sys.exit(main())
