"""The documentation site as a person sees it, and as the code reads it.

* The built pages in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's
  Python client): every formula rendered by KaTeX (no raw TeX, no KaTeX error), every image
  loaded, no request outside localhost, a screenshot of the LSTM page.
* The pages' equations read back with the project's grammar and checked: each BPTT,
  parameter-gradient and Jacobian line against the derivation (``derive.check``), the forward
  equations against the generated kernel (evaluated step by step, compared with ``forward``),
  each activation's derivative against its definition.
* Two builds are byte-identical.
"""

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.symbolic import counts, ir, spec
from derive.checker.names import Names
from derive.checker.numeric import Evaluator
from derive.docs import texlines
from derive.docs.katex import Renderer, katex_dir, split_math
from derive.syntax.formulas import parse_formula

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "build" / "test-output"  # screenshots (git-ignored)
CELLS = spec.builtin_names()


def build(site_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "derive", "build", "--site-dir", str(site_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, env=env)


#: the site's generated files (pages, plots, diagrams) before the suite's own full build
BEFORE: dict = {}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One full build (``--force``: everything derived again, whatever the cache says), into a directory an
    earlier build left (MkDocs' output replaces it)."""
    BEFORE.update(tree_digest(SITE))
    BEFORE.update(committed_digest())
    out = tmp_path_factory.mktemp("html")
    (out / "index.html").write_text("old site\n")
    (out / ".derive-site").write_text("")
    proc = build(out, "--force")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deriving everything: --force" in proc.stdout and "old site" not in (out / "index.html").read_text()
    return out


def committed_digest() -> dict:
    """The committed generated files outside site/: nav.yml, the kernels, the measurements."""
    out = {"nav.yml": hashlib.sha256((ROOT / "nav.yml").read_bytes()).hexdigest()}
    for sub in ("derive/kernels", "derive/docs/data/measured"):
        out.update({f"{sub}/{k}": v for k, v in tree_digest(ROOT / sub).items() if "__pycache__" not in k})
    return out


def tree_digest(path: Path) -> dict:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


#: the build and browser tests share one built site (``built``): under ``-n 2`` one worker runs them
#: (``conftest.py``: ``--dist loadgroup``), and start first
SITE_GROUP = pytest.mark.xdist_group("site")


@SITE_GROUP
def test_two_builds_are_byte_identical(built, tmp_path):
    """The full build wrote every page, plot, diagram, kernel and measurement with the bytes they had before it (CI builds the
    site before the tests, so each was made by another process); a second build, which finds nothing
    changed, gives the same HTML."""
    plots = [p for p in BEFORE if p.startswith(("plots/", "diagrams/"))]
    after = tree_digest(SITE)
    assert {p: BEFORE[p] for p in BEFORE if p.endswith(".md")} == {p: d for p, d in after.items() if p.endswith(".md")}
    # every committed file as the full build made it: what `derive build --check` asserts, through the write path
    assert {p: BEFORE[p] for p in committed_digest()} == committed_digest()
    assert {p: BEFORE[p] for p in plots} == {p: after[p] for p in plots}  # (none before a first build)
    proc = build(tmp_path / "again")
    assert proc.returncode == 0, proc.stderr
    assert "nothing to derive" in proc.stdout
    assert tree_digest(tmp_path / "again") == tree_digest(built)
    assert tree_digest(SITE) == after


# ------------------------------------------------------------------ the browser


def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


RAW_TEX = re.compile(r"\$\$|\\(frac|odot|partial|delta|sigma|tanh|begin|operatorname)\b|\$[^$\s][^$]*\$")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (.ci/run)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium chromium-driver)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@SITE_GROUP
def test_every_page_renders_in_chromium(built, browser):
    server = _serve(built)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    pages = sorted(p.relative_to(built).as_posix() for p in built.rglob("*.html") if p.name != "404.html")
    assert len(pages) >= 45
    outside, failed, script_errors = [], [], []

    def open_page(scripts: bool):
        """A tab that records every request leaving the site, every failed load and (scripts on)
        every uncaught script error. The pages' formulas, images and diagrams are static HTML
        (KaTeX runs at build time), so the walk over every page runs with scripts off, which
        halves its time; the theme's scripts run on the pages visited after it."""
        context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=scripts)
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith((origin, "data:"))
                      else (outside.append(route.request.url), route.abort()))
        tab = context.new_page()
        # a navigation cancels what the previous page still loads (its favicon): net::ERR_ABORTED
        tab.on("requestfailed", lambda r: failed.append(r.url) if "ERR_ABORTED" not in (r.failure or "") else None)
        tab.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        tab.on("pageerror", lambda e: script_errors.append(str(e)))
        return context, tab

    context, page = open_page(scripts=False)
    try:
        for rel in pages:
            md = SITE / rel.replace(".html", ".md")
            expected = len(split_math(md.read_text(encoding="utf-8"))[1])
            page.goto(f"{origin}/{rel}", wait_until="load")
            state = page.evaluate("""() => {
                const article = document.querySelector("article");
                const copy = article.cloneNode(true);
                // each formula's TeX, hidden, is what the search index reads (derive.docs.katex.deferred)
                const tex = [...article.querySelectorAll(".derive-tex")];
                copy.querySelectorAll(".katex, .derive-tex, pre, code").forEach(e => e.remove());
                const imgs = [...document.querySelectorAll("article img")];
                return {
                    katex: article.querySelectorAll(".katex").length,
                    tex: tex.length,
                    shown_tex: tex.filter(e => !e.hidden || e.getClientRects().length > 0).length,
                    errors: article.querySelectorAll(".katex-error").length,
                    text: copy.textContent,
                    images: imgs.length,
                    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
                };
            }""")
            assert state["katex"] == expected, (rel, state["katex"], expected)
            assert state["tex"] == expected and state["shown_tex"] == 0, (rel, state["tex"], state["shown_tex"])
            assert state["errors"] == 0, rel
            raw = RAW_TEX.search(state["text"])
            assert raw is None, (rel, state["text"][max(0, raw.start() - 80):raw.end() + 80])
            assert state["broken"] == [], (rel, state["broken"])
            if rel.startswith("activations/"):
                assert state["images"] == 1, rel
            if rel.startswith("cells/") and rel != "cells/index.html":
                assert page.evaluate(DIAGRAMS) == _diagrams_expected(rel), rel
        context.close()
        context, page = open_page(scripts=True)
        for rel in ("index.html", "cells/gru.html", "concepts/rnn_bptt.html", "guide/check.html"):
            page.goto(f"{origin}/{rel}", wait_until="load")
            assert page.evaluate("typeof document$ !== 'undefined'"), rel  # the theme's bundle ran
        page.goto(f"{origin}/cells/lstm.html", wait_until="load")
        page.evaluate("document.fonts.ready")
        assert page.evaluate("document.fonts.check('16px KaTeX_Main')")
        assert page.evaluate("[...document.fonts].some(f => f.family.includes('KaTeX') && f.status === 'loaded')")
        OUTPUT.mkdir(parents=True, exist_ok=True)
        shot = OUTPUT / "lstm-page.png"
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 20_000
        print(f"\nscreenshot of the LSTM page: {shot}")
        _screenshot_diagrams(page, origin, built)
    finally:
        context.close()
        server.shutdown()
    assert outside == [], outside
    assert failed == [], failed
    assert script_errors == [], script_errors


#: the diagrams an article shows (``site/diagrams``) that loaded: their file names, in page order
DIAGRAMS = """() => [...document.querySelectorAll("article img")]
    .filter(i => i.getAttribute("src").includes("diagrams/") && i.complete && i.naturalWidth > 0)
    .map(i => i.getAttribute("src").split("/").pop())"""


def _diagrams_expected(rel: str) -> list:
    """A cell page's diagrams: the step, one frame per gate, the network unrolled."""
    cell = derive.load(Path(rel).stem)
    return [f"{cell.name}.svg", *(f"{cell.name}_gate_{g}.svg" for g in cell.gates), f"{cell.name}_unrolled.svg"]


USER_CELL = r"""name = "user_gated"
input = "x"
states = ["h"]
output = "h"
gates = ["a"]
equations = '''
a_t = \sigma(W_a x_t + U_a h_{t-1} + b_a)
\tilde{h}_t = \tanh(W_h x_t + U_h (a_t \odot h_{t-1}) + b_h)
h_t = (1 - a_t) \odot h_{t-1} + a_t \odot \tilde{h}_t
'''
"""


def _screenshot_diagrams(page, origin: str, built: Path) -> None:
    """The LSTM's diagram as its page shows it, and a user's cell drawn by the code behind
    ``derive show SPEC --diagram`` and served from the same origin (build/test-output/)."""
    from derive.diagrams import cell_svg

    page.goto(f"{origin}/cells/lstm.html", wait_until="load")
    img = page.locator("article img[src$='diagrams/lstm.svg']")
    img.scroll_into_view_if_needed()
    img.screenshot(path=str(OUTPUT / "lstm-diagram.png"))
    user = {"user-cell.svg": cell_svg(derive.parse_spec(USER_CELL, "user_gated.toml")),
            "user-cell.html": '<!doctype html><body style="margin:8px"><img src="user-cell.svg" alt="user cell"></body>'}
    for name, text in user.items():
        (built / name).write_text(text, encoding="utf-8")
    try:
        page.goto(f"{origin}/user-cell.html", wait_until="load")
        assert page.evaluate("document.querySelector('img').naturalWidth") > 0
        page.locator("img").screenshot(path=str(OUTPUT / "user-cell-diagram.png"))
    finally:
        for name in user:  # the built site stays as the build left it
            (built / name).unlink()
    for name in ("lstm-diagram.png", "user-cell-diagram.png"):
        assert (OUTPUT / name).stat().st_size > 10_000, name
        print(f"screenshot: {OUTPUT / name}")


# ------------------------------------------------------------------ reading the pages back


def sections(markdown: str) -> dict:
    """``{"## heading": text}``."""
    out, current = {}, ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = []
        elif current:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def equations(text: str) -> list[str]:
    """Every ``lhs = rhs`` line of the display formulas in ``text`` (aligned blocks split)."""
    out = []
    for tex, display in split_math(text)[1]:
        if not display:
            continue
        body = re.sub(r"\\(begin|end)\{aligned\}", "", tex)
        lines = [line.replace("&=", "=").strip() for line in re.split(r"\\\\", body)]
        out += [line for line in texlines.joined(lines) if "=" in line]  # a long sum: one term per line
    return out


def page(name: str) -> dict:
    return sections((SITE / "cells" / f"{name}.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", CELLS)
def test_cell_page_gradients_are_the_derivation(name):
    """Each adjoint, input gradient, parameter gradient and Jacobian block shown on the page,
    parsed with the project's grammar, is correct for this cell (numbers at 30 digits)."""
    s = page(name)
    claims = [e for e in equations(s["Backpropagation through time"]) if not re.match(r"\\delta \w+_\{?0", e)]
    jacobian = equations(s["State Jacobian"])
    named = [e for e in jacobian if e.startswith("\\kappa_")]  # the chains' common factors, named once
    claims += [e for e in jacobian if e not in named]
    assert len(claims) >= 4
    if spec.load(name).clock is not None:  # M (.) sum_t ...: the checker compares a block-triangular
        claims = [c.replace(r"\mathbb{M} \odot ", "") for c in claims]  # matrix's gradient on its free entries
    for claim in claims:
        r = derive.check(name, claim, let=[k for k in named if k.split("=")[0].strip() in claim])
        assert r.verdict == "correct", (claim, r.report())


@pytest.mark.parametrize("name", CELLS)
def test_cell_page_counts_are_the_derivation(name):
    """Every row of the counts table: correct in the cell's own convention, and recognised as
    the count of a named convention in the others."""
    s = page(name)["Parameter counts (per layer and direction)"]
    own = counts.default_convention(spec.load(name))
    rows = [line for line in s.splitlines() if line.startswith("| ") and "$" in line]
    assert len(rows) == len(counts.CONVENTIONS)
    for convention, row in zip(counts.CONVENTIONS, rows):  # the rows in the order of CONVENTIONS
        ((formula, _),) = split_math(row)[1]
        r = derive.check(name, f"N = {formula}")
        assert r.verdict == ("correct" if convention == own else r.verdict) and r.ok, (row, r.report())


@pytest.mark.parametrize("name", CELLS)
def test_cell_page_forward_equations_reproduce_the_kernel(name):
    """The spec equations as the page shows them, evaluated step by step in float64 by the
    formula grammar's evaluator, give the generated kernel's outputs and final states."""
    k = derive.kernel(name)
    cell = spec.load(name)
    lines = equations(page(name)["Forward step"].split("The derivation names the argument")[0])
    assert len(lines) == len(cell.equations)
    parsed = [parse_formula(line) for line in lines]
    names = Names(cell, {})
    rng = np.random.default_rng(5)
    proj = 3 if "P" in k.STATE_DIMS.values() else None
    size = {"I": 3, "H": 4, "P": proj}
    size["I"] = size[k.INPUT_DIM]  # a spec with sizes = { x = "H" } reads an input of the hidden size
    params = k.init_params(size["I"], size["H"], proj_size=proj, seed=6)
    T = 5
    x = rng.standard_normal((T, 1, size["I"]))
    s0 = {s: rng.standard_normal((1, size[k.STATE_DIMS[s]])) for s in k.STATES}
    y, sT, _ = k.forward(x, s0, params)

    env = {p.symbol: params[p.key] for p in cell.params.values()}
    prev = {ir.at(s, -1): s0[ir.ref(s).key][0] for s in cell.states}
    for t in range(T):
        # the input's taps x_{t-k} (QRNN window 2) are zero before the first step
        taps = {ir.at(cell.input, -j): x[t - j, 0] if t >= j else np.zeros(size["I"]) for j in cell.taps}
        step = {**env, **prev, **taps, cell.input: x[t, 0]}
        if cell.clock is not None:  # the clock's update mask at step t (counted from 0); W_H masked
            step[cell.clock.mask] = np.array(cell.clock.mask_at(t, size["H"]), dtype=float)
            step.update({cell.params[k].symbol: env[cell.params[k].symbol] * np.array(
                cell.clock.block_pattern(size["H"])) for k in cell.clock.masked})
        for f in parsed:
            target = names.resolve(f.lhs).value
            step[target] = Evaluator(names, step)(f.rhs).val
        np.testing.assert_allclose(step[cell.output], y[t, 0], rtol=1e-12, atol=1e-14)
        prev = {ir.at(s, -1): step[s] for s in cell.states}
    for s in cell.states:
        np.testing.assert_allclose(prev[ir.at(s, -1)], sT[ir.ref(s).key][0], rtol=1e-12, atol=1e-14)


def test_a_wrong_sign_on_a_page_is_caught():
    """What the tests above would see if a template printed a wrong sign."""
    s = page("lstm")
    (dc,) = [e for e in equations(s["Backpropagation through time"]) if e.startswith(r"\delta c_t ")]
    assert derive.check("lstm", dc).verdict == "correct"
    flipped = dc.replace(" + ", " - ", 1)
    assert flipped != dc
    r = derive.check("lstm", flipped)
    assert r.verdict == "wrong" and r.counterexample


ELEMENTWISE = [n for n in derive.ACTIVATIONS if derive.activation(n).stanza.kind == "elementwise"]


def test_activation_pages_definition_and_derivative_are_the_activation():
    """Each activation page's f(x) and f'(x), read with the grammar, are this activation's.
    Piecewise definitions (printed as \\begin{cases}) are outside the claim grammar; the
    others must all be read and be right, and there must be at least a dozen of them."""
    read = 0
    for name in ELEMENTWISE:
        s = sections((SITE / "activations" / f"{name}.md").read_text(encoding="utf-8"))
        for section in ("Definition", "Derivative"):
            (line,) = equations(s[section])
            if r"\begin{cases}" in line:
                continue
            r = derive.check(name, line)
            assert r.verdict == "correct", (name, line, r.report())
            read += 1
    assert read >= 12, read


# ------------------------------------------------------------------ the math renderer


def test_math_is_cut_out_of_markdown_but_code_is_left_alone():
    md = "a $x_t$ b\n\n$$\n\\frac{a}{b}\n$$\n\n`$not math$` and\n\n```python\ny = '$1'  # $x$\n```\n$5 and $6\n"
    text, formulas = split_math(md)
    assert formulas == [("x_t", False), ("\\frac{a}{b}", True)]
    assert "`$not math$`" in text and "y = '$1'  # $x$" in text and "$5 and $6" in text


def test_a_formula_katex_cannot_read_fails_with_its_message():
    root = ROOT
    try:
        kdir = katex_dir(root)
    except Exception as e:  # PluginError when npm ci has not run
        pytest.skip(str(e))
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    r = Renderer(kdir)
    try:
        good, bad = r.render([("h_t = o_t \\odot \\tanh(c_t)", True), ("\\frac{a}{", False)])
    finally:
        r.close()
    assert "katex-display" in good["html"] and "error" not in good
    assert "html" not in bad and "expected" in bad["error"]


def test_a_paper_count_that_is_not_the_derivations_stops_the_build(tmp_path):
    """The [paper] count is a claim: checked with derive check when the page is made; a wrong
    one is a located error (the count's line in the spec), a right one is shown with its
    verdict."""
    from derive.docs.paper import paper_section
    from derive.symbolic import bptt

    text = (resources.files("derive.cells") / "mgu.toml").read_text(encoding="utf-8")
    good = tmp_path / "mgu_copy.toml"
    good.write_text(text.replace('name = "mgu"', 'name = "mgu_copy"'))
    section = paper_section("mgu_copy", bptt.derive(spec.load(str(good))))
    assert section["count"]["latex"] == "2 I H + 2 H^2 + 2 H" and "equal" in section["count"]["how"]
    assert [r["spec"] for r in section["rows"]] == spec.load(str(good)).equations
    bad = tmp_path / "mgu_wrong.toml"
    bad.write_text(good.read_text().replace('count = "2 I H + 2 H^2 + 2 H"', 'count = "2 I H + 2 H^2 + 3 H"'))
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if ln.startswith("count ="))
    with pytest.raises(derive.DeriveError) as e:
        paper_section("mgu_wrong", bptt.derive(spec.load(str(bad))))
    assert str(e.value).startswith(f"{bad}:{line}:1: error: [paper] count '2 I H + 2 H^2 + 3 H'"), str(e.value)


@pytest.mark.parametrize("reference,shown", [
    ("Elman (1990), Finding Structure in Time", "Elman (1990)"),
    ("Hochreiter & Schmidhuber (1997), Long Short-Term Memory", "Hochreiter & Schmidhuber (1997)"),
    ("Greff et al. (2017), LSTM: A Search Space Odyssey", "Greff et al. (2017)"),
    ("Sak, Senior & Beaufays (2014), Long Short-Term Memory ...", "Sak et al. (2014)"),
    ("PyTorch torch.nn.RNN", ""),
])
def test_the_zoo_names_a_cells_paper(reference, shown):
    from derive.docs import zoo

    assert zoo.paper_of([reference]) == shown


def test_the_zoos_jacobian_norm_is_the_product_of_the_step_jacobians():
    """For the Elman RNN, d h_t / d h_0 = prod_k diag(1 - h_k^2) W_hh, computed here with NumPy
    from the same parameters and inputs: the zoo's figure (from the kernel's backward) agrees."""
    from derive.docs import zoo

    k = derive.kernel("rnn_tanh")
    p = k.init_params(zoo.HIDDEN, zoo.HIDDEN, seed=zoo.SEED)
    x = np.random.default_rng(zoo.SEED + 1).standard_normal((3, zoo.HIDDEN))
    h, J = np.zeros(zoo.HIDDEN), np.eye(zoo.HIDDEN)
    expected = []
    for t in range(3):
        h = np.tanh(p["W_xh"] @ x[t] + p["W_hh"] @ h + p["b_h"])
        J = np.diag(1 - h ** 2) @ p["W_hh"] @ J
        expected.append(np.linalg.norm(J, 2))
    shown = zoo.state_jacobian_norms("rnn_tanh", steps=(1, 2, 3))
    assert shown == [float(f"{e:.3g}") for e in expected]


def test_verification_figures_have_a_floor():
    """A page's verification figure is a power-of-ten bound, never below its witness's floor, so the
    page is the same bytes on machines whose BLAS rounds the last bits differently."""
    from derive.docs.verification import FLOORS, bound
    assert bound(3e-10, FLOORS["differences"]) == bound(9e-9, FLOORS["differences"]) == "< 1e-7"
    assert bound(2e-7, FLOORS["differences"]) == "< 1e-6"
    assert bound(4e-16, FLOORS["derivation"]) == bound(5e-14, FLOORS["derivation"]) == "< 1e-13"
    assert bound(0.0) == "0 (exact)" and bound(3e-10) == "< 1e-9"


#: review 4.10 (search in Chinese): jieba segments the Chinese text at build time, so a word inside a longer
#: term finds its page (裁剪 "clip" in 梯度裁剪 "gradient clipping")
CHINESE_QUERIES = [("遗忘门", "glossary.html"), ("裁剪", "glossary.html"), ("偏移", "concepts/compare_activations.html")]


@SITE_GROUP
def test_the_search_index_reads_each_formula_as_its_tex(built):
    """KaTeX's HTML stays out of the search index (its glyphs and MathML read as noise such as
    "δvt​=∂L/∂vt​\\delta v_t"); each formula's TeX is indexed in its place (derive.docs.katex.deferred)."""
    docs = json.loads((built / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]
    text = " ".join(d["text"] for d in docs)
    assert "\u2212" not in text  # KaTeX writes a minus as U+2212: no rendered formula was indexed
    assert r"\delta v_t = \partial L / \partial v_t" in text  # index.md's "How to read a page"
    html = (built / "index.html").read_text(encoding="utf-8")
    assert "data-derive-katex" not in html and html.count('class="katex"') >= 10  # every formula put back


@SITE_GROUP
def test_search_finds_chinese_terms(built, browser):
    import json

    index = json.loads((built / "search" / "search_index.json").read_text(encoding="utf-8"))
    glossary = " ".join(d["text"] for d in index["docs"] if d["location"].startswith("glossary"))
    assert "梯度\u200b裁剪" in glossary  # segmented with zero-width spaces, which the separator splits on
    server = _serve(built)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    context = browser.new_context()
    try:
        for query, expected in CHINESE_QUERIES:
            page = context.new_page()
            page.goto(f"{origin}/index.html", wait_until="load")
            page.fill("input.md-search__input", query)
            page.wait_for_selector(".md-search-result__item a", timeout=20000)
            hrefs = page.eval_on_selector_all(".md-search-result__item a", "els => els.map(e => e.href)")
            assert any(f"/{expected}" in h for h in hrefs), (query, hrefs[:5])
            page.close()
    finally:
        context.close()
        server.shutdown()
