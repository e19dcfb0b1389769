"""Sequence-sized buffers the generated kernels reuse from one call to the next.

A kernel's ``forward`` and ``backward`` need arrays of T x B x (columns): tens of megabytes
at training sizes. Fresh memory from the operating system is slow to fill the first
time (every page is faulted in and zeroed, and a GEMM writing into fresh pages from
several BLAS threads is several times slower than into touched ones), so each kernel
keeps the buffers of its earlier calls and hands one out again **only when nothing
outside the workspace refers to it any more**: no array, view, cache dict or tensor made
from it is alive (a NumPy view keeps its base array referenced, so this is the
reference count of the buffer). A caller that keeps ``y`` or a cache simply gets fresh
buffers next time; nothing it holds is ever overwritten.

The memory stays with the kernel after a call (like a caching allocator). ``clear()``
gives it back; ``nbytes`` says how much is held.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

import numpy as np


def _refcount_in_list(bufs: list, k: int) -> int:
    return sys.getrefcount(bufs[k])


#: the reference count of a buffer that only the workspace's list holds, as ``_free`` sees it
_UNREFERENCED = _refcount_in_list([np.empty(0)], 0)


class Workspace:
    """Buffers by (name, shape, dtype); at most ``per_key`` of each and ``keys`` kinds kept."""

    def __init__(self, per_key: int = 4, keys: int = 32):
        self.per_key = per_key
        self.keys = keys
        self._bufs: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _free(bufs: list, k: int) -> bool:
        return _refcount_in_list(bufs, k) <= _UNREFERENCED

    def empty(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array like ``np.empty(shape, dtype)``, reused when free."""
        key = (name, tuple(int(n) for n in shape), np.dtype(dtype).str)
        with self._lock:
            bufs = self._bufs.get(key)
            if bufs is None:
                bufs = self._bufs[key] = []
                while len(self._bufs) > self.keys:
                    self._bufs.popitem(last=False)
            self._bufs.move_to_end(key)
            for k in range(len(bufs)):
                if self._free(bufs, k):
                    return bufs[k]
            buf = np.empty(key[1], dtype)
            if len(bufs) < self.per_key:
                bufs.append(buf)
            return buf

    def clear(self) -> None:
        """Drop every kept buffer (arrays still in use elsewhere stay valid)."""
        with self._lock:
            self._bufs.clear()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(b.nbytes for bufs in self._bufs.values() for b in bufs)
