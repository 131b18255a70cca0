#!/usr/bin/python3
"""The source tree's layers: every file of common/ and proxy/ sits in one layer folder, and every
include points to its own layer or one below it, never up. The unit tests mirror the sources:
tests/unit/<layer>/test_X.cpp tests <layer>/X.

LAYERS below is the order, bottom first; a new folder is added here with the one line that says
what belongs in it. common/ is everything that knows nothing of the proxy (a library another XMPP
program could use); proxy/ is the program.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import re
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LAYERS = [
    ("common/base", "buffers, randomness, UTF-8, the log, the event loop"),
    ("common/net", "socket addresses and the PROXY protocol header"),
    ("common/xml", "the stanza element tree and its serializer"),
    ("common/xmpp", "JIDs, stream and stanza errors, the XML stream parser"),
    ("common/tls", "TLS sessions and contexts, certificate identity, ciphers, key files"),
    ("common/config", "the config structure, its table of keys, loading and printing"),
    ("common/dns", "DNS lookups through udns on the event loop"),
    ("proxy/ops", "counters, process and loop figures, the admin HTTP endpoint"),
    ("proxy/net", "accepting connections: access rules, shapers, rates, the PROXY stage, TCP probes"),
    ("proxy/resolve", "finding a remote server (SRV, addresses, overrides) and the DNS responder"),
    ("proxy/stream", "one XML stream over TCP with TLS, its deadlines, queues and backpressure"),
    ("proxy/xmpp", "what every stream machine shares: stanza helpers, dialback keys, policy, context"),
    ("proxy/features", "one file pair per XMPP feature, both roles: STARTTLS, EXTERNAL, dialback, bidi, admission"),
    ("proxy/s2s", "the two federation stream machines: inbound and outbound"),
    ("proxy/routing", "links per remote domain, retries with backoff, bounces"),
    ("proxy/local", "the link to the local server: its stream machines, TLS and reconnects"),
    ("proxy/app", "the process: command line, config checks and reload, TLS set-up, /metrics text, the server"),
]

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"((?:common|proxy)/[^"]+)"', re.M)
SOURCE = re.compile(r"\.(h|cpp)$")


def layer_of(path):
    """The layer folder a repository path is in, or None."""
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) == 3 else None


def check_tree(root, layers=LAYERS):
    """Every problem with the tree under root, one line each (empty when the layering holds)."""
    rank = {name: i for i, (name, _) in enumerate(layers)}
    problems = []
    sources = []
    for top in ("common", "proxy"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if not SOURCE.search(name):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                if layer_of(path) not in rank:
                    problems.append(f"{path}: not in a layer folder (LAYERS in tests/cli/test_layers.py names them)")
                    continue
                sources.append(path)
    for path in sorted(sources):
        own = layer_of(path)
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        for m in INCLUDE.finditer(text):
            target = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            if not os.path.isfile(os.path.join(root, target)):
                problems.append(f"{path}:{line}: includes {target}, which does not exist")
                continue
            theirs = layer_of(target)
            if theirs not in rank:
                problems.append(f"{path}:{line}: includes {target}, outside every layer")
            elif rank[theirs] > rank[own]:
                problems.append(f"{path}:{line}: includes {target}: {own} is below {theirs}, an include must point down")
    unit = os.path.join(root, "tests", "unit")
    for dirpath, _, files in os.walk(unit):
        for name in files:
            if not (name.startswith("test_") and name.endswith(".cpp")):
                continue
            path = os.path.relpath(os.path.join(dirpath, name), root)
            folder = os.path.dirname(os.path.relpath(path, "tests/unit"))
            if folder == "support":
                continue
            stem = name[len("test_"):-len(".cpp")]
            if not any(os.path.isfile(os.path.join(root, folder, stem + ext)) for ext in (".h", ".cpp")):
                problems.append(f"{path}: tests {folder}/{stem}, which does not exist (unit tests mirror the sources)")
    return problems


class Layers(unittest.TestCase):
    def test_the_tree_holds_its_layers(self):
        problems = check_tree(ROOT)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_every_layer_folder_exists_and_holds_sources(self):
        for name, _ in LAYERS:
            with self.subTest(layer=name):
                folder = os.path.join(ROOT, name)
                self.assertTrue(os.path.isdir(folder), f"{name} is listed in LAYERS but is not a folder")
                self.assertTrue(any(SOURCE.search(f) for f in os.listdir(folder)), f"{name} holds no source")


class CheckerCatches(unittest.TestCase):
    """The checker itself, on a small tree made here: each kind of breach is reported."""

    def tree(self, files):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        for path, text in files.items():
            full = os.path.join(d.name, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        return d.name

    LOW_HIGH = [("common/low", ""), ("proxy/high", "")]

    def test_an_include_pointing_up_is_reported(self):
        root = self.tree({"common/low/a.h": '#include "proxy/high/b.h"\n', "proxy/high/b.h": ""})
        self.assertEqual(check_tree(root, self.LOW_HIGH),
                         ["common/low/a.h:1: includes proxy/high/b.h: common/low is below proxy/high, an include must point down"])

    def test_an_include_pointing_down_or_across_is_fine(self):
        root = self.tree({"proxy/high/b.cpp": '#include "proxy/high/b.h"\n#include "common/low/a.h"\n',
                          "proxy/high/b.h": "", "common/low/a.h": ""})
        self.assertEqual(check_tree(root, self.LOW_HIGH), [])

    def test_a_file_outside_the_layers_and_a_missing_include_are_reported(self):
        root = self.tree({"proxy/loose.cpp": "", "proxy/other/c.h": "",
                          "proxy/high/b.cpp": '\n  #include "common/low/gone.h"\n'})
        self.assertEqual(sorted(check_tree(root, self.LOW_HIGH)), [
            "proxy/high/b.cpp:2: includes common/low/gone.h, which does not exist",
            "proxy/loose.cpp: not in a layer folder (LAYERS in tests/cli/test_layers.py names them)",
            "proxy/other/c.h: not in a layer folder (LAYERS in tests/cli/test_layers.py names them)",
        ])

    def test_a_unit_test_that_mirrors_nothing_is_reported(self):
        root = self.tree({"proxy/high/b.cpp": "", "tests/unit/proxy/high/test_b.cpp": "",
                          "tests/unit/proxy/high/test_gone.cpp": "", "tests/unit/support/test_support.cpp": ""})
        self.assertEqual(check_tree(root, self.LOW_HIGH), [
            "tests/unit/proxy/high/test_gone.cpp: tests proxy/high/gone, which does not exist (unit tests mirror the sources)"])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
