"""What a hidden check is, and the tools checks use to compare a submission's plain data.

Each assignment's checks live in a module beside its master notebook (``NAME_checks.py``), which
defines ``draw(rng) -> dict`` (the inputs for one submission, plain data), ``PROBE`` (the code run
in the sandbox after the submission's cells: cells separated by ``# %%`` lines, each sent as one
request, which read the inputs from ``INPUTS`` and store results with ``record(name, function)``)
and ``CHECKS``, a list of :class:`Check`; optionally ``follow_up(inputs, results) -> dict``, inputs
the grader computes from the answers so far and adds to ``INPUTS`` for the next request. A check's test receives the inputs and the probe's results as plain data
(validated by :func:`plain`) and raises :class:`Mismatch` or ``AssertionError`` when it fails.
It runs in the grader's own process, so nothing the submission defined reaches the comparison.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_DEPTH = 6
BUILTIN_ERRORS = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
MAX_STRING = 20_000


@dataclass(frozen=True)
class Check:
    """One check: the question it scores, its name, points, and the message shown when it fails."""

    question: str
    name: str
    points: float
    message: str
    test: Callable[[dict, dict], None]


class Mismatch(AssertionError):
    """A check's failure with what it expected (a value, or the check's own words) and what it got,
    both formatted by the grader."""

    def __init__(self, expected, got):
        expected = expected if isinstance(expected, str) else describe(expected)
        super().__init__(f"expected {expected}, got {describe(got)}")


def probe_cells(probe: str) -> list[str]:
    """The probe's cells (separated by ``# %%`` lines), each sent to the sandbox as one request."""
    return [c.strip() + "\n" for c in re.split(r"^# %%.*$", probe, flags=re.MULTILINE) if c.strip()]


def plain(value, depth: int = 0):
    """``value`` (parsed JSON) if it holds only dicts, lists, strings, numbers, booleans and None,
    nested at most MAX_DEPTH deep with strings of at most MAX_STRING characters; else ValueError."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if value is None or type(value) in (bool, int, float):
        return value
    if type(value) is str:
        if len(value) > MAX_STRING:
            raise ValueError("string too long")
        return value
    if type(value) is list:
        return [plain(v, depth + 1) for v in value]
    if type(value) is dict:
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    raise ValueError(f"not plain data: {type(value).__name__}")


def array(got, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``got`` as a float array (of ``shape`` if given), or a Mismatch saying what was wrong."""
    if isinstance(got, dict) or got is None:
        raise AssertionError(f"got {describe(got)}")
    try:
        values = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        raise AssertionError("got a value that is not an array of numbers") from None
    if shape is not None and values.shape != tuple(shape):
        raise AssertionError(f"expected shape {tuple(shape)}, got shape {values.shape}")
    return values


def close(got, expected, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Raise a Mismatch unless ``got`` has the shape of ``expected`` and is close to it everywhere."""
    expected = np.asarray(expected, dtype=float)
    values = array(got, expected.shape)
    if not np.allclose(values, expected, rtol=rtol, atol=atol):
        raise Mismatch(expected, values)


def describe(value, width: int = 6) -> str:
    """A short, plain description of a value: a number to 4 significant digits, an array's first
    ``width`` entries and shape, an error's name; never more than about 200 characters."""
    if isinstance(value, dict):
        if set(value) == {"error"}:  # only the name of a built-in exception, never one the submission made
            name = value["error"]
            return f"an error ({name})" if isinstance(name, str) and name in BUILTIN_ERRORS else "an error"
        return "a value of the wrong type"
    if isinstance(value, bool) or value is None:
        return str(value)
    try:
        values = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return "a value that is not a number or an array of numbers"
    if values.ndim == 0:
        return _number(float(values))
    flat = ", ".join(_number(v) for v in values.ravel()[:width])
    more = ", ..." if values.size > width else ""
    return f"an array of shape {values.shape}: [{flat}{more}]"


def _number(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)
