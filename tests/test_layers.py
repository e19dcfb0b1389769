"""The package's layers: a module imports only from its own layer or below, counting imports
inside functions too, and the import graph has no cycle (a cycle means no module of it can be
changed or loaded alone: making a kernel for a user's spec used to import the CLI and the docs).

The layers, lowest first, are the table ``LAYERS``; the README's "How it is built" shows the same
order."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "derive"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        if "kernels" in path.relative_to(PACKAGE).parts[:-1] and path.name != "__init__.py":
            continue  # generated modules (NumPy and compiled): they import numpy, numba and derive's runtime helpers only
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


#: lowest first; a module belongs to the first entry that is it or one of its packages
LAYERS = (
    ("derive.errors", "derive.textout", "derive.fileio", "derive.version"),         # base: the error type, text, files
    ("derive.syntax",),                                               # text -> positioned trees
    ("derive.stanza", "derive.activations", "derive.stable", "derive.jitmath"),  # definitions of the activations
    ("derive.symbolic",),                                             # cells, IR, BPTT, counts (SymPy)
    ("derive.codegen",),                                              # derivation -> verified kernel source
    ("derive.kernelapi", "derive.interop", "derive.workspace", "derive.kernels", "derive.cells", "derive.models"),
    ("derive.runtime",),                                              # kernel(), Stack, activation()
    ("derive.witness",),                                              # independent checks
    ("derive.checker",),                                              # derive check
    ("derive.summary", "derive.diagrams"),                            # plain data and diagrams for CLI and pages
    ("derive.docs", "derive.bench"),                                  # pages, plots; benchmarks
    ("derive.cli",),                                                  # the command; writes files
    ("derive", "derive.__main__"),                                    # the public API
)


def layer(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names if n != "derive"):
            return i
    assert module in ("derive", "derive.__main__"), f"{module} has no layer: add it to LAYERS"
    return len(LAYERS) - 1


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (module level or inside functions)."""
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                # ``from P import m`` of a submodule m uses m; of any other name it uses P
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[m] |= {t for t in targets if t in mods and t != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_every_import_goes_down_or_sideways():
    upward = sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                    for m, targets in import_graph().items() for t in targets if layer(t) > layer(m))
    assert upward == []


def test_every_module_has_a_layer():
    for m in _modules():
        layer(m)


def test_the_layer_check_sees_an_upward_import():
    assert layer("derive.symbolic.cell") < layer("derive.codegen.kernel") < layer("derive.cli.command")
    assert layer("derive.docs.pages") == layer("derive.bench.cells")


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_making_a_kernel_does_not_reach_the_cli_or_the_docs():
    graph = import_graph()
    seen, todo = set(), ["derive.runtime.kernels"]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph[m]
    assert not {m for m in seen if m in ("derive.cli.command", "derive.cli.build") or m.startswith("derive.docs")}, seen


def test_every_module_is_reachable_by_its_dotted_name():
    """``import derive.X as m`` gives the module X, never a function of the same name that the
    package exports (``derive.check`` the function used to hide ``derive/check.py``)."""
    import importlib
    import types

    for name in _modules():
        if name in ("derive", "derive.__main__"):  # __main__ runs the CLI
            continue
        module = importlib.import_module(name)
        parent, _, last = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(parent), last), types.ModuleType), name
        assert getattr(importlib.import_module(parent), last) is module, name


#: the only package modules imported inside a function: generated code, loaded when used, so a
#: stale or broken generated file never stops the command that regenerates it
LAZY = ("derive.kernels",)


def test_package_imports_sit_at_module_level():
    """Imports of derive's own modules inside functions hid cycles; with the layers they are at the
    top of the module, where a reader sees them (heavy optional packages such as torch,
    matplotlib and threadpoolctl stay inside the functions that use them)."""
    lazy = []
    for m, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for f in ast.walk(tree):
            if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(f):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "derive":
                    names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
                    if not any(n == p or n.startswith(p + ".") for n in names for p in LAZY):
                        lazy.append(f"{m}:{node.lineno} from {node.module} import ...")
                elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "derive" for a in node.names):
                    lazy.append(f"{m}:{node.lineno} import {node.names[0].name}")
    assert lazy == []


def _sizes():
    """(module, lines, [(class, lines)]) for every hand-written module (not the generated kernels)."""
    for m, path in sorted(_modules().items()):
        text = path.read_text(encoding="utf-8")
        classes = [(c.name, c.end_lineno - c.lineno + 1) for c in ast.walk(ast.parse(text))
                   if isinstance(c, ast.ClassDef)]
        yield m, len(text.splitlines()), classes


def test_modules_and_classes_stay_small():
    """A hand-written module under 500 lines and a class under 300, so each has one job."""
    big = [f"{m}: {n} lines" for m, n, _ in _sizes() if n > 500]
    big += [f"{m}.{c}: {n} lines" for m, _, classes in _sizes() for c, n in classes if n > 300]
    assert big == []


#: what a command loads: (argv, module prefixes it must not import). The parser names each command's
#: handler module (``derive/cli/parser.py``) and ``derive/__init__.py`` resolves its API on first use, so a
#: command starts with the layers it needs (``derive params`` took 2.2 s when every command loaded all)
COMMAND_LOADS = [
    (["params", "lstm", "-I", "10", "-H", "20"], ("derive.checker", "derive.runtime", "derive.codegen", "derive.docs",
                                                   "derive.bench", "derive.witness", "scipy", "jinja2", "torch")),
    (["params", "seq2seq_bahdanau", "-I", "10", "-H", "20"], ("derive.checker", "derive.runtime", "derive.docs",
                                                               "scipy", "torch")),
    (["check", "lstm", "dh_t = dy_t"], ("derive.docs", "derive.bench", "derive.cli.build", "torch", "jinja2")),
    (["show", "gru"], ("derive.checker", "derive.docs", "derive.bench", "derive.witness", "torch")),
    (["--version"], ("derive.symbolic.bptt", "derive.checker", "derive.runtime", "derive.docs")),
]


@pytest.mark.parametrize("argv, forbidden", COMMAND_LOADS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_command_loads_only_the_layers_it_needs(argv, forbidden):
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom derive.cli.command import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
            "print('\\n'.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split()
    assert "derive.cli.command" in loaded
    assert [m for m in loaded if m.startswith(forbidden)] == []
