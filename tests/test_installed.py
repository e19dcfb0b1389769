"""An installed copy works: the wheel built from this checkout, installed outside it (not
editable), generates, verifies and runs the kernel of a user's spec. Everything needed at run
time must ship as package data (the kernel templates, the built-in specs)."""

import os
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPEC = r"""name = "mine"
input = "x"
states = ["h"]
output = "y"
equations = '''
h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)
y_t = W_{hy} h_t + b_y
'''
"""

PROGRAM = """
import numpy as np, derive
k = derive.kernel("mine.toml")
p = k.init_params(3, 4, seed=0)
y, s, cache = k.forward(np.ones((5, 2, 3)), None, p)
g = k.backward(np.ones(y.shape), None, cache, p)
for backend in ("compiled", "auto"):  # the compiled backend of a spec file, imported from DERIVE_KERNEL_CACHE
    kc = derive.kernel("mine.toml", backend=backend)
    yc, _, cc = kc.forward(np.ones((5, 2, 3)), None, p)
    gc = kc.backward(np.ones(y.shape), None, cc, p)
    assert np.allclose(yc, y) and all(np.allclose(gc[key], g[key]) for key in g)
kb = derive.kernel("lstm", backend="compiled")  # a committed compiled module, from the installed package
kb.forward(np.ones((2, 1, 3)), None, kb.init_params(3, 4))
print(derive.__file__)
print(y.shape, sorted(g))
"""


def test_a_wheel_installed_outside_the_checkout_makes_a_kernel_for_a_user_spec(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(wheels)], check=True, cwd=tmp_path)
    wheel = next(wheels.glob("derive-*.whl"))
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True, cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.toml").write_text(SPEC)
    # -S: no site processing, so the editable install of the checkout (a .pth finder) is not
    # seen; the dependencies come from this environment's site-packages, derive from the wheel
    # numba's on-disk cache goes to NUMBA_CACHE_DIR (a read-only site-packages falls back to numba's user
    # cache directory by itself), a spec's compiled module to DERIVE_KERNEL_CACHE
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *site.getsitepackages()]),
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "DERIVE_KERNEL_CACHE": str(tmp_path / "kernels")}
    out = subprocess.run([sys.executable, "-S", "-c", PROGRAM], cwd=work, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    where, shapes = out.stdout.splitlines()[-2:]
    assert Path(where).resolve().is_relative_to(target.resolve()), where
    assert shapes == "(5, 2, 4) ['W_hh', 'W_hy', 'W_xh', 'b_h', 'b_y', 'h', 'x']"
    assert list((tmp_path / "kernels").glob("derive_compiled_mine_*.py"))
    cached = [p.name for p in (tmp_path / "numba").rglob("*.nbi")]
    assert any(n.startswith("lstm._forward_steps") for n in cached), cached
    assert any(n.startswith("derive_compiled_mine_") for n in cached), cached
    assert not list(target.rglob("*.nbi"))  # nothing written into the installed package
