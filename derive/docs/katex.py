"""An MkDocs plugin that renders every ``$...$`` and ``$$...$$`` with KaTeX at build time.

The pages then carry finished HTML (and MathML) and need no JavaScript for math; a formula
KaTeX cannot parse fails the build, naming the page and the formula. KaTeX comes from the
npm registry (``npm ci`` puts it in ``node_modules/katex``); its stylesheet and fonts are
copied into the built site, so nothing is fetched from the network when a page is read.

Math is cut out of the Markdown before Python-Markdown sees it (so ``_`` and ``\\\\`` inside a
formula are never taken for emphasis or escapes), replaced by a placeholder; the page's HTML
gets the formula's TeX (hidden) in its place, which the search plugin indexes, and the finished page
gets KaTeX's HTML (``deferred``). Code blocks and inline code are left alone.
"""

from __future__ import annotations

from html import escape

import json
import re
import shutil
import subprocess
from pathlib import Path

from mkdocs.config import config_options
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin

RENDERER = Path(__file__).with_name("render_math.js")
ASSETS = "assets/katex"  # where the stylesheet and fonts go in the built site

_CODE = re.compile(r"^(```|~~~).*?^\1[ \t]*$|`[^`\n]+`", re.M | re.S)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\\\s])\$(?!\d)", re.S)
_TOKEN = "KATEX{:05d}Z"
_TOKEN_RE = re.compile(r"<p>(KATEX\d{5}Z)</p>|(KATEX\d{5}Z)")


def split_math(markdown: str) -> tuple[str, list[tuple[str, bool]]]:
    """``(markdown with placeholders, [(tex, display), ...])``; code spans are kept as they are."""
    formulas: list[tuple[str, bool]] = []

    def cut(m: re.Match) -> str:
        display = m.group(1) is not None
        formulas.append(((m.group(1) if display else m.group(2)).strip(), display))
        return _TOKEN.format(len(formulas) - 1)

    out, pos = [], 0
    for code in _CODE.finditer(markdown):
        out.append(_MATH.sub(cut, markdown[pos:code.start()]))
        out.append(code.group(0))
        pos = code.end()
    out.append(_MATH.sub(cut, markdown[pos:]))
    return "".join(out), formulas


_DEFERRED = '<span data-search-exclude data-derive-katex="{:05d}"></span>'
_DEFERRED_RE = re.compile(r'<span data-search-exclude data-derive-katex="(\d{5})"></span>')


def deferred(k: int, tex: str) -> str:
    """What the page's content holds for formula ``k`` while the search plugin indexes it. The finished
    page (``on_post_page``) reads ``<span data-search-exclude>KaTeX's HTML</span><span class="derive-tex"
    hidden>TeX</span>``: KaTeX's HTML kept out of the search index (its glyphs, MathML and TeX would be
    indexed as one noise word such as "hth_tht"), and the formula's TeX, hidden, indexed in its place.
    KaTeX's HTML goes in after indexing: the search plugin parses every tag of the content, excluded or
    not, and KaTeX's are most of a page's tags (indexing them took three quarters of the MkDocs build)."""
    return _DEFERRED.format(k) + f'<span class="derive-tex" hidden>{escape(tex)}</span>'


def katex_dir(root: Path) -> Path:
    """The installed KaTeX package, or a clear error telling how to install it."""
    path = root / "node_modules" / "katex"
    if not (path / "dist" / "katex.min.css").is_file():
        raise PluginError(f"KaTeX is not installed in {path}: run `npm ci` in {root} "
                          "(it installs the version pinned in package-lock.json)")
    return path


class Renderer:
    """One long-lived ``node`` process running ``render_math.js``."""

    def __init__(self, katex: Path):
        node = shutil.which("node")
        if node is None:
            raise PluginError("Node.js (`node`) is not on PATH; it runs KaTeX to render the formulas")
        self.proc = subprocess.Popen([node, str(RENDERER), str(katex)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def render(self, formulas: list[tuple[str, bool]]) -> list[dict]:
        self.proc.stdin.write(json.dumps(formulas) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise PluginError("the KaTeX renderer stopped unexpectedly")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):  # interrupted mid-formula: stop it quietly
                self.proc.kill()
                self.proc.wait()


class KatexPlugin(BasePlugin):
    """``plugins: [derive-katex]`` in mkdocs.yml."""

    config_scheme = (("root", config_options.Type(str, default="")),)

    def __init__(self):
        self.renderer = None
        self.rendered: dict[str, list[str]] = {}  # page -> KaTeX's HTML of each formula
        self.formulas: dict[str, list[str]] = {}  # page -> each formula's TeX
        self.count = 0

    def on_config(self, config):
        root = Path(self.config["root"] or Path(config.config_file_path).parent).resolve()
        self.katex = katex_dir(root)
        config.extra_css.insert(0, f"{ASSETS}/katex.min.css")
        return config

    def on_pre_build(self, config):
        self.renderer = Renderer(self.katex)
        self.count = 0

    def on_page_markdown(self, markdown, page, config, files):
        text, formulas = split_math(markdown)
        results = self.renderer.render(formulas) if formulas else []
        for (tex, display), r in zip(formulas, results):
            if "error" in r:
                kind = "display" if display else "inline"
                raise PluginError(f"{page.file.src_uri}: KaTeX cannot render the {kind} formula "
                                  f"${tex}$: {r['error']}")
        self.rendered[page.file.src_uri] = [r["html"] for r in results]
        self.formulas[page.file.src_uri] = [tex for tex, _ in formulas]
        self.count += len(results)
        return text

    def on_page_content(self, html, page, config, files):
        """Each placeholder becomes the formula's ``deferred`` marker and hidden TeX (what the search
        plugin, which runs next, indexes)."""
        tex = self.formulas.pop(page.file.src_uri)

        def marker(m: re.Match) -> str:
            k = int((m.group(1) or m.group(2))[5:10])
            return deferred(k, tex[k])
        return _TOKEN_RE.sub(marker, html)

    def on_post_page(self, output, page, config):
        """The finished page: each formula's KaTeX HTML in place of its ``deferred`` marker."""
        rendered = self.rendered.pop(page.file.src_uri)
        return _DEFERRED_RE.sub(lambda m: f"<span data-search-exclude>{rendered[int(m.group(1))]}</span>", output)

    def on_post_build(self, config):
        self._close()
        dest = Path(config.site_dir) / ASSETS
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        shutil.copy2(self.katex / "dist" / "katex.min.css", dest / "katex.min.css")
        shutil.copytree(self.katex / "dist" / "fonts", dest / "fonts")

    def on_build_error(self, error):
        self._close()

    def _close(self):
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
