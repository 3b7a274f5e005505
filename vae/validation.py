"""Input validation: bad input gets a clear error here, not deep inside torch.

The public entry points (``fit``, ``evaluate``, ``elbo``, ``encode``, …) call these once; the
training loop does not repeat them batch by batch.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor


def _real(name: str, value: object, expected: str) -> float:
    """``value`` as a float if it is a real number: a Python or numpy scalar, or a 0-d tensor."""
    if isinstance(value, (Tensor, np.ndarray)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    return float(value)


def _int(name: str, value: object, expected: str) -> int:
    """``value`` as an int if it is an integer (a Python or numpy one; not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    return int(value)


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int > 0, else raise with a message naming ``name``."""
    if _int(name, value, "a positive int") <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_nonnegative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 0, else raise with a message naming ``name``."""
    if _int(name, value, "an int >= 0") < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value}")
    return int(value)


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number > 0."""
    number = _real(name, value, "a positive number")
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return number


def check_grid_size(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 2: a grid or sweep over a range needs both of its ends."""
    n = check_positive_int(name, value)
    if n < 2:
        raise ValueError(f"{name} must be at least 2, so that the grid reaches both ends of its range; got {n}")
    return n


def check_range(name: str, value: object, within: tuple[float, float] | None = None) -> tuple[float, float]:
    """Return ``value``, a pair (lo, hi) of finite real numbers with lo < hi, as two floats.

    With ``within = (a, b)`` both ends must also lie strictly between a and b (for quantiles: (0, 1)).
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair (lo, hi) of numbers, got {value!r}")
    lo, hi = (_real(name, v, "a pair (lo, hi) of numbers") for v in value)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be two finite numbers, got ({lo:g}, {hi:g})")
    if within is not None and not (within[0] < lo < within[1] and within[0] < hi < within[1]):
        raise ValueError(f"{name} must lie strictly between {within[0]:g} and {within[1]:g}, got ({lo:g}, {hi:g})")
    if not lo < hi:
        raise ValueError(f"{name} must run from a smaller to a larger number, got ({lo:g}, {hi:g}): "
                         "a range with lo >= hi covers nothing to draw")
    return lo, hi


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number >= 0."""
    number = _real(name, value, "a number >= 0")
    if not (number >= 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_data(x: object, width: int, likelihood: str = "gaussian", n_levels: int = 17) -> Tensor:
    """Validate a data matrix and return it as a tensor of shape [N, width].

    Raises ``TypeError`` for anything that is not a tensor or array of numbers,
    ``ValueError`` for the wrong shape, no rows, NaN or inf, and values outside
    what the likelihood can score ([0, 1] for "bernoulli", integer levels
    ``0 .. n_levels - 1`` for "categorical"). Integer data for a "bernoulli" or
    "gaussian" likelihood comes back as float32, which is what those score.
    The tensor stays on its device; the model moves it.
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number):
            raise TypeError(f"data must hold numbers, got an array of dtype {x.dtype}")
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"data must be a torch.Tensor or numpy array of shape [N, {width}], got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"data must hold real numbers, got dtype {x.dtype}")
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"data must have shape [N, {width}] (N examples of {width} values), got {list(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"data is empty: shape {list(x.shape)}; need at least one example")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError("data contains NaN or inf; clean or impute it first")
    if likelihood != "categorical" and not x.is_floating_point():
        x = x.float()
    if likelihood not in ("bernoulli", "categorical"):
        return x
    lo, hi = (v.item() for v in torch.aminmax(x))
    if likelihood == "bernoulli" and (lo < 0 or hi > 1):
        raise ValueError(f"a bernoulli likelihood needs data in [0, 1], got values in [{lo:g}, {hi:g}]")
    if likelihood == "categorical":
        fractional = x.is_floating_point() and bool((x != x.round()).any())
        if lo < 0 or hi > n_levels - 1 or fractional:
            raise ValueError(
                f"a categorical likelihood needs integer levels 0..{n_levels - 1}, "
                f"got values in [{lo:g}, {hi:g}]" + (" that are not all integers" if fractional else "")
            )
    return x


def check_tensor(name: str, value: object) -> Tensor:
    """Return ``value`` if it is a floating-point tensor, else raise a ``TypeError`` naming ``name``."""
    if not isinstance(value, Tensor) or not value.is_floating_point():
        kind = f"a tensor of dtype {value.dtype}" if isinstance(value, Tensor) else type(value).__name__
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {kind}")
    return value


def check_labels(y: object, n_classes: int, shape: tuple[int, ...]) -> Tensor | None:
    """Labels ``y``: ints ``0 .. n_classes - 1`` (a tensor, array or int) that broadcast to ``shape``.

    Returns them as a long tensor; ``n_classes`` 0 means a model without labels, which takes none.
    """
    if not n_classes:
        if y is not None:
            raise ValueError("this model is unconditional: it takes no labels y (a vae.ConditionalVAE does)")
        return None
    if y is None:
        raise ValueError(f"this model is conditional (n_classes={n_classes}): pass the labels y")
    y = torch.as_tensor(y)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels y must be integers 0..{n_classes - 1}, got dtype {y.dtype}")
    try:
        torch.broadcast_shapes(y.shape, shape)
    except RuntimeError:
        raise ValueError(f"labels y of shape {list(y.shape)} do not match the batch {list(shape)}") from None
    if y.numel() and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels y must lie in 0..{n_classes - 1}, got values in [{y.min()}, {y.max()}]")
    return y.long()
