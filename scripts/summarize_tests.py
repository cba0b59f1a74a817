#!/usr/bin/env python3
"""Sums up meson test runs from their testlog.json files.

Usage: summarize_tests.py LABEL=PATH/testlog.json [...]

GoogleTest binaries are counted case by case, from the gtest output meson keeps in
testlog.json; other tests count as one case each. Every skipped case is listed by name,
so a binary whose cases all skip never reads as a pass. The last line is
"N passed, N failed, N skipped"; the exit status is 1 when anything failed.
"""
import json
import re
import sys

CASE = re.compile(r"^\[\s*(RUN|OK|FAILED|SKIPPED)\s*\] ([\w/.<>-]+)(?: \(\d+ ms\))?\s*$")


def gtest_cases(stdout):
    """{case: 'pass'|'fail'|'skip'} from gtest output; a case that started but never
    finished (a crash) is a failure."""
    cases = {}
    for line in stdout.splitlines():
        m = CASE.match(line)
        if not m:
            continue
        what, name = m.groups()
        if what == "RUN":
            cases.setdefault(name, "fail")
        elif what == "OK":
            cases[name] = "pass"
        elif what == "SKIPPED":
            cases[name] = "skip"
        elif what == "FAILED" and name in cases:
            cases[name] = "fail"
    return cases


def main(args):
    passed, failed, skipped = [], [], []
    for arg in args:
        label, _, path = arg.partition("=")
        try:
            with open(path, encoding="utf-8") as f:
                entries = [json.loads(line) for line in f if line.strip()]
        except OSError as e:
            failed.append(f"{label}: no test log ({e.strerror})")
            continue
        for t in entries:
            name = f"{label}: {t['name']}"
            result = t["result"]
            cases = gtest_cases(t.get("stdout") or "")
            if cases:
                for case, verdict in sorted(cases.items()):
                    {"pass": passed, "fail": failed, "skip": skipped}[verdict].append(
                        f"{name} :: {case}")
                # The binary failed (timeout, crash after the last case, leak report)
                # although every case it printed passed.
                if result not in ("OK", "SKIP") and all(v != "fail" for v in cases.values()):
                    failed.append(f"{name} ({result})")
            elif result == "OK":
                passed.append(name)
            elif result == "SKIP":
                skipped.append(name)
            else:
                failed.append(f"{name} ({result})")
    for s in skipped:
        print(f"skipped: {s}")
    for s in failed:
        print(f"FAILED: {s}")
    print(f"{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
