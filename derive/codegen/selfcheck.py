"""Every generated kernel proves itself before anyone uses it.

``verified_kernel(d, label)`` renders the kernel of a derivation, audits the source (only
the statements the template writes at module level; no generated name bound twice, so a
spec name cannot silently stand for one of the kernel's own variables), compiles it and
runs it at a tiny size in float64 against two witnesses that share no code with the
generator:

* the forward values of an evaluation of the cell's equations step by step with NumPy
  (``reference_forward``: ``W a`` is ``a @ W.T``, everything else elementwise, each
  activation from its plain SymPy definition, not the kernel's stable form);
* central finite differences of that evaluation, along a random direction, for ``x``,
  every initial state and every parameter, for the loss ``sum w.y + sum v.s_T`` and for
  its two parts alone (so the paths taken when ``dy`` or ``dstates_T`` is None are run).

A float32 run must agree with the float64 one. A mismatch is a ``DeriveError`` that says
derive generated a wrong kernel (a bug in derive), never a wrong kernel handed out; a
generator failure is a ``DeriveError`` naming the limit. The check costs a few tens of
milliseconds and is remembered per source text.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import re
import types
from functools import lru_cache

import numpy as np
import sympy as sp

from derive import activations as acts
from derive.codegen import kernel as codegen
from derive.symbolic import ir
from derive.symbolic.cell import Cell
from derive.symbolic.functions import maximum, minimum
from derive.symbolic.printing import symbol_text
from derive.errors import DeriveError
from derive.codegen.ewise import CodegenError

#: the tiny problem: distinct sizes, so a transposed or mis-sized block cannot pass
SIZES = {"I": 3, "H": 4, "P": 2}
T, B = 3, 2
EPS = 1e-6
#: |finite difference - kernel| <= RTOL * max(1, |kernel|); forward values to FWD_TOL
RTOL, FWD_TOL, F32_TOL = 1e-6, 1e-9, 1e-3

#: what the template binds at module level, and the functions it defines
MODULE_NAMES = {"NAME", "STATES", "INPUT_DIM", "STATE_DIMS", "OUTPUT_DIM", "PARAMS", "LAYOUTS", "GEMMS", "WORKSPACE",
                "CLOCK"}
MODULE_FUNCTIONS = {"_sigmoid", "forward", "_forward", "backward", "_backward", "init_params", "from_torch", "to_torch",
                    "from_keras", "to_keras", "clip_by_value", "clip_by_global_norm"}
MODULE_IMPORTS = {"numpy", "derive", "derive.kernels"}
#: what the compiled backend's template adds (``compiled_kernel.py.j2``): its jit options and the digest of
#: ``derive/jitmath.py`` (whose scalar helpers it imports as ``_jm``), the step functions, their imports
COMPILED_NAMES = {"JIT", "JITMATH"}
COMPILED_FUNCTIONS = {"_forward_steps", "_backward_steps"}
COMPILED_IMPORTS = {"math", "numba"}
#: the compiled step functions' loop indices, bound by every loop nest
LOOP_INDICES = {"_t", "_b", "_j"}
#: names a generated function may bind more than once: its arguments (normalised in the
#: prologue), the after-loop weight-gradient slab and the vector-gradient scratch
REBOUND = {"dW", "_big"}
#: what the module binds for its functions: no generated function may bind one of these
MODULE_BOUND = MODULE_NAMES | MODULE_FUNCTIONS | {"np", "_interop", "_api", "_workspace", "_act", "_jm"} | \
    COMPILED_NAMES | COMPILED_FUNCTIONS | COMPILED_IMPORTS
#: the arguments the derived functions normalise in their prologue (every other one is never bound)
NORMALISED = {"states0"}


class WrongKernel(DeriveError):
    """The generated kernel disagrees with the witnesses: a bug in derive."""


# ----------------------------------------------------------------- the reference
def _sizes(cell: Cell) -> dict:
    """The test sizes of ``cell``: H a multiple of a clock's modules (H = g k), and I = H when the
    spec declares so (``sizes = { x = "H" }``)."""
    sizes = dict(SIZES)
    if cell.clock is not None:
        g = cell.clock.modules
        sizes["H"] = g * -(-sizes["H"] // g)
    return {**sizes, "I": sizes[str(cell.input_size)]} if cell.input_size is not None else sizes


def _size(dim, cell: Cell) -> int:
    sizes = _sizes(cell)
    return int(sp.sympify(dim).xreplace({sp.Symbol(k, positive=True, integer=True): v for k, v in sizes.items()}))


def _dim(cell: Cell, sym) -> int:
    return _size(cell.dims[ir.ref(sym).key], cell)


@lru_cache(maxsize=None)
def _numeric(head) -> callable:
    """A NumPy function of one array for an elementwise head (an activation from its
    definition, or a SymPy function such as exp): built from the SymPy expression."""
    u = sp.Symbol("u", real=True)
    expr = head.expr(u) if isinstance(head, type) and issubclass(head, acts.Activation) else head(u)
    return sp.lambdify(u, expr, modules=["scipy", "numpy"])  # scipy: erf, erfc vectorised


#: the functions of the spec language, evaluated with NumPy: SymPy class -> (NumPy function, domain)
FUNCTIONS = {sp.exp: (np.exp, None), sp.log: (np.log, "positive"), sp.Abs: (np.abs, None),
             maximum: (np.maximum, None), minimum: (np.minimum, None)}
#: domain -> the test its argument must pass
DOMAINS = {"positive": lambda v: v > 0, "non-negative": lambda v: v >= 0}


def _checked(f, domain, name, fail):
    """``f`` of arrays, refusing (``fail(name, domain, value)``) an argument outside ``domain``."""
    if domain is None:
        return f

    def apply(*values):
        bad = ~DOMAINS[domain](values[0])
        if np.any(bad):
            raise fail(name, domain, float(values[0][bad].flat[0]))
        return f(*values)
    return apply


def _domain_error(cell: Cell, a):
    r"""The located error for \log or \sqrt of a value outside its domain in assignment ``a``."""
    def fail(name, domain, value):
        return DeriveError(
            f"\\{name} of a value that is not {domain} ({value:.3g}) in the equation for {symbol_text(a.target)}: "
            f"the kernel self-check runs the cell at random values (x and the states N(0, 1), parameters U(-1, 1)) "
            f"and there the argument leaves the domain of \\{name}, so the cell would compute NaN; write an argument "
            f"that is {domain} for every input (such as \\sigma(...), \\exp(...) or 1 + u^2)", a.pos, cell.source or None)
    return fail


def _outside(name, domain, value):
    return DeriveError(f"\\{name} of a value that is not {domain} ({value:.3g}): the cell would compute NaN")


def _compiled(expr, fail=_outside):
    """``env -> value`` of an IR expression on (B, n) arrays (``env`` maps IR symbols to
    arrays), built once per expression so the finite differences do not re-walk SymPy trees.
    ``fail(function, domain, value)`` makes the error for \\log or \\sqrt outside its domain."""
    if isinstance(expr, sp.Symbol):
        return lambda env: env[expr]
    if expr.is_number:
        c = float(expr)
        return lambda env: c
    if isinstance(expr, ir.MatVec):
        W, a = expr.args[0], _compiled(expr.args[1], fail)
        return lambda env: a(env) @ env[W].T
    if isinstance(expr, ir.Mean):  # per sample over the units; broadcast where the result is used
        a = _compiled(expr.args[0], fail)
        return lambda env: np.mean(np.asarray(a(env), dtype=float), axis=-1, keepdims=True)
    if isinstance(expr, (sp.Add, sp.Mul)):
        parts = [_compiled(a, fail) for a in expr.args]
        if isinstance(expr, sp.Add):
            return lambda env: sum((f(env) for f in parts[1:]), parts[0](env))
        return lambda env: _product([f(env) for f in parts])
    if isinstance(expr, sp.Pow):
        base, e = _compiled(expr.base, fail), float(expr.exp)
        power = _checked(np.power, None if expr.exp.is_Integer else "non-negative", "sqrt", fail)
        return lambda env: power(np.asarray(base(env), dtype=float), e)
    if type(expr) in FUNCTIONS:
        (f, domain), args = FUNCTIONS[type(expr)], [_compiled(a, fail) for a in expr.args]
        g = _checked(f, domain, type(expr).__name__, fail)
        return lambda env: g(*[np.asarray(a(env), dtype=float) for a in args])
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        if isinstance(expr, acts.Activation) and type(expr).kind != "elementwise":
            raise DeriveError(f"the kernel self-check cannot evaluate {type(expr).__name__} inside a cell")
        f, arg = _numeric(type(expr)), _compiled(expr.args[0], fail)

        def apply(env):
            try:
                return np.asarray(f(np.asarray(arg(env), dtype=float)), dtype=float)
            except (TypeError, ValueError, AttributeError) as e:
                raise DeriveError(f"the kernel self-check cannot evaluate {expr.func.__name__} ({e})") from None
        return apply
    raise DeriveError(f"the kernel self-check cannot evaluate {expr}")


def _product(values):
    out = values[0]
    for v in values[1:]:
        out = out * v
    return out


def step_functions(cell: Cell) -> list:
    """``(target, env -> value, size)`` per assignment, in evaluation order."""
    return [(a.target, _compiled(a.rhs, _domain_error(cell, a)), _dim(cell, a.target)) for a in cell.assignments]


def reference_forward(cell: Cell, x, states0: dict, params: dict, steps: list | None = None, t0: int = 0):
    """``(y, states_T)`` of the cell's equations run step by step (float64, no derivation);
    ``steps`` from ``step_functions(cell)`` saves compiling them again. A clock's steps are
    counted from ``t0``: its mask m_t is read from ``symbolic.clock``, its block-triangular
    matrices are masked by their 0/1 pattern."""
    steps = steps or step_functions(cell)
    env = {p.symbol: np.asarray(params[key], dtype=float) for key, p in cell.params.items()}
    clock = cell.clock
    for key in clock.masked if clock is not None else ():
        p = cell.params[key]
        env[p.symbol] = env[p.symbol] * np.array(clock.block_pattern(env[p.symbol].shape[0]), dtype=float)
    prev = {s: np.asarray(states0[ir.ref(s).key], dtype=float) for s in cell.states}
    ys = []
    for t in range(x.shape[0]):
        step = dict(env)
        step[cell.input] = x[t]
        for k in cell.taps:  # x_{t-k}: zero before the first step
            step[ir.at(cell.input, -k)] = x[t - k] if t >= k else np.zeros_like(x[t])
        for s in cell.states:
            step[ir.at(s, -1)] = prev[s]
        if clock is not None:
            hidden = next(v.shape[-1] for s, v in prev.items() if str(cell.dims[ir.ref(s).key]) == "H")
            step[clock.mask] = np.array(clock.mask_at(t0 + t, hidden), dtype=float)
        for target, value, size in steps:
            step[target] = np.broadcast_to(value(step), (x.shape[1], size))
        ys.append(step[cell.output])
        prev = {s: step[s] for s in cell.states}
    return np.stack(ys) if ys else np.zeros((0, x.shape[1], _dim(cell, cell.output))), \
        {ir.ref(s).key: prev[s] for s in cell.states}


def _under_a_domain(cell: Cell) -> set:
    """The states whose value at t-1 is read inside the argument of \\log or \\sqrt (also
    through the pre-activation derive names for the argument)."""
    named = {a.target: a.rhs for a in cell.assignments if a.aux}
    out = set()
    for a in cell.assignments:
        for f in a.rhs.atoms(sp.log, sp.Pow):
            if isinstance(f, sp.log) or not f.exp.is_Integer:
                arg = f.args[0].xreplace(named)
                out |= {ir.ref(s).key for s in arg.free_symbols if ir.is_ir(s) and ir.ref(s).time == -1}
    return out


def problem(cell: Cell, seed: int = 0):
    """x, states0, params, w (weights of y) and v (weights of the final states), seeded."""
    rng = np.random.default_rng(seed)
    params = {}
    for key, p in cell.params.items():
        shape = tuple(_size(d, cell) for d in p.shape)
        params[key] = rng.uniform(-1.0, 1.0, shape)
    x = rng.standard_normal((T, B, _sizes(cell)["I"]))
    s0 = {ir.ref(s).key: rng.standard_normal((B, _dim(cell, s))) for s in cell.states}
    for key in _under_a_domain(cell):  # a state read under \\log or \\sqrt starts in its domain
        s0[key] = np.abs(s0[key]) + 0.5
    w = rng.standard_normal((T, B, _dim(cell, cell.output)))
    v = {ir.ref(s).key: rng.standard_normal((B, _dim(cell, s))) for s in cell.states}
    return rng, x, s0, params, w, v


# ------------------------------------------------------------------- the audit
def audit(source: str, cell: Cell, compiled: bool = False) -> None:
    """Refuse generated source that is not the template's shape (module level) or whose
    functions bind one name twice (a spec name colliding with a name of the kernel).
    ``compiled``: the compiled backend's template, which adds ``COMPILED_*``."""
    names = MODULE_NAMES | (COMPILED_NAMES if compiled else set())
    functions = MODULE_FUNCTIONS | (COMPILED_FUNCTIONS if compiled else set())
    imports = MODULE_IMPORTS | (COMPILED_IMPORTS if compiled else set())
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise DeriveError(f"derive generated invalid Python for cell {cell.name} (line {e.lineno}: {e.msg}); "
                          "a bug in derive, please report it") from None
    for k, node in enumerate(tree.body):
        if k == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        ok = (isinstance(node, ast.Import) and all(a.name in imports for a in node.names)) or \
            (isinstance(node, ast.ImportFrom) and node.module in imports and node.level == 0) or \
            (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
             and node.targets[0].id in names) or \
            (isinstance(node, ast.FunctionDef) and node.name in functions)
        if not ok:
            raise DeriveError(f"derive generated an unexpected statement at line {node.lineno} of the kernel for "
                              f"{cell.name}; refusing to load it (a bug in derive, please report it)")
    checked = {"forward", "_forward", "backward", "_backward"} | (
        {"_forward_steps", "_backward_steps"} if compiled else set())
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name in checked:
            _single_bindings(fn, cell, LOOP_INDICES if fn.name.endswith("_steps") else frozenset())


def _single_bindings(fn: ast.FunctionDef, cell: Cell, loops=frozenset()) -> None:
    """Every name bound once; no module name bound; the derived functions' arguments never
    rebound but the normalised ones (derive's own names yield to the spec's, ``names.Namer``,
    so a failure here is a bug in derive)."""
    args = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
    derived = fn.name.startswith("_")
    bound: dict[str, int] = {}
    accumulated = {id(n.target) for n in ast.walk(fn) if isinstance(n, ast.AugAssign)}  # ``acc += ...``
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)) or id(node) in accumulated:
            continue
        if node.id in MODULE_BOUND or (derived and node.id in args - NORMALISED):
            what = "a module-level name" if node.id in MODULE_BOUND else "an argument"
            raise DeriveError(f"derive generated a kernel for cell {cell.name} that rebinds {what}, {node.id!r} "
                              f"(line {node.lineno} of {fn.name}()); a bug in derive, please report it",
                              None, cell.source or None)
        if node.id in args | REBOUND | loops:
            continue
        if node.id in bound:
            raise DeriveError(
                f"derive generated a kernel for cell {cell.name} that binds {node.id!r} twice (lines "
                f"{bound[node.id]} and {node.lineno} of {fn.name}()); a bug in derive, please report it "
                f"(renaming the quantity of the spec that {node.id!r} comes from avoids it)", None,
                cell.source or None)
        bound[node.id] = node.lineno


# ------------------------------------------------------------------- the check
def _loss_parts(y, sT, w, v) -> tuple[float, float]:
    return float((w * y).sum()), float(sum((v[k] * sT[k]).sum() for k in v))


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b), initial=0.0) / max(1.0, np.max(np.abs(b), initial=0.0)))


#: the largest value the self-check's finite differences can be trusted at: a central difference
#: of step EPS over values of size V carries rounding noise ~ 2.2e-16 V / EPS, which must stay
#: well under RTOL (V <= ~4e3 for EPS = RTOL = 1e-6); a cell beyond it is refused, not guessed at
RUNAWAY = 1e3


def _refuse_runaway(cell: Cell, values) -> None:
    """A cell whose own equations overflow or grow past ``RUNAWAY`` at the self-check's inputs
    (``\\exp`` of a state, say) cannot be verified by finite differences: a limit, named, not a
    kernel handed out unverified and not "a bug in derive"."""
    top = max(float(np.max(np.abs(a))) if np.size(a) else 0.0 for a in values)
    if not top <= RUNAWAY:
        _runaway(cell, "non-finite values" if not np.isfinite(top) else f"{top:.3g}")


def _runaway(cell: Cell, what: str, where: str = "at"):
    raise DeriveError(f"derive cannot verify a kernel for cell {cell.name}: its equations reach {what} in {T} steps "
                      f"{where} the self-check's inputs (weights in [-1, 1], unit inputs); a cell that grows this fast "
                      f"(for example \\exp of a state) is beyond what finite differences can check",
                      None, cell.source or None)


def check(module, cell: Cell) -> float:
    """Run ``module`` against the witnesses; the worst relative disagreement, or WrongKernel."""
    with np.errstate(all="ignore"):  # a nan or inf fails the comparisons below, never warns
        return _check(module, cell)


def _check(module, cell: Cell) -> float:
    rng, x, s0, params, w, v = problem(cell)
    steps = step_functions(cell)
    y_ref, sT_ref = reference_forward(cell, x, s0, params, steps)
    _refuse_runaway(cell, [y_ref, *sT_ref.values()])
    y, sT, cache = module.forward(x, s0, params)
    worst = _rel(y, y_ref)
    for key in sT_ref:
        worst = max(worst, _rel(sT[key], sT_ref[key]))
    if not worst <= FWD_TOL:
        raise WrongKernel(*_wrong(cell, f"its forward values differ from the equations by {worst:.3g}"))
    grads = {"both": module.backward(w, v, cache, params), "dy": module.backward(w, None, cache, params),
             "states": module.backward(None, v, cache, params)}
    for key in ["x", *s0, *params]:
        base = x if key == "x" else s0[key] if key in s0 else params[key]
        u = rng.standard_normal(base.shape)
        plus, minus = _perturbed(cell, x, s0, params, key, u, steps)
        fd_dy = (_loss_parts(*plus, w, v)[0] - _loss_parts(*minus, w, v)[0]) / (2 * EPS)
        fd_s = (_loss_parts(*plus, w, v)[1] - _loss_parts(*minus, w, v)[1]) / (2 * EPS)
        for which, fd in (("both", fd_dy + fd_s), ("dy", fd_dy), ("states", fd_s)):
            g = grads[which].get(key)
            if g is None:
                raise WrongKernel(*_wrong(cell, f"backward returned no gradient for {key}"))
            if not np.isfinite(fd):  # an intermediate overflows next to the inputs (0 * inf)
                _runaway(cell, "non-finite values", "near")
            got = float((np.asarray(g, dtype=float) * u).sum())
            err = abs(got - fd) / max(1.0, abs(fd))
            if not err <= RTOL:
                given = {"both": "dy and dstates_T", "dy": "dy only", "states": "dstates_T only"}[which]
                raise WrongKernel(*_wrong(cell, f"the gradient of {key} ({given}) is {got:.6g} along a direction "
                                               f"where finite differences give {fd:.6g}"))
            worst = max(worst, err)
    _float32_agrees(module, cell, x, s0, params, w, v, y, grads["both"])
    return worst


def _perturbed(cell, x, s0, params, key, u, steps):
    out = []
    for sign in (1.0, -1.0):
        xx = x + sign * EPS * u if key == "x" else x
        ss = {**s0, key: s0[key] + sign * EPS * u} if key in s0 else s0
        pp = {**params, key: params[key] + sign * EPS * u} if key in params else params
        out.append(reference_forward(cell, xx, ss, pp, steps))
    return out


def _float32_agrees(module, cell, x, s0, params, w, v, y64, g64) -> None:
    """The same problem in float32: float32 results within F32_TOL of the float64 ones."""
    f32 = np.float32
    y, _, cache = module.forward(x.astype(f32), {k: a.astype(f32) for k, a in s0.items()},
                                 {k: a.astype(f32) for k, a in params.items()})
    g = module.backward(w.astype(f32), {k: a.astype(f32) for k, a in v.items()}, cache,
                        {k: a.astype(f32) for k, a in params.items()})
    if y.dtype != f32 or any(np.asarray(a).dtype != f32 for a in g.values()):
        raise WrongKernel(*_wrong(cell, "float32 inputs did not give float32 results"))
    worst = max([_rel(y, y64)] + [_rel(g[k], g64[k]) for k in g64])
    if not worst <= F32_TOL:
        raise WrongKernel(*_wrong(cell, f"its float32 results differ from float64 by {worst:.3g}"))


def _wrong(cell: Cell, what: str) -> tuple:
    """The message and location of a WrongKernel error (the spec file, when there is one)."""
    return (f"derive generated a wrong kernel for cell {cell.name}: {what} "
            f"(checked at T={T}, B={B}, sizes {_sizes(cell)}; a bug in derive, please report it)", None, cell.source or None)


# ------------------------------------------------------------ render + verify
#: an IR symbol's name (``s||1``, ``d:z|f|0``, ``W|xf|``) inside a message
IR_NAME = re.compile(r"(?<![\w|:])(?:d:)?[A-Za-z][A-Za-z0-9_]*\|[A-Za-z0-9_,]*\|-?[0-9]*(?![\w|])")


def readable(message: str) -> str:
    """``message`` with every IR symbol name written as the spec writes it (``s||1`` -> s_{t+1})."""
    return IR_NAME.sub(lambda m: symbol_text(sp.Symbol(m[0])), message)


_VERIFIED: dict[str, types.ModuleType] = {}


def module_from_source(source: str, name: str, label: str) -> types.ModuleType:
    """Compile generated kernel source as a module (its lines registered for tracebacks)."""
    filename = f"<derive kernel {name} from {label!r}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(f"derive_kernel_{name}")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)  # generated and audited source, never user text
    return module


def verified_kernel(d, label: str) -> tuple[str, types.ModuleType]:
    """``(source, module)`` of the kernel of derivation ``d``, after the audit and the check."""
    cell = d.cell
    try:
        source = codegen.render(d, label)
    except DeriveError:
        raise
    except (CodegenError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise DeriveError(f"derive cannot generate a kernel for cell {cell.name} yet ({type(e).__name__} in the "
                          f"kernel generator: {readable(str(e))}); its derivation (derive show) is not affected",
                          getattr(e, "pos", None), cell.source or None) from None
    key = hashlib.sha256(source.encode()).hexdigest()
    if key not in _VERIFIED:
        audit(source, cell)
        module = module_from_source(source, cell.name, label)
        try:
            check(module, cell)
        except DeriveError:
            raise
        except Exception as e:  # the generated code itself failed: never hand it out
            raise WrongKernel(*_wrong(cell, f"it raised {type(e).__name__}: {e}")) from None
        _VERIFIED[key] = module
    return source, _VERIFIED[key]
