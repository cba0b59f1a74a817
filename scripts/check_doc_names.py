#!/usr/bin/env python3
"""Checks that every `backticked` file path and identifier in a doc exists in the tree.

Usage: scripts/check_doc_names.py REPO_ROOT docs/design.md  (exit 1 and a list when one is
missing; paths are looked up from the root and from each layer folder, names with git grep
-w in the code folders).
"""
import os, re, subprocess, sys
root, doc = sys.argv[1], sys.argv[2]
text = open(os.path.join(root, doc)).read()
# fenced blocks are not names
text = re.sub(r"```.*?```", "", text, flags=re.S)
roots = ["", "src/ctxalloc/", "src/", "plugins/dpdk/", "apps/", "apps/ctxfwd/", "apps/ctxgen/"]
layer_dirs = [d for d in ("src/ctxalloc/core", "src/ctxalloc/sources", "src/ctxalloc/allocators",
              "src/ctxalloc/switchable", "src/ctxalloc/adaptors", "src/ctxalloc/replace",
              "plugins/dpdk", "plugins/dpdk/include", "apps/ctxfwd", "apps/ctxgen", "apps/demo")]
code_dirs = ["src", "plugins", "apps", "config", "scripts", "bench", "meson_options.txt", "meson.build"]
files = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True, text=True).stdout.split()
fileset = set(files)
def path_exists(p):
    p = p.rstrip("/")
    for r in roots + [d + "/" for d in layer_dirs]:
        q = r + p
        if q in fileset or any(f.startswith(q + "/") for f in files):
            return True
    # glob forms: name.* or name.h + .cc
    if p.endswith(".*"):
        stem = p[:-2]
        return any(path_exists(stem + e) for e in (".h", ".cc"))
    # a built library/command name
    return False
ident_cache = {}
def ident_exists(w):
    if w in ident_cache: return ident_cache[w]
    r = subprocess.run(["git", "-C", root, "grep", "-qw", "-F", w, "--"] + code_dirs)
    ident_cache[w] = r.returncode == 0
    return ident_cache[w]
bad = []
for span in re.findall(r"`([^`]+)`", text):
    # expand {a, b} lists
    m = re.match(r"^(.*/)\{([^}]*)\}(.*)$", span)
    items = [m.group(1) + x.strip() + m.group(3) for x in m.group(2).split(",")] if m else [span]
    for it in items:
        it = it.strip()
        if it.startswith("-") or it.startswith(".") or "<" in it:
            continue
        if "*" in it and "/" in it and not it.endswith(".*"):
            import fnmatch
            if not any(fnmatch.fnmatch(f, "*" + it) for f in files):
                bad.append("path " + it)
            continue
        if re.search(r"\.(h|cc|py|sh|build|md|ini|map|in|txt)(\.\*)?$|/$|\.\*$", it) or "/" in it and " " not in it and not it.startswith("/"):
            if it.startswith("/") or it.startswith("-"):
                continue
            if not path_exists(it):
                bad.append("path " + it)
            continue
        # identifiers: take every C++-ish name token
        for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*", it):
            for part in tok.split("::"):
                if len(part) < 3 or part in ("detail", "ctxalloc", "dpdk", "std", "pmr"):
                    continue
                if not ident_exists(part):
                    bad.append("name " + part + "   (in `" + span + "`)")
for b in sorted(set(bad)):
    print(b)
print(len(set(bad)), "missing", file=sys.stderr)
sys.exit(1 if bad else 0)
