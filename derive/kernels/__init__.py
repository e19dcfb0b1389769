"""Generated NumPy kernels (``derive build`` / ``derive kernels`` write them; never edit by hand).

``activations``: the stable f and f' of every activation in the catalogue.
"""
