"""Cell diagrams generated from the spec: the step's dataflow and the unrolled graph, as SVG.

``graph`` is the shared data (nodes, edges); ``dataflow`` builds the step's graph from a
cell's assignments (inputs, states in and out, gates, activations, products, sums);
``paths`` picks what a figure highlights (one gate's path, the paths that carry a state's
adjoint through the unrolled network); ``unrolled`` builds the network for T steps; ``dot``
lays a graph out with Graphviz and writes byte-identical SVG; ``figures`` puts them together. Imports go downward only:
``diagrams`` reads ``derive.symbolic``; ``derive.docs`` and the CLI read ``diagrams``.
"""

from derive.diagrams.figures import cell_svg, gate_svg, unrolled_svg

__all__ = ["cell_svg", "gate_svg", "unrolled_svg"]
