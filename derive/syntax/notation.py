"""The literature's spellings of a claim, rewritten to the formula grammar's before it is parsed.

Papers, textbooks, courses and blogs print one quantity many ways; ``derive check`` reads them by
rewriting each to the one spelling ``formulas.py`` parses, keeping a map from every character of
the rewritten text back to the text as typed, so an error still points at the typed column.

| typed (where it is printed)                                   | read as |
|---------------------------------------------------------------|---------|
| ``y^t``, ``h^{(t)}``, ``\\delta z^{t+1}`` (Goodfellow, blogs) | ``y_{t}``, ``h_{t}``, ``\\delta z_{t+1}`` |
| ``c^{\\langle t \\rangle}``, ``a^{<t>}`` (Ng's course)          | ``c_{t}`` |
| ``h^{(t-1)\\top}``                                             | ``h_{t-1}^\\top`` |
| ``\\mathbf{h}_t``, ``\\boldsymbol{h}_t``, ``\\vec{h}_t``         | ``h_t`` |
| ``\\mathcal{L}``, ``\\ell``                                     | ``L`` |
| ``\\delta_h^{(t)}``, ``\\delta_{o,t}`` (blogs)                  | ``\\delta h_{t}``, ``\\delta o_{t}`` |
| ``\\nabla_{W} L``, ``\\nabla_{h^{(t)}} \\mathcal{L}`` (Goodfellow) | ``\\frac{\\partial L}{\\partial W}`` |
| ``|x|``, ``\\left| x \\right|``, ``\\lvert x \\rvert``            | ``\\abs(x)`` |
| ``\\begin{cases} a & x > 0 \\\\ b & \\text{otherwise} \\end{cases}`` | ``&`` a column, ``\\text{if}`` dropped |
| Unicode ``⊙ σ δ ∂ ᵀ``, ``$...$``                               | LaTeX |

Nothing is evaluated: each rewrite is a regular expression over the text.
"""

from __future__ import annotations

import re

from derive.errors import DeriveError, Pos

#: Unicode a person pastes from a paper or a blog, as the grammar spells it
UNICODE = {
    "⊙": r" \odot ", "∘": r" \circ ", "·": r" \cdot ", "×": r" \times ", "σ": r"\sigma ", "δ": r"\delta ",
    "∂": r"\partial ", "∑": r"\sum_t ", "Σ": r"\sum_t ", "ᵀ": r"^\top", "′": "'", "−": "-", "²": "^2",
    "₁": "_1", "₀": "_0", "ₜ": "_t", "⊤": r"\top ", "∇": r"\nabla ", "λ": r"\lambda ", "α": r"\alpha ",
    "β": r"\beta ", "φ": r"\phi ", "Φ": r"\Phi ", "≥": r" \geq ", "≤": r" \leq ", "ℓ": r"\ell ",
}

_BRACED = r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}"  # {...} with two levels of braces inside
_OFFSET = r"(?:\s*([+-])\s*(\d+))?"
#: a time written as a superscript, after a name: ^t, ^{t+1}, ^{(t)}, ^(t), ^{\langle t \rangle}, ^{<t>};
#: a transpose or prime may follow inside the braces, h^{(t-1)\top}
_SUPER_TIME = re.compile(
    r"(?<=[A-Za-z0-9}])\^(?:"
    r"\{\s*(?:\(\s*t" + _OFFSET + r"\s*\)|\\langle\s*t" + _OFFSET + r"\s*\\rangle|<\s*t" + _OFFSET + r"\s*>"
    r"|t" + _OFFSET + r")\s*(\\top|\\intercal|T|\\prime|')?\s*\}"
    r"|\(\s*t" + _OFFSET + r"\s*\)"
    r"|\\langle\s*t" + _OFFSET + r"\s*\\rangle"
    r"|t(?![A-Za-z0-9_]))")
_BOLD = re.compile(r"\\(?:mathbf|boldsymbol|bm|vec|pmb|mathbfit|bold)\s*\{\s*(\\?[A-Za-z]+(?:_(?:\{[^{}]*\}|"
                   r"[A-Za-z0-9]))?)\s*\}")
_LOSS = re.compile(r"\\math(?:cal|scr)\{([A-Z])\}|\\ell(?![A-Za-z])")
_DELTA_SUB = re.compile(r"\\delta\s*_\s*(" + _BRACED + r"|\\(?:tilde|hat|bar)\{[A-Za-z]\}|[A-Za-z0-9])")
_NABLA = re.compile(r"\\nabla\s*_\s*(" + _BRACED + r"|\\?[A-Za-z]+(?:_(?:\{[^{}]*\}|[A-Za-z0-9]))?)"
                    r"(\s*(?:L|E|J)(?![A-Za-z0-9_{]))?")
_CASES = re.compile(r"\\begin\{cases\}(.*?)\\end\{cases\}", re.S)
_TEXT_IN_CASES = re.compile(r"\\(?:text|mathrm|textrm|mbox)\s*\{\s*(if|for|when|where|,|if\s*,)?\s*\}"
                            r"|\\(?:text|mathrm|textrm|mbox)\s*\{\s*(otherwise|else|sonst|o\.w\.|elsewhere)\s*\.?\s*\}"
                            r"|\\(?:text|mathrm|textrm|mbox)\s*\{\s*(?:if|for)\s+")
_TIME_PART = re.compile(r"^t(?:\s*[+-]\s*\d+)?$")


class Source:
    """A text being rewritten, with the offset in the typed text of each of its characters."""

    def __init__(self, typed: str):
        self.typed = typed
        self.text = typed
        self.origin = list(range(len(typed) + 1))  # one more: the end

    def sub(self, pattern: re.Pattern, repl, start: int = 0, end: int | None = None) -> None:
        """Replace each match of ``pattern`` in text[start:end] by ``repl(match)``; the new characters
        point at the match's start in the typed text."""
        end = len(self.text) if end is None else end
        out, origin, last = [], [], 0
        for m in pattern.finditer(self.text, start, end):
            new = repl(m)
            if new is None or new == m.group(0):
                continue
            out.append(self.text[last:m.start()])
            origin += self.origin[last:m.start()]
            out.append(new)
            origin += [self.origin[m.start()]] * len(new)
            last = m.end()
        if not out:
            return
        out.append(self.text[last:])
        origin += self.origin[last:]
        self.text, self.origin = "".join(out), origin

    def slice(self, a: int, b: int) -> None:
        self.text, self.origin = self.text[a:b], self.origin[a:b] + [self.origin[b]]

    def pos(self, line: int, column: int) -> Pos:
        """The typed text's line and column of the rewritten text's ``line``:``column``."""
        lines = self.text.split("\n")
        offset = sum(len(x) + 1 for x in lines[:max(line - 1, 0)]) + max(column - 1, 0)
        return self.typed_pos(offset)

    def typed_pos(self, offset: int) -> Pos:
        o = self.origin[min(max(offset, 0), len(self.origin) - 1)]
        return Pos(self.typed.count("\n", 0, o) + 1, o - (self.typed.rfind("\n", 0, o) + 1) + 1)


def _time(sign, number) -> str:
    return "t" if not sign or int(number) == 0 else f"t{sign}{int(number)}"


def _super_time(m: re.Match) -> str:
    groups = m.groups()
    pairs = [(groups[i], groups[i + 1]) for i in range(0, 8, 2)] + [(groups[9], groups[10]), (groups[11], groups[12])]
    sign, number = next(((s, n) for s, n in pairs if s), (None, None))
    suffix = groups[8]
    tail = "" if not suffix else ("'" if suffix in ("\\prime", "'") else "^\\top")
    return "_{" + _time(sign, number) + "}" + tail


def _delta_sub(src: Source, m: re.Match) -> str:
    inner = m.group(1)
    inner = inner[1:-1].strip() if inner.startswith("{") else inner
    parts = [p.strip() for p in _split_commas(inner)]
    if _TIME_PART.match(parts[0].replace(" ", "")):
        raise DeriveError(rf"\delta_{{{inner}}} names no vector (sources mean dh_t or a pre-activation's "
                          rf"gradient by it): write \delta h_{{{inner}}} or \delta a_{{h,{inner}}}",
                          src.typed_pos(m.start()))
    name, rest = parts[0], parts[1:]
    if rest:
        return rf"\delta {name}_{{{','.join(rest)}}}"
    return rf"\delta {name}"


def _split_commas(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def _nabla(m: re.Match) -> str:
    inner = m.group(1)
    inner = inner[1:-1].strip() if inner.startswith("{") else inner
    return rf"\frac{{\partial L}}{{\partial {inner}}}"


_BAR = re.compile(r"\\left\s*\||\\right\s*\||\\lvert|\\rvert|\\left\s*\\lvert|\\right\s*\\rvert|\|")
_OPENS_AFTER = tuple("=+-*/(,{[^;|&") + ("\\cdot", "\\odot", "\\circ", "\\times", "\\left(", "\\sqrt")


def _bars(src: Source) -> None:
    """``|a|`` as ``\\abs(a)``: a bar opens at the start, after an operator or an opening bracket,
    or when none is open; otherwise it closes the innermost open one."""
    text, depth = src.text, 0
    kinds = []
    for m in _BAR.finditer(text):
        tok = m.group(0).replace(" ", "")
        before = text[:m.start()].rstrip()
        if tok.startswith("\\left") or tok == "\\lvert":
            opens = True
        elif tok.startswith("\\right") or tok == "\\rvert":
            opens = False
        else:
            opens = depth == 0 or not before or before.endswith(_OPENS_AFTER)
        depth += 1 if opens else -1
        if depth < 0:
            raise DeriveError("a closing | without an opening one", src.typed_pos(m.start()))
        kinds.append(opens)
    if depth:
        raise DeriveError("an absolute value | ... | is not closed", src.typed_pos(len(text)))
    it = iter(kinds)
    src.sub(_BAR, lambda m: r" \abs(" if next(it) else ") ")


def _cases(src: Source) -> None:
    """Inside ``\\begin{cases} ... \\end{cases}``: ``&`` separates a value from its condition
    (elsewhere it is ignored, as in an align line), ``\\text{if}`` is dropped and
    ``\\text{otherwise}`` is the last row's condition."""
    while True:
        m = _CASES.search(src.text)
        if m is None:
            return
        a, b = m.start(1), m.end(1)
        before = len(src.text)
        src.sub(_TEXT_IN_CASES, lambda t: r" \otherwise " if t.group(2) else " ", a, b)
        b += len(src.text) - before
        before = len(src.text)
        src.sub(re.compile(r",?\s*&"), lambda t: " ; ", a, b)
        b += len(src.text) - before
        src.sub(re.compile(r"\\begin\{cases\}"), lambda t: r" \cases[ ", m.start(), m.start() + 13)
        b += len(r" \cases[ ") - 13
        src.sub(re.compile(r"\\end\{cases\}"), lambda t: " ] ", b, b + 11)


def rewrite(typed: str) -> Source:
    """The typed claim as the grammar spells it (``Source.text``), with its map back."""
    src = Source(typed)
    for u, latex in UNICODE.items():
        if u in src.text:
            src.sub(re.compile(re.escape(u)), lambda m, latex=latex: latex)
    stripped = src.text.strip()
    lead = len(src.text) - len(src.text.lstrip())
    src.slice(lead, lead + len(stripped))
    for left, right in (("$$", "$$"), ("$", "$"), (r"\[", r"\]"), (r"\(", r"\)")):
        t = src.text
        if t.startswith(left) and t.endswith(right) and len(t) > len(left) + len(right):
            src.slice(len(left), len(t) - len(right))
            inner = src.text.strip()
            lead = len(src.text) - len(src.text.lstrip())
            src.slice(lead, lead + len(inner))
    env = re.search(r"\\begin\s*\{(?!cases\})([^{}]*)\}", src.text)
    if env:
        raise DeriveError(rf"\begin{{{env[1]}}}: only \begin{{cases}} ... \end{{cases}} is read; give one formula "
                          f"per line (--file) without the environment", src.typed_pos(env.start()))
    src.sub(_BOLD, lambda m: m.group(1))
    src.sub(_LOSS, lambda m: m.group(1) or "L")
    src.sub(_SUPER_TIME, _super_time)
    src.sub(_NABLA, _nabla)
    src.sub(_DELTA_SUB, lambda m: _delta_sub(src, m))
    if "|" in src.text or "vert" in src.text:
        _bars(src)
    if "cases" in src.text:
        _cases(src)
    return src


#: what a parse error near a spelling most likely needs: (pattern in the typed text, advice)
ADVICE = [
    (re.compile(r"\^\s*\{?\s*[(<]?\s*(?:\\langle\s*)?[a-su-zA-Z]\b"),
     "write the time as a subscript: c_t, c_{t-1} (a superscript time is read for t only)"),
    (re.compile(r"\\(?:mathbf|boldsymbol|bm|vec)\s*\{[^{}]*\{"), r"write a bold name plainly: h_t for \mathbf{h}_t"),
    (re.compile(r"\\nabla(?!\s*_)"), r"write the gradient as \nabla_{W} L or \frac{\partial L}{\partial W}"),
    (re.compile(r"\\sum\s*_\s*\{\s*[a-su-z]\s*="), r"sum over t: \sum_{t=1}^{T} (the summand's time index is t)"),
    (re.compile(r"\\begin\{(?!cases)"), r"only \begin{cases} ... \end{cases} is read; write one formula per line"),
    (re.compile(r"\bd(?:next|prev)_"), "name the step: dc_{t+1}, dc_{t-1} (dnext_c means different things in "
                                       "different courses' code)"),
    (re.compile(r"[<>]|\\[lg]eq?\b"), r"a comparison belongs in \begin{cases} or \mathbb{1}[u > 0]"),
]


def advice(typed: str) -> str:
    """The nearest accepted spelling for a claim the grammar could not read, or ""."""
    for pattern, text in ADVICE:
        if pattern.search(typed):
            return "; " + text
    return ""
