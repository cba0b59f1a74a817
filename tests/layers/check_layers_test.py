#!/usr/bin/env python3
"""Self-test of scripts/check_layers.py: a small tree that keeps the layer rule passes,
and each kind of violation, added to a copy of it, is reported (so the layer test can
fail, on every run, not only when someone breaks the rule)."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
import check_layers  # noqa: E402

# A tree that keeps every rule: one header per layer, umbrellas, a plugin, an app, a unit
# test, and an install list that installs a detail header a public one needs.
GOOD = {
    "src/ctxalloc/core/layout.h": "#pragma once\n#include <cstddef>\n",
    "src/ctxalloc/core.h": '#include "ctxalloc/core/layout.h"\n',
    "src/ctxalloc/sources/detail/index.h": '#include "ctxalloc/core/layout.h"\n',
    "src/ctxalloc/sources/mmap_source.h": '#include "ctxalloc/sources/detail/index.h"\n',
    "src/ctxalloc/sources.h": '#include "ctxalloc/sources/mmap_source.h"\n',
    "src/ctxalloc/allocators/bump.h": '#include "ctxalloc/sources/mmap_source.h"\n',
    "src/ctxalloc/allocators/bump.cc": '#include "ctxalloc/allocators/bump.h"\n',
    "src/ctxalloc/allocators.h": '#include "ctxalloc/allocators/bump.h"\n',
    "src/ctxalloc/switchable/heap.h": ('#include "ctxalloc/allocators/bump.h"\n'
                                       '#include "ctxalloc/core.h"\n'),
    "src/ctxalloc/switchable.h": '#include "ctxalloc/switchable/heap.h"\n',
    "src/ctxalloc/adaptors/pmr.h": '#include "ctxalloc/switchable.h"\n',
    "src/ctxalloc/adaptors/old.h": ('// Forwarding header: moved.\n'
                                    '#include "ctxalloc/allocators/bump.h"\n'),
    "src/ctxalloc/adaptors.h": '#include "ctxalloc/adaptors/pmr.h"\n',
    "src/ctxalloc/replace/front.cc": ('#include "ctxalloc/switchable/heap.h"\n'
                                      '#include "ctxalloc/allocators.h"\n'),
    "src/ctxalloc/replace.h": "#pragma once\n",
    "src/meson.build": ("install_headers(\n  # core (the lowest)\n  'ctxalloc/core/layout.h',\n"
                        "  'ctxalloc/sources/mmap_source.h',\n"
                        "  'ctxalloc/sources/detail/index.h',\n"
                        "  'ctxalloc/allocators/bump.h',\n  'ctxalloc/switchable/heap.h',\n"
                        "  'ctxalloc/adaptors/pmr.h',\n  'ctxalloc/adaptors/old.h',\n"
                        "  'ctxalloc/core.h',\n  'ctxalloc/switchable.h',\n"
                        "  preserve_path: true,\n)\n"),
    "plugins/dpdk/include/ctxalloc/dpdk/lcore.h": '#include "ctxalloc/switchable/heap.h"\n',
    "plugins/dpdk/detail/pool.h": '#include "ctxalloc/dpdk/lcore.h"\n#include <rte_mempool.h>\n',
    "plugins/dpdk/pool.cc": '#include "detail/pool.h"\n#include "ctxalloc/adaptors/pmr.h"\n',
    "apps/gen/writer.h": "#pragma once\n",
    "apps/fwd/app.cc": ('#include "ctxalloc/dpdk/lcore.h"\n#include "writer.h"\n'
                        '#include "ctxalloc/allocators.h"\n#include "local.h"\n'),
    "apps/fwd/local.h": "#pragma once\n",
    "tests/unit/bump_test.cc": ('#include "ctxalloc/sources/detail/index.h"\n'
                                '#include "support/helpers.h"\n'),
}


class CheckLayersTest(unittest.TestCase):

    def tree(self, changes):
        """A copy of GOOD with changes applied (path -> text, or None to delete)."""
        root = tempfile.mkdtemp(prefix="check_layers_")
        self.addCleanup(shutil.rmtree, root)
        files = dict(GOOD)
        for path, text in changes.items():
            if text is None:
                files.pop(path, None)
            else:
                files[path] = text
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        return root

    def problems(self, changes):
        return check_layers.check(self.tree(changes))

    def assert_reported(self, changes, *fragments):
        problems = self.problems(changes)
        self.assertTrue(problems, f"no violation reported for {changes}")
        text = "\n".join(problems)
        for fragment in fragments:
            self.assertIn(fragment, text)

    def test_good_tree_passes(self):
        self.assertEqual(self.problems({}), [])

    def test_upward_include(self):
        self.assert_reported(
            {"src/ctxalloc/allocators/bump.cc": '#include "ctxalloc/switchable/heap.h"\n'},
            "src/ctxalloc/allocators/bump.cc:1", "higher layer switchable")

    def test_upward_include_core_to_sources(self):
        self.assert_reported(
            {"src/ctxalloc/core/layout.h": '#include "ctxalloc/sources/mmap_source.h"\n'},
            "layer core includes the higher layer sources")

    def test_upward_umbrella_include(self):
        self.assert_reported(
            {"src/ctxalloc/sources/mmap_source.h": '#include "ctxalloc/adaptors.h"\n'},
            "layer sources includes the higher layer adaptors")

    def test_side_by_side_layers(self):
        self.assert_reported(
            {"src/ctxalloc/replace/front.cc": '#include "ctxalloc/adaptors/pmr.h"\n'},
            "layers replace and adaptors stand side by side")
        self.assert_reported({"src/ctxalloc/adaptors/pmr.h": '#include "ctxalloc/replace.h"\n'},
                             "layers adaptors and replace stand side by side")

    def test_other_layers_detail(self):
        self.assert_reported(
            {"src/ctxalloc/allocators/bump.cc": '#include "ctxalloc/sources/detail/index.h"\n'},
            "into the detail/ of layer sources from layer allocators")

    def test_own_umbrella_is_a_cycle(self):
        self.assert_reported(
            {"src/ctxalloc/switchable/heap.h": '#include "ctxalloc/switchable.h"\n'},
            "includes its own umbrella")

    def test_src_includes_dpdk(self):
        self.assert_reported({"src/ctxalloc/switchable/heap.h": "#include <rte_lcore.h>\n"},
                             "never includes a DPDK header")

    def test_src_includes_plugin(self):
        self.assert_reported(
            {"src/ctxalloc/replace/front.cc": '#include "ctxalloc/dpdk/lcore.h"\n'},
            "src/ includes nothing of plugins/")

    def test_plugin_uses_src_detail(self):
        self.assert_reported(
            {"plugins/dpdk/pool.cc": '#include "ctxalloc/sources/detail/index.h"\n'},
            "a plugin uses only public src headers")

    def test_app_uses_plugin_detail(self):
        self.assert_reported({"apps/fwd/app.cc": '#include "detail/pool.h"\n'},
                             "only a plugin's public headers")

    def test_app_uses_src_detail(self):
        self.assert_reported({"apps/fwd/app.cc": '#include "ctxalloc/sources/detail/index.h"\n'},
                             "an app uses only public src headers")

    def test_unit_test_includes_plugin(self):
        self.assert_reported(
            {"tests/unit/bump_test.cc": '#include "../../plugins/dpdk/detail/pool.h"\n'},
            "tests/unit builds without DPDK")
        self.assert_reported({"tests/unit/bump_test.cc": '#include "ctxalloc/dpdk/lcore.h"\n'},
                             "tests/unit builds without DPDK")

    def test_unknown_include(self):
        self.assert_reported({"src/ctxalloc/allocators/bump.cc": '#include "bump.hh"\n'},
                             "not found in the tree")

    def test_umbrella_missing_a_header(self):
        self.assert_reported({"src/ctxalloc/sources.h": "#pragma once\n"},
                             "does not include ctxalloc/sources/mmap_source.h")

    def test_umbrella_missing(self):
        self.assert_reported({"src/ctxalloc/allocators.h": None},
                             "src/ctxalloc/allocators.h: missing")

    def test_umbrella_of_another_layer(self):
        self.assert_reported(
            {"src/ctxalloc/sources.h": ('#include "ctxalloc/sources/mmap_source.h"\n'
                                        '#include "ctxalloc/core/layout.h"\n')},
            "an umbrella includes only its own layer's public headers")

    def test_installed_header_includes_uninstalled(self):
        meson = GOOD["src/meson.build"].replace("  'ctxalloc/sources/detail/index.h',\n", "")
        self.assert_reported({"src/meson.build": meson},
                             "includes ctxalloc/sources/detail/index.h, which src/meson.build "
                             "does not install")

    def test_detail_installed_without_need(self):
        changes = {
            "src/ctxalloc/allocators/detail/spare.h": "#pragma once\n",
            "src/meson.build": GOOD["src/meson.build"].replace(
                "  preserve_path", "  'ctxalloc/allocators/detail/spare.h',\n  preserve_path"),
        }
        self.assert_reported(changes, "installs ctxalloc/allocators/detail/spare.h as public")

    def test_subdir_install_form(self):
        changes = {
            "src/ctxalloc/replace/stats.h": "#pragma once\n",
            "src/ctxalloc/replace/meson.build": "install_headers('stats.h', subdir: 'ctxalloc/replace')\n",
        }
        self.assert_reported(changes, "src/ctxalloc/replace.h: does not include "
                             "ctxalloc/replace/stats.h")

    def test_main_exit_codes(self):
        self.assertEqual(check_layers.main(["check_layers.py", self.tree({})]), 0)
        bad = self.tree({"src/ctxalloc/core/layout.h": '#include "ctxalloc/replace.h"\n'})
        self.assertEqual(check_layers.main(["check_layers.py", bad]), 1)


if __name__ == "__main__":
    unittest.main()
