"""Walkers that only read a claim's tree: its text, as a hint or an error quotes a part of it,
and its top-level signed terms."""

from __future__ import annotations

from derive.checker.visitor import Visitor


class Text(Visitor):
    """A tree as plain text (``dh_t o_t (1 - c_t)``); ``visit(node, True)`` parenthesises a sum."""

    def visit_Num(self, node, wrap=False):
        return node.value

    def visit_Name(self, node, wrap=False):
        return node.text

    def visit_Call(self, node, wrap=False):
        args = ", ".join(self.visit(a) for a in node.args)
        p = "'" if node.prime else ""
        power = node.power if isinstance(node.power, int) else self.visit(node.power, True)
        k = "" if power in (1, "1") else f"^{power}"
        return f"{node.func}{k}{p}({args})"

    def visit_add(self, node, wrap=False):
        s = f"{self.visit(node.args[0])} + {self.visit(node.args[1])}"
        return f"({s})" if wrap else s

    def visit_sub(self, node, wrap=False):
        s = f"{self.visit(node.args[0])} - {self.visit(node.args[1])}"
        return f"({s})" if wrap else s

    def visit_mul(self, node, wrap=False):
        s = " ".join(self.visit(x, "product") for x in node.args)
        return f"({s})" if wrap == "product" else s

    def visit_transpose(self, node, wrap=False):
        return f"{self.visit(node.args[0], 'product')}^T"

    def visit_div(self, node, wrap=False):
        return f"{self.visit(node.args[0], True)} / {self.visit(node.args[1], True)}"

    def visit_neg(self, node, wrap=False):
        return f"-{self.visit(node.args[0], True)}"

    def visit_pow(self, node, wrap=False):
        return f"{self.visit(node.args[0], True)}^{self.visit(node.args[1], True)}"

    def visit_delta(self, node, wrap=False):
        return f"delta {self.visit(node.args[0])}"

    def visit_sum(self, node, wrap=False):
        return f"sum_t {self.visit(node.args[0])}"

    def visit_concat(self, node, wrap=False):
        return "[" + ", ".join(self.visit(x) for x in node.args) + "]"

    def visit_partial(self, node, wrap=False):
        return node.kind


def text(node) -> str:
    return Text().visit(node)


class Terms(Visitor):
    """The top-level terms of a sum with their signs: ``a - (b - c)`` -> [(1, a), (-1, b), (1, c)]."""

    def generic(self, node, sign=1):
        return [(sign, node)]

    def visit_add(self, node, sign=1):
        return self.visit(node.args[0], sign) + self.visit(node.args[1], sign)

    def visit_sub(self, node, sign=1):
        return self.visit(node.args[0], sign) + self.visit(node.args[1], -sign)

    def visit_neg(self, node, sign=1):
        return self.visit(node.args[0], -sign)


def terms(node) -> list:
    return Terms().visit(node, 1)
