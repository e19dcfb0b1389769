"""The checker's shape (issue 16): small modules and classes, and one visitor base that every
walker over a claim's tree derives from, so a new notation is added in one place and a node
nobody knows is refused, never skipped."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from derive.checker.visitor import Op, Visitor, walk
from derive.errors import DeriveError, Pos
from derive.syntax.formulas import Call, Name, Node, Num, parse_formula

CHECKER = Path(__file__).resolve().parent.parent / "derive" / "checker"
MODULES = sorted(p.stem for p in CHECKER.glob("*.py") if p.stem != "__init__")
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300

#: every walker over a claim's tree: class -> module
WALKERS = {
    "LetRefs": "lets",  # the --let names a formula uses
    "Evaluator": "numeric",  # the right side in float64 at one step
    "StepEvaluator": "seq2seq",  # an encoder-decoder claim's right side at the step's point, source indices bound
    "ToIr": "symbolic",  # the right side as a SymPy/IR expression
    "Poly": "counts",  # a parameter count as a polynomial in I, H, P
    "ActExpr": "activation",  # an activation claim as a SymPy expression in x
    "ActivationSide": "activation",  # f'(x) / f(x) on the left
    "LeftSide": "cell",  # what a cell claim's left side names
    "Text": "tree",  # a part of the tree as text, for hints and errors
    "Terms": "tree",  # the top-level signed terms, for hints
}


def _tree(module: str) -> ast.Module:
    return ast.parse((CHECKER / f"{module}.py").read_text(encoding="utf-8"))


def _classes(module: str) -> list[ast.ClassDef]:
    return [n for n in ast.walk(_tree(module)) if isinstance(n, ast.ClassDef)]


@pytest.mark.parametrize("module", MODULES)
def test_modules_and_classes_are_small(module):
    lines = len((CHECKER / f"{module}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"derive/checker/{module}.py has {lines} lines (at most {MAX_MODULE_LINES})"
    for cls in _classes(module):
        size = cls.end_lineno - cls.lineno + 1
        assert size <= MAX_CLASS_LINES, f"{module}.{cls.name} has {size} lines (at most {MAX_CLASS_LINES})"


def test_the_size_limits_are_measured():
    """The sizes come from the files: the checker has many modules, and the largest class is seen."""
    assert len(MODULES) >= 8 and "claims" in MODULES and "visitor" in MODULES
    sizes = {c.name: c.end_lineno - c.lineno + 1 for m in MODULES for c in _classes(m)}
    assert sizes["Evaluator"] > 50


@pytest.mark.parametrize("module", MODULES)
def test_every_walker_derives_from_the_visitor(module):
    """A class with visit_ methods is a Visitor; no function walks the tree by calling itself."""
    mod = importlib.import_module(f"derive.checker.{module}")
    for name, cls in inspect.getmembers(mod, inspect.isclass):
        if cls.__module__ == mod.__name__ and any(k.startswith("visit_") for k in vars(cls)):
            assert issubclass(cls, Visitor), f"{module}.{name} has visit_ methods but is not a Visitor"
    for fn in ast.walk(_tree(module)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            calls = {c.func.id if isinstance(c.func, ast.Name) else c.func.attr for c in ast.walk(fn)
                     if isinstance(c, ast.Call) and isinstance(c.func, (ast.Name, ast.Attribute))
                     and not (isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Call))}  # super().f
            assert fn.name not in calls, f"{module}.{fn.name} recurses by hand; make it a Visitor subclass"


def _subclasses(cls) -> set:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_the_walkers_are_the_visitors_subclasses():
    for module in MODULES:
        importlib.import_module(f"derive.checker.{module}")
    found = {c.__name__: c.__module__.rpartition(".")[2] for c in _subclasses(Visitor)
             if c.__module__.startswith("derive.checker.")}
    assert found == WALKERS


UNKNOWN = [Node("frobnicate", (Num("1", Pos(1, 1)),), Pos(1, 7)), 3.5, ("a", "tuple"), "text", None]


@pytest.mark.parametrize("walker", [Visitor, *sorted(_subclasses(Visitor), key=lambda c: c.__name__)],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("node", UNKNOWN, ids=["unknown-kind", "float", "tuple", "str", "None"])
def test_a_node_the_base_does_not_know_is_refused(walker, node):
    w = walker.__new__(walker)  # dispatch needs no state: the refusal comes before any method
    with pytest.raises(DeriveError) as e:
        w.visit(node)
    assert "has no rule for" in e.value.message
    if isinstance(node, Node):
        assert e.value.pos == Pos(1, 7) and "frobnicate" in e.value.message


def test_an_unknown_node_inside_a_tree_is_refused_by_the_let_scan():
    from derive.checker.lets import LetRefs

    tree = Node("add", (Name("a", Pos(1, 1)), Node("frobnicate", (), Pos(1, 5))), Pos(1, 1))
    with pytest.raises(DeriveError):
        LetRefs({"a": None}).of(tree)


def test_op_is_every_operator_the_grammar_makes():
    """A new operator in the grammar must be added to Op (and given a meaning by the walkers)."""
    formulas = [r"y = -a + b - c d / e^2 \cdot f^T", r"y = \sum_t [a, b] + \delta h_t",
                r"y = \frac{\partial L}{\partial W} + \tanh^2(x) + g(x)'"[:-1]]
    kinds, leaves = set(), set()
    for text in formulas:
        f = parse_formula(text)
        for n in walk(f.rhs):
            (kinds.add(n.kind) if isinstance(n, Node) else leaves.add(type(n)))
    assert kinds == set(Op) and leaves == {Num, Name, Call}
    assert all(isinstance(k, str) and Op(k) == k for k in kinds)


def test_the_default_visits_every_child_in_order():
    class Names(Visitor):
        def __init__(self):
            self.seen = []

        def visit_Name(self, n):
            self.seen.append(n.text)

    f = parse_formula(r"y = a * (b + \tanh^{k}(c)) - [d, e]^T / \sum_t \delta g")
    w = Names()
    assert w.visit(f.rhs) is None and w.seen == ["a", "b", "c", "k", "d", "e", "g"]
