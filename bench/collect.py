#!/usr/bin/python3
"""Runs the benchmark binaries of a release build and writes their raw figures as JSON.

  collect.py machine  OUT            the machine, CPU, kernel, compiler, library versions
  collect.py gbench   BUILD OUT      every bench/bench_* binary: ROUNDS rounds, each running
                                     every binary once in a shuffled order (the peers of a
                                     suite live in separate binaries, one malloc per
                                     process, so they alternate); per benchmark the ns per
                                     item of every round and their median
  collect.py memory   BUILD OUT      every workload of every bench/callgrind_* driver in
                                     its own process with CTXBENCH_MEMORY=1 (peak resident
                                     growth, ctxalloc's source peak), and the tree suite's
                                     footprint measurement (bench_tree* --fragmentation)

Environment: ROUNDS (5), BENCH_MIN_TIME (0.2 s per benchmark and round), N_MEMORY
(1,000,000 operations per memory run). Used by bench/all.sh, which also runs the scripts
of the suites that are not Google Benchmark binaries.
"""
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import threading
import time

PEER_SUFFIXES = ("_mimalloc", "_jemalloc", "_tcmalloc", "_rte")


def is_program(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def suite_of(binary):
    name = binary[len("bench_"):] if binary.startswith("bench_") else binary
    for s in PEER_SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def run(cmd, env=None, timeout=900):
    """Runs cmd, returns (stdout, stderr, peak RSS of that child in KiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         text=True)
    result = {}

    def drain(name, f):
        result[name] = f.read()

    readers = [threading.Thread(target=drain, args=("out", p.stdout)),
               threading.Thread(target=drain, args=("err", p.stderr))]
    for t in readers:
        t.start()
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    _, status, usage = os.wait4(p.pid, 0)  # the child's own rusage: its peak RSS
    timer.cancel()
    for t in readers:
        t.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode,
                                                  result["err"][-2000:]))
    return result["out"], result["err"], usage.ru_maxrss


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


def machine(out):
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    packages = {}
    for pkg in ["libc6", "libmimalloc2.0", "libjemalloc2", "libgoogle-perftools4",
                "libtcmalloc-minimal4", "dpdk", "libbenchmark1debian", "valgrind"]:
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                           text=True)
        if v.returncode == 0 and v.stdout:
            packages[pkg] = v.stdout
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "os": version(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "compiler": version(["c++", "--version"]),
        "load_average_at_start": os.getloadavg(),
        "packages": packages,
    }
    json.dump(info, open(os.path.join(out, "machine.json"), "w"), indent=1)


def ns_per_item(b):
    if b.get("items_per_second"):
        return 1e9 / b["items_per_second"]
    unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    return b["real_time" if "real_time" in b["name"] else "cpu_time"] * unit


def gbench(build, out):
    rounds = int(os.environ.get("ROUNDS", "5"))
    min_time = os.environ.get("BENCH_MIN_TIME", "0.2")
    bindir = os.path.join(build, "bench")
    binaries = sorted(b for b in os.listdir(bindir)
                      if b.startswith("bench_") and is_program(os.path.join(bindir, b)))
    times = {}  # suite -> name -> {"binary", "runs": []}
    rss = {}  # binary -> [peak RSS KiB per round]
    rng = random.Random(1)
    for r in range(rounds):
        order = binaries[:]
        rng.shuffle(order)
        for b in order:
            print("round %d/%d: %s" % (r + 1, rounds, b), file=sys.stderr, flush=True)
            stdout, _, peak = run([os.path.join(bindir, b), "--benchmark_min_time=" + min_time,
                                   "--benchmark_format=json"])
            rss.setdefault(b, []).append(peak)
            for bench in json.loads(stdout)["benchmarks"]:
                if bench.get("run_type") == "aggregate":
                    continue
                name = bench.get("run_name", bench["name"])
                entry = times.setdefault(suite_of(b), {}).setdefault(
                    name, {"binary": b, "runs": []})
                entry["runs"].append(ns_per_item(bench))
    for suite, names in times.items():
        for e in names.values():
            e["median_ns"] = statistics.median(e["runs"])
        doc = {"suite": suite, "rounds": rounds, "min_time_s": float(min_time),
               "unit": "ns per item (per operation as the benchmark counts it)",
               "benchmarks": names,
               "peak_rss_kib": {b: v for b, v in rss.items() if suite_of(b) == suite}}
        json.dump(doc, open(os.path.join(out, "gbench-%s.json" % suite), "w"), indent=1)


def workloads_of(driver):
    p = subprocess.run([driver], capture_output=True, text=True)
    m = re.search(r"^workloads: (.*)$", p.stderr, re.M)
    return m.group(1).split() if m else []


def memory(build, out):
    n = os.environ.get("N_MEMORY", "1000000")
    bindir = os.path.join(build, "bench")
    env = dict(os.environ, CTXBENCH_MEMORY="1")
    result = {"ops": int(n), "workloads": {}, "fragmentation": []}
    for d in sorted(os.listdir(bindir)):
        if not d.startswith("callgrind_") or not is_program(os.path.join(bindir, d)):
            continue
        driver = os.path.join(bindir, d)
        for w in workloads_of(driver):
            print("memory: %s %s" % (d, w), file=sys.stderr, flush=True)
            stdout, _, _ = run([driver, w, n], env=env)
            line = [l for l in stdout.splitlines() if l.startswith("{")][-1]
            fig = json.loads(line)
            fig["growth_kib"] = fig["peak_rss_kib"] - fig["rss_before_kib"]
            result["workloads"]["%s:%s" % (d[len("callgrind_"):], w)] = fig
    for b, api in [("bench_tree", "tree"), ("bench_tree", "pmr"), ("bench_tree", "malloc"),
                   ("bench_tree_mimalloc", "malloc"), ("bench_tree_jemalloc", "malloc"),
                   ("bench_tree_tcmalloc", "malloc")]:
        path = os.path.join(bindir, b)
        if is_program(path):
            print("fragmentation: %s %s" % (b, api), file=sys.stderr, flush=True)
            stdout, _, _ = run([path, "--fragmentation=" + api])
            result["fragmentation"].append(json.loads(stdout.strip().splitlines()[-1]))
    json.dump(result, open(os.path.join(out, "memory.json"), "w"), indent=1)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    what = sys.argv[1]
    if what == "machine":
        machine(sys.argv[2])
    elif what in ("gbench", "memory") and len(sys.argv) == 4:
        os.makedirs(sys.argv[3], exist_ok=True)
        (gbench if what == "gbench" else memory)(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
