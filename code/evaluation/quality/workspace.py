"""Scratch arrays kept from one ear-model call to the next, so their memory stays mapped.

The ear model works on a few dozen ``[bands, samples]`` arrays of tens of MB each.
Allocated afresh on every call, they are fresh mappings whose first touch costs a
page fault per page (on a virtual machine, a large share of the model's time). A
``Workspace`` hands out views of buffers it keeps, grown when a longer signal comes;
``thread_workspace()`` is one per thread, for scores that return only numbers
(``haaqi``, ``haspi_v2``), so that no caller ever holds a view of another call's
arrays.
"""

from __future__ import annotations

import math
import threading

import numpy as np

MAX_KEPT_BYTES = 64 << 20  # larger arrays (signals over about 10 s) are not kept

_LOCAL = threading.local()


class Workspace:
    """Named scratch arrays; ``array(name, ...)`` overwrites what that name held before."""

    def __init__(self, keep: bool = True) -> None:
        self._keep = keep
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape``, in memory reused when it fits."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if not self._keep or nbytes > MAX_KEPT_BYTES:
            return np.empty(shape, dtype=dtype)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            buffer = np.empty(nbytes, dtype=np.uint8)
            self._buffers[name] = buffer
        return buffer[:nbytes].view(dtype).reshape(shape)

    def zeros(self, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
        """As ``array``, filled with zeros."""
        out = self.array(name, shape, dtype)
        out.fill(0)
        return out


def thread_workspace() -> Workspace:
    """This thread's workspace (made on first use)."""
    workspace = getattr(_LOCAL, "workspace", None)
    if workspace is None:
        workspace = _LOCAL.workspace = Workspace()
    return workspace
