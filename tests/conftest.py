import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 runs on the PyTorch CPU build


def pytest_configure(config):
    """Under ``-n N`` (pytest-xdist's default ``--dist load``), schedule by ``xdist_group``: the tests
    of one group run on one worker and share its module fixtures (test_site's built site, built
    once rather than once per worker). xdist queues the groups by their number of tests, largest
    first (``pytest_collection_modifyitems``: then the slow tests), so the site's builds and browser
    run (minutes) start at once instead of last."""
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    if getattr(config, "workerinput", {}).get("derive_dist") == "loadgroup":
        config.option.loadgroup = True  # a worker names its tests by group, as --dist loadgroup does


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """What the workers need to know of the controller's scheduling (they parse the command line
    anew, where --dist is still load)."""
    node.workerinput["derive_dist"] = node.config.option.dist


def pytest_collection_modifyitems(items):
    """The long tests first: the grouped ones (the site's), then those marked slow (a full build in a
    copy of the checkout, the brute-force rows), so that none starts last on a worker while the
    other one idles; the rest keep their order."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("xdist_group") else
               1 if item.get_closest_marker("slow") else 2)
