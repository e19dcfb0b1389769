"""Lay a ``Graph`` out with Graphviz's ``dot`` (Debian's graphviz package) and return its SVG.

The DOT text is a function of the graph alone (nodes and edges in creation order, fixed
styles), ``dot`` is deterministic, and the SVG is kept from its ``<svg`` tag on: the XML
declaration and the comment naming Graphviz's version are dropped, so the bytes are the same
from run to run and the first line is derive's header. Text stays text (the browser's sans
serif); nothing is fetched.
"""

from __future__ import annotations

import shutil
import subprocess
from html import escape

from derive.diagrams.graph import Graph, Node
from derive.errors import DeriveError

INK, FADED, FADED_TEXT, ACCENT = "#37474f", "#cfd8dc", "#90a4ae", "#e65100"
#: kind -> DOT node attributes (fill colours after the usual cell drawings: yellow layers, pink operators)
STYLES = {
    "input": 'shape=ellipse, style=filled, fillcolor="#e3f2fd"',
    "given": 'shape=ellipse, style="filled,dashed", fillcolor="#eceff1"',
    "state_in": 'shape=box, style="rounded,filled", fillcolor="#c5cae9"',
    "state_out": 'shape=box, style="rounded,filled", fillcolor="#c5cae9", peripheries=2',
    "state": 'shape=box, style="rounded,filled", fillcolor="#c5cae9"',
    "gate": 'shape=ellipse, style=filled, fillcolor="#ffe0b2"',
    "vector": 'shape=ellipse, style=filled, fillcolor="#ffffff"',
    "layer": 'shape=box, style=filled, fillcolor="#fff59d", margin="0.12,0.04"',
    "op": 'shape=circle, style=filled, fillcolor="#f8bbd0", width=0.4, margin=0.02, fontsize=12',
    "output": 'shape=plaintext, fontsize=11',
    "loss": 'shape=octagon, style=filled, fillcolor="#ffcdd2"',
}
GRAPH = ('rankdir=LR; nodesep=0.22; ranksep=0.32; bgcolor="transparent"; '
         'node [fontname="sans-serif", fontsize=14, color="{ink}", fontcolor="{ink}", penwidth=1.2, height=0.36]; '
         'edge [color="{ink}", arrowsize=0.7, penwidth=1.1];')


def html_label(node: Node) -> str:
    base = escape(node.label.base)
    if not node.label.sub:
        return f"<{base}>"
    return f'<{base}<SUB><FONT POINT-SIZE="10">{escape(node.label.sub)}</FONT></SUB>>'


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph, highlight: set | None = None) -> str:
    """DOT text; with ``highlight`` (a set of edges) those edges and their ends are drawn in the
    accent colour and everything else faded."""
    lit = {n for e in (highlight or ()) for n in e}
    lines = [f"digraph {_quote(graph.title)} {{", "  " + GRAPH.format(ink=INK)]
    for node in graph.nodes.values():
        attrs = [STYLES[node.kind], f"label={html_label(node)}"]
        if node.group:
            attrs.append(f"group={_quote(node.group)}")
        if highlight is not None:
            attrs.append(f'color="{ACCENT}", penwidth=2.4' if node.id in lit
                         else f'color="{FADED}", fontcolor="{FADED_TEXT}"')
        lines.append(f"  {_quote(node.id)} [{', '.join(attrs)}];")
    if len(graph.first) > 1:  # an invisible chain keeps them in this order, top to bottom
        lines.append(f"  {{ rank=source; {' -> '.join(_quote(m) for m in graph.first)} [style=invis]; }}")
    elif graph.first:
        lines.append(f"  {{ rank=source; {_quote(graph.first[0])}; }}")
    for tail, head in graph.edges:
        attrs = []
        if graph.nodes[tail].group and graph.nodes[tail].group == graph.nodes[head].group:
            attrs.append("weight=8")
        if highlight is not None:
            attrs.append(f'color="{ACCENT}", penwidth=2.6' if (tail, head) in highlight else f'color="{FADED}"')
        lines.append(f"  {_quote(tail)} -> {_quote(head)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, mark: str) -> str:
    """The SVG ``dot`` makes of ``dot_text``, with ``mark`` (an XML comment) as its first line."""
    exe = shutil.which("dot")
    if exe is None:
        raise DeriveError("Graphviz's dot is not installed; diagrams need it (apt-get install graphviz)")
    proc = subprocess.run([exe, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise DeriveError(f"dot failed on the diagram: {proc.stderr.decode('utf-8', 'replace').strip()}")
    svg = proc.stdout.decode("utf-8")
    return f"{mark}\n<svg {svg.split('<svg ', 1)[1]}"
