"""Commands in an equation: activations, the functions of the spec language, constants.

``\\sigma(a)`` and ``\\operatorname{relu}(a)`` are catalogue activations; ``\\exp``, ``\\log``,
``\\sqrt``, ``\\abs`` (``|a|``), ``\\max`` and ``\\min`` the functions of ``functions.py``;
``\\beta`` (or a plain name such as ``k``) a constant declared in the spec's ``[constants]``
table, and ``\\pi``, ``\\mathrm{e}`` without a declaration. A constant is a number in the
equations: not a parameter, no gradient, not counted. ``\\beta(a)`` is the constant times
``a``. An unknown command gets the few nearest spellings and a pointer to ``derive list``.
"""

from __future__ import annotations

import difflib
import re

import sympy as sp

from derive import activations as acts
from derive.errors import DeriveError
from derive.symbolic import functions
from derive.symbolic.shapes import Shape, Val
from derive.syntax.equations import Call, Const

#: how many near names an error suggests
NEAREST = 4
_FUNCTIONS = ", ".join(f.commands[0] for f in functions.FUNCTIONS)


def bare(command: str) -> str:
    r"""``\operatorname{relu}`` -> relu; ``\sigma`` -> sigma."""
    m = re.fullmatch(r"\\(?:operatorname|mathrm|text|mathit)\{(.*)\}", command)
    return m[1] if m else command.lstrip("\\")


def _spellings() -> dict:
    """lower-case bare name -> (spelling, owner): every activation and function spelling."""
    out: dict = {}
    for cls in acts.REGISTRY.values():
        for command in cls.commands:
            key = bare(command).lower()
            if key not in out or command.startswith("\\operatorname"):
                out[key] = (command, cls)
    for f in functions.FUNCTIONS:
        for command in f.commands:
            out.setdefault(bare(command).lower(), (command, f))
    return out


def suggest(command: str) -> str:
    """The few activations or functions spelled nearest ``command``, and where the rest are."""
    spelled = _spellings()
    seen, names = set(), []
    for key in difflib.get_close_matches(bare(command).lower(), spelled, n=3 * NEAREST, cutoff=0.6):
        spelling, owner = spelled[key]
        if id(owner) not in seen:
            seen.add(id(owner))
            names.append(spelling)
    if names:
        return f"did you mean {', '.join(names[:NEAREST])}? (derive list shows every activation)"
    return (f"activations are \\sigma, \\tanh and \\operatorname{{name}} for the others (derive list shows them "
            f"all); functions: {_FUNCTIONS}")


def constant_key(command: str) -> str:
    return bare(command)


def check_constants(constants: dict, taken: dict) -> None:
    """A declared constant must not have the name of an activation, a function or one of the
    cell's vectors and parameters (``taken``: key -> what it is)."""
    for key, (_, pos) in constants.items():
        command = "\\" + key
        if acts.by_command(command) or functions.by_command(command) or command in functions.BUILTIN_CONSTANTS:
            raise DeriveError(f"the constant {key} has the name of a function ({command}); rename it", pos)
        if key in taken:
            raise DeriveError(f"the constant {key} has the name of {taken[key]}; rename one of them", pos)


class Calls:
    """Conversion of calls and constants, mixed into the cell builder (which gives
    ``convert``, ``join`` and ``constants``: key -> (exact value, position))."""

    constants: dict

    def call(self, node: Call, user: str) -> Val:
        fn = functions.by_command(node.func)
        act = acts.by_command(node.func)
        if fn is None and act is None:
            if constant_key(node.func) in self.constants or node.func in functions.BUILTIN_CONSTANTS:
                return self.scaled_call(node, user)
            raise DeriveError(f"undefined activation {node.func}; {suggest(node.func)}", node.pos)
        arity = fn.arity if fn is not None else 1
        if len(node.args) != arity:
            usage = f"{node.func}(a)" if arity == 1 else f"{node.func}(a, b)"
            raise DeriveError(f"{node.func} takes {'one argument' if arity == 1 else f'{arity} arguments'}, "
                              f"as {usage}; here it has {len(node.args)}", node.pos)
        vals = [self.convert(a, user) for a in node.args]
        if arity == 2:
            a, b = vals
            dim = self.join(a, b, node.pos, f"{node.func}(a, b)", (node.args[0].pos, node.args[1].pos))
            kind = Shape.VECTOR if Shape.VECTOR in (a.kind, b.kind) else Shape.SCALAR
            return Val(fn.build(a.expr, b.expr) ** node.exponent, kind, dim)
        (v,) = vals
        if fn is not None and fn.vector_wide and v.kind != Shape.VECTOR:
            raise DeriveError(f"{node.func} reads every unit of a vector; here its argument is a number "
                              f"(write it of a vector such as {node.func}(c_t))", node.args[0].pos)
        head = act if act is not None else fn.build
        if head is sp.exp:  # kept whole: SymPy would split exp(log f + a) into f exp(a), which overflows where
            # f underflows (the sLSTM's f-hat); whole, its argument becomes the pre-activation (a product's
            # Mul may still split it)
            return Val(sp.exp(v.expr, evaluate=False) ** node.exponent, v.kind, v.dim)
        return Val(head(v.expr) ** node.exponent, v.kind, v.dim)

    def scaled_call(self, node: Call, user: str) -> Val:
        r"""``\beta(a)``: the constant times ``a`` (``\beta^2(a)``: its square times ``a``)."""
        if len(node.args) != 1:
            raise DeriveError(f"{node.func} is a constant, not a function of {len(node.args)} arguments", node.pos)
        c = self.constant(Const(node.func, node.pos))
        v = self.convert(node.args[0], user)
        return Val(c.expr ** node.exponent * v.expr, v.kind, v.dim)

    def constant(self, node: Const) -> Val:
        key = constant_key(node.name)
        if key in self.constants:
            return Val(self.constants[key][0], Shape.SCALAR)
        if node.name in functions.BUILTIN_CONSTANTS:
            return Val(functions.BUILTIN_CONSTANTS[node.name], Shape.SCALAR)
        if functions.by_command(node.name) or acts.by_command(node.name):
            raise DeriveError(f"{node.name} is a function: write {node.name}(...)", node.pos)
        declared = ", ".join(f"\\{k}" for k in self.constants) or "none"
        close = difflib.get_close_matches(key, list(self.constants), n=NEAREST)
        hint = f"did you mean {', '.join(chr(92) + c for c in close)}? " if close else ""
        raise DeriveError(f"unknown constant {node.name}; {hint}declare it with its value in the spec's "
                          f"[constants] table ({key} = 0.5); declared: {declared}", node.pos)

    def named_constant(self, key: str) -> sp.Expr | None:
        """The value of a constant written as a plain name (``k``), or None."""
        entry = self.constants.get(key)
        return entry[0] if entry else None

