"""``derive check``: a hand-derived formula against the derivation (entry point: ``claims.check``).

| module | job |
| --- | --- |
| ``claims.py`` | ``check(target, formula, let=..., override=...)``: a cell or an activation; the verdict policy (conventions, relatives) |
| ``cell.py`` | cell claims: adjoint, parameter gradient, Jacobian block, told apart by the left side |
| ``counts.py`` | parameter-count claims, as polynomials in I, H, P, per convention |
| ``activation.py`` | an activation's derivative or definition, at points and symbolically |
| ``hints.py`` | for a wrong cell claim: the missing, extra or wrongly signed term, a missing factor, one small edit ("did you mean") |
| ``result.py`` | ``Result`` and ``Verdict``: the verdict and its report text |
| ``names.py`` | a cell's vocabulary: names, aliases, what each name means (``Ref``) |
| ``lets.py`` | ``--let NAME=EXPR`` and ``--override``: definitions, their order and cycles |
| ``files.py`` | ``--file``: a regular UTF-8 file of formulas, its size checked before it is read |
| ``functions.py`` | the functions a formula may call, by every spelling |
| ``numeric.py`` | ``Evaluator``: the right side in float64 at one step, with shapes |
| ``symbolic.py`` | the right side as SymPy/IR, compared with the derivation in a time bound |
| ``deadline.py`` | a time bound on SymPy, in the main thread or any other |
| ``runs.py`` | the witness runs the claims are evaluated on |
| ``visitor.py`` | ``Visitor``, the one walker base every pass over a claim's tree derives from |
| ``tree.py`` | a tree's text and its top-level terms |
"""
