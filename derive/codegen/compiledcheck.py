"""The compiled backend's kernels prove themselves as the NumPy ones do (``selfcheck``).

``verified_compiled(d, label)`` renders the compiled module of a derivation, audits it (the
template's statements, plus its jit options, jitmath digest and step functions; every name bound
once in the four derived functions and the two step functions, loop indices aside) and runs
``selfcheck.check`` on it, with numba's jit off while that checked copy is made: the statements
are the ones numba compiles, the witnesses are the same, and the check compiles nothing (a few
tens of milliseconds of Python). A construct the compiled emitter cannot express is a
``CompiledLimit`` naming the cell and the construct.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import types

from derive import jitmath
from derive.codegen import kernel as codegen
from derive.codegen.ewise import CodegenError
from derive.codegen.selfcheck import WrongKernel, _wrong, audit, check, module_from_source, readable
from derive.errors import DeriveError


class CompiledLimit(DeriveError):
    """The compiled emitter cannot express a construct of the cell yet (its NumPy kernel runs it)."""


_VERIFIED_COMPILED: dict[str, str] = {}


def verified_compiled(d, label: str) -> str:
    """The source of the compiled (numba) kernel of ``d``, after the audit and the same check as
    ``verified_kernel``, run on the functions as plain Python (numba's jit off while the checked copy
    is made: the statements are the ones numba compiles, and the check costs no compilation). A
    construct the compiled emitter cannot express is a DeriveError naming the cell and the construct."""
    cell = d.cell
    try:
        source = codegen.render_compiled(d, label)
    except DeriveError:
        raise
    except (CodegenError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise CompiledLimit(f"derive cannot generate a compiled kernel for cell {cell.name} ({readable(str(e))}); "
                          f"its NumPy kernel (backend='numpy') runs it", getattr(e, "pos", None),
                          cell.source or None) from None
    key = hashlib.sha256(source.encode()).hexdigest()
    if key not in _VERIFIED_COMPILED:
        audit(source, cell, compiled=True)
        module = _plain_python(source, cell.name, label)
        try:
            check(module, cell)
        except DeriveError:
            raise
        except Exception as e:  # the generated code itself failed: never hand it out
            raise WrongKernel(*_wrong(cell, f"its compiled backend raised {type(e).__name__}: {e}")) from None
        _VERIFIED_COMPILED[key] = source
    return source


def _plain_python(source: str, name: str, label: str) -> types.ModuleType:
    """The compiled kernel's source as a module whose ``@numba.njit`` functions stay Python."""
    from numba.core import config

    saved = config.DISABLE_JIT
    config.DISABLE_JIT = True
    try:
        module = module_from_source(source, f"{name}_compiled", label)
        module._jm = _plain_jitmath()  # its activations as Python too (derive.jitmath itself stays compiled)
        return module
    finally:
        config.DISABLE_JIT = saved


@functools.cache
def _plain_jitmath() -> types.ModuleType:
    """A private copy of ``derive.jitmath`` made with numba's jit off (not in ``sys.modules``: the
    kernels numba compiles import the real one)."""
    spec = importlib.util.spec_from_file_location("derive.jitmath", jitmath.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
