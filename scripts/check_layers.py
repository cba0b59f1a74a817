#!/usr/bin/env python3
"""Checks the layer rule of docs/design.md on the #include lines of the tree.

Order, lowest first: core < sources < allocators < switchable < {adaptors, replace}
(src/ctxalloc/<layer>/; adaptors and replace side by side, neither using the other),
then the plugins (plugins/), then the apps (apps/). A file may
include headers of its own layer and of lower ones, never of a higher one, and never a
header in another layer's detail/ folder. Besides:

- src/ includes no DPDK header (<rte_*.h>) and nothing of plugins/ or apps/;
- plugins use only the public (non-detail) headers of src/, and their own;
- apps use the public headers of src/ and of the plugins, and headers of apps/;
- tests/unit (built without DPDK) includes nothing of a plugin;
- the umbrella header src/ctxalloc/<layer>.h includes every public header of its layer
  and nothing else of src/, and no file of a layer includes its own umbrella (a cycle);
- src/meson.build installs every src header an installed header includes, and installs
  a detail/ header only when an installed public header needs it.

Usage: check_layers.py [ROOT]   (ROOT defaults to the repository of this script).
Prints one line per violation and exits 1 when there is any, 0 otherwise.
"""

import os
import re
import sys

LAYERS = ["core", "sources", "allocators", "switchable", "adaptors", "replace"]
# adaptors and replace stand side by side on switchable: neither needs the other (the
# process allocator replaces malloc with the heaps, not with the adaptors), so neither
# may include the other.
RANK = {"core": 0, "sources": 1, "allocators": 2, "switchable": 3, "adaptors": 4, "replace": 4}
ORDER = "core < sources < allocators < switchable < {adaptors, replace}"
PLUGIN_RANK = 5
APP_RANK = 6
SOURCE_SUFFIXES = (".h", ".hpp", ".c", ".cc", ".cpp", ".h.in")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
INSTALL_RE = re.compile(r"install_headers\((.*?)\)", re.S)
QUOTED_RE = re.compile(r"'([^']+)'")
SUBDIR_RE = re.compile(r"subdir:\s*'([^']+)'")
COMMENT_RE = re.compile(r"#[^'\n]*$", re.M)


class Target:
    """What an #include names: a kind ('src', 'plugin', 'app', 'dpdk', 'system',
    'unknown'), the layer rank, the component (layer or plugin/app name), detail or not,
    and the repository path when it was resolved."""

    def __init__(self, kind, rank=None, component=None, detail=False, path=None):
        self.kind = kind
        self.rank = rank
        self.component = component
        self.detail = detail
        self.path = path


def source_files(root, top):
    base = os.path.join(root, top)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(SOURCE_SUFFIXES):
                yield os.path.relpath(os.path.join(dirpath, name), root)


def includes(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if m:
                yield number, m.group(1), m.group(2)


def owner_of(rel):
    """The (kind, rank, component) of the file at repository path rel."""
    parts = rel.split("/")
    if parts[0] == "src" and len(parts) > 2 and parts[1] == "ctxalloc":
        if parts[2] in RANK:
            return "src", RANK[parts[2]], parts[2]
        stem = parts[2]
        for suffix in (".h.in", ".h"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        if len(parts) == 3 and stem in RANK:
            return "umbrella", RANK[stem], stem
        return "src", 0, "core"  # config.h.in and other files at src/ctxalloc/
    if parts[0] == "plugins" and len(parts) > 2:
        return "plugin", PLUGIN_RANK, parts[1]
    if parts[0] == "apps" and len(parts) > 2:
        return "app", APP_RANK, parts[1]
    if parts[0] == "tests":
        return "test", None, parts[1] if len(parts) > 2 else ""
    return "other", None, ""


def classify_src(name):
    """An include spelled ctxalloc/... that names a src header, or None."""
    parts = name.split("/")
    if parts[0] != "ctxalloc" or len(parts) < 2:
        return None
    if len(parts) == 2:
        stem = parts[1][:-2] if parts[1].endswith(".h") else parts[1]
        if stem in RANK:
            return Target("src", RANK[stem], stem, path="src/" + name)
        if parts[1] == "config.h":  # generated from src/ctxalloc/config.h.in
            return Target("src", 0, "core", path="src/ctxalloc/config.h.in")
        return None
    if parts[1] in RANK:
        return Target("src", RANK[parts[1]], parts[1], "detail" in parts[2:-1],
                      "src/" + name)
    return None


def plugin_roots(root):
    base = os.path.join(root, "plugins")
    if not os.path.isdir(base):
        return []
    return sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))


def app_roots(root):
    base = os.path.join(root, "apps")
    if not os.path.isdir(base):
        return []
    return sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))


def resolve(root, rel, bracket, name):
    """Classifies the include `name` written in the file at repository path rel."""
    src = classify_src(name)
    if src is not None:
        return src
    if name.startswith("rte_") or name.startswith("dpdk/rte_"):
        return Target("dpdk")
    # A plugin's public headers live in plugins/<p>/include/, its private ones under
    # plugins/<p>/ (spelled "detail/x.h" from the plugin's own files).
    for plugin in plugin_roots(root):
        for base in (f"plugins/{plugin}/include", f"plugins/{plugin}"):
            candidate = os.path.normpath(os.path.join(base, name))
            if bracket == '"' and os.path.isfile(os.path.join(root, candidate)):
                inside = os.path.relpath(candidate, f"plugins/{plugin}")
                return Target("plugin", PLUGIN_RANK, plugin, "/detail/" in "/" + inside,
                              candidate)
    if bracket == "<":
        return Target("system")
    # A relative include: next to the file first, then in an app's folder (the apps
    # share headers: ctxfwd embeds ctxgen's generator).
    here = os.path.dirname(rel)
    candidate = os.path.normpath(os.path.join(here, name))
    if os.path.isfile(os.path.join(root, candidate)):
        kind, rank, component = owner_of(candidate)
        if kind == "umbrella":
            kind = "src"
        detail = "/detail/" in "/" + candidate
        return Target(kind, rank, component, detail, candidate)
    for app in app_roots(root):
        candidate = os.path.normpath(os.path.join("apps", app, name))
        if os.path.isfile(os.path.join(root, candidate)):
            return Target("app", APP_RANK, app, "/detail/" in "/" + name, candidate)
    return Target("unknown")


def check_file(root, rel, problems):
    kind, rank, component = owner_of(rel)
    for number, bracket, name in includes(root, rel):
        close = ">" if bracket == "<" else '"'
        where = f"{rel}:{number}: #include {bracket}{name}{close}"
        t = resolve(root, rel, bracket, name)
        if kind == "test":
            if component == "unit" and t.kind == "plugin":
                problems.append(f"{where}: tests/unit builds without DPDK and includes "
                                f"no plugin header (put the test beside the plugin's)")
            continue
        if t.kind == "system":
            continue
        if t.kind == "dpdk":
            if kind in ("src", "umbrella"):
                problems.append(f"{where}: src/ never includes a DPDK header")
            continue
        if t.kind == "unknown":
            problems.append(f"{where}: not found in the tree (spell src headers "
                            f"\"ctxalloc/<layer>/...\")")
            continue
        if kind in ("src", "umbrella"):
            if t.kind in ("plugin", "app"):
                problems.append(f"{where}: src/ includes nothing of {t.kind}s/ (goes up)")
            elif t.rank > rank:
                problems.append(f"{where}: layer {component} includes the higher layer "
                                f"{t.component} (order: {ORDER})")
            elif t.rank == rank and t.component != component:
                problems.append(f"{where}: layers {component} and {t.component} stand side "
                                f"by side (order: {ORDER}): neither includes the other")
            elif t.detail and t.component != component:
                problems.append(f"{where}: into the detail/ of layer {t.component} from "
                                f"layer {component}")
            elif kind == "src" and t.path == f"src/ctxalloc/{component}.h":
                problems.append(f"{where}: a file of layer {component} includes its own "
                                f"umbrella header (a cycle): include the header itself")
        elif kind == "plugin":
            if t.kind == "app":
                problems.append(f"{where}: a plugin includes nothing of apps/ (goes up)")
            elif t.kind == "src" and t.detail:
                problems.append(f"{where}: a plugin uses only public src headers, not "
                                f"detail/ of layer {t.component}")
            elif t.kind == "plugin" and t.component != component and t.detail:
                problems.append(f"{where}: into the detail/ of plugin {t.component}")
        elif kind == "app":
            if t.detail and t.kind == "src":
                problems.append(f"{where}: an app uses only public src headers, not "
                                f"detail/ of layer {t.component}")
            elif t.detail and t.kind == "plugin":
                problems.append(f"{where}: an app uses only a plugin's public headers, not "
                                f"its detail/")


def installed_headers(root):
    """The src headers that the meson.build files under src/ install, as ctxalloc/...
    paths: install_headers('ctxalloc/x/b.h', preserve_path: true) in src/meson.build, or
    install_headers('b.h', subdir: 'ctxalloc/x') in a folder's meson.build."""
    base = os.path.join(root, "src")
    if not os.path.isdir(base):
        return None
    headers = set()
    for dirpath, dirnames, filenames in os.walk(base):
        if "meson.build" not in filenames:
            continue
        with open(os.path.join(dirpath, "meson.build"), encoding="utf-8") as f:
            text = COMMENT_RE.sub("", f.read())
        here = os.path.relpath(dirpath, base)
        for block in INSTALL_RE.findall(text):
            subdir = SUBDIR_RE.search(block)
            for item in QUOTED_RE.findall(block):
                if not item.endswith(".h"):
                    continue
                if subdir:
                    headers.add(subdir.group(1) + "/" + os.path.basename(item))
                else:
                    headers.add(os.path.normpath(os.path.join(here, item)))
    return headers


def is_forwarding(root, header):
    """A header kept at an old installed path that only includes its new one."""
    with open(os.path.join(root, "src", header), encoding="utf-8") as f:
        return f.readline().startswith("// Forwarding header")


def check_umbrellas(root, problems):
    installed = installed_headers(root) or set()
    for layer in LAYERS:
        folder = os.path.join(root, "src", "ctxalloc", layer)
        if not os.path.isdir(folder):
            continue
        umbrella = f"src/ctxalloc/{layer}.h"
        if not os.path.isfile(os.path.join(root, umbrella)):
            problems.append(f"{umbrella}: missing (the umbrella header of layer {layer})")
            continue
        # The layer's public API: its installed headers, forwarding ones left out.
        public = sorted(h for h in installed
                        if h.startswith(f"ctxalloc/{layer}/") and "/detail/" not in h and
                        os.path.isfile(os.path.join(root, "src", h)) and
                        not is_forwarding(root, h))
        named = set()
        for number, bracket, name in includes(root, umbrella):
            t = classify_src(name)
            if t is None:
                continue
            named.add(name)
            if t.component != layer or t.detail:
                problems.append(f"{umbrella}:{number}: an umbrella includes only its own "
                                f"layer's public headers, not {name}")
        for header in public:
            if header not in named:
                problems.append(f"{umbrella}: does not include {header}, which is installed")


def check_install(root, problems):
    installed = installed_headers(root)
    if installed is None:
        return
    needed_detail = set()
    closure_from = sorted(h for h in installed if "/detail/" not in h)
    seen = set()
    stack = list(closure_from)
    while stack:
        header = stack.pop()
        if header in seen:
            continue
        seen.add(header)
        path = os.path.join(root, "src", header)
        if not os.path.isfile(path):
            problems.append(f"src/meson.build: installs {header}, which does not exist")
            continue
        for number, bracket, name in includes(root, "src/" + header):
            t = classify_src(name)
            if t is None or name == "ctxalloc/config.h":
                continue
            if name not in installed:
                problems.append(f"src/{header}:{number}: installed, but includes {name}, "
                                f"which src/meson.build does not install")
                continue
            if t.detail:
                needed_detail.add(name)
            stack.append(name)
    for header in sorted(installed):
        if "/detail/" in header and header not in needed_detail:
            problems.append(f"src/meson.build: installs {header} as public, but no "
                            f"installed public header includes it")


def check(root):
    problems = []
    for top in ("src", "plugins", "apps", "tests/unit"):
        if os.path.isdir(os.path.join(root, top)):
            for rel in source_files(root, top):
                check_file(root, rel, problems)
    check_umbrellas(root, problems)
    check_install(root, problems)
    return problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layer rule violation(s) (see docs/CONTRIBUTING.md, Layers)")
        return 1
    print("layer rule holds for src/, plugins/, apps/ and tests/unit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
