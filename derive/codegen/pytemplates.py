"""The Jinja2 templates of generated Python (the kernel modules), shipped inside the package.

``python_template(name)`` loads ``derive/codegen/templates/<name>`` through the package's
resources, so an installed copy (``pip install .``, not editable) generates kernels for a
user's spec as a checkout does. Free text reaches the source only through the ``docstring``
and ``comment`` filters (``pysource``). The Markdown page templates stay in the checkout's
``templates/`` (``derive.docs.pages``).
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from derive.codegen import pysource


@lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("derive.codegen", "templates"),
                             undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["docstring"] = pysource.docstring
    env.filters["comment"] = pysource.comment
    return env


def python_template(name: str) -> jinja2.Template:
    """A template that renders Python source."""
    return environment().get_template(name)
