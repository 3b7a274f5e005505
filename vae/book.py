"""What the chapters need from the book's build: numbers that the prose quotes.

A chapter computes a number in a code cell and records it with :func:`glue`; its prose shows it
with MyST's ``{glue:text}`name:.2f``` role, so the text always says what the code printed.
"""

from __future__ import annotations

import numbers

import numpy as np
from torch import Tensor


def glue(name: str, value: object) -> object:
    """Record ``value`` under ``name`` for ``{glue:text}`` in the prose, and return it.

    Numbers (Python, numpy, or a tensor with one element on any device) are recorded as Python
    floats or ints, so that a format spec such as ``:.2f`` or ``:.0%`` applies to them. Outside the
    book's build (Colab, a plain Jupyter without myst-nb) nothing is recorded.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        if (value.numel() if isinstance(value, Tensor) else value.size) != 1:
            raise ValueError(f"glue records single numbers; {name!r} has shape {list(value.shape)}")
        value = value.item()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
    try:
        from myst_nb import glue as record
    except ImportError:  # not building the book: nothing to glue into
        return value
    record(name, value, display=False)
    return value
