"""The boundary: where a call from outside the library is checked and moved to the model's device, once.

A public entry point names a check for each argument that needs one::

    @checked(x=data, y=labels, n_samples=positive_int)
    def elbo(model, x, beta=1.0, n_samples=1, y=None): ...

The first call from outside the library runs the checks (bad input gets a clear ``TypeError`` or
``ValueError``, :mod:`vae.validation`), moves tensors to the model's device and then runs the
function. Calls made from inside it (``fit`` → ``elbo`` → ``model.encode`` → …) skip the checks:
their arguments were checked at the way in. So the core's functions hold the maths and nothing else,
and the training loop pays for no checks batch by batch.

A check is a function ``check(name, value, model, arguments) -> value``, where ``model`` is the argument
named ``model``, or else the first (``self`` for a method) and ``arguments`` the call's arguments
checked so far, by name.
""" 

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import Tensor

from vae.validation import (
    check_data,
    check_labels,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_tensor,
)

Check = Callable[[str, Any, Any, dict[str, Any]], Any]
F = TypeVar("F", bound=Callable[..., Any])

_state = threading.local()  # _state.inside: a checked call of this thread is running


def _inside() -> bool:
    return getattr(_state, "inside", False)


def checked(**checks: Check) -> Callable[[F], F]:
    """Decorate a public entry point: run ``checks`` (argument name → check) on calls from outside."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        unknown = checks.keys() - signature.parameters.keys()
        if unknown:
            raise TypeError(f"{function.__qualname__} has no parameters {sorted(unknown)} to check")

        @functools.wraps(function)
        def entry_point(*args: Any, **kwargs: Any) -> Any:
            if _inside():
                return function(*args, **kwargs)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as err:
                raise TypeError(f"{function.__qualname__}(): {err}") from None
            bound.apply_defaults()
            model = bound.arguments.get("model", next(iter(bound.arguments.values())))
            for name, check in checks.items():
                bound.arguments[name] = check(name, bound.arguments[name], model, bound.arguments)
            _state.inside = True
            try:
                return function(*bound.args, **bound.kwargs)
            finally:
                _state.inside = False

        return entry_point  # type: ignore[return-value]

    return decorate


@contextmanager
def outside() -> Iterator[None]:
    """Run code that is not the library's (a callback, a learner's loss) as a call from outside: checked."""
    was_inside = _inside()
    _state.inside = False
    try:
        yield
    finally:
        _state.inside = was_inside


def device_of(model: torch.nn.Module) -> torch.device:
    """Where the model's weights live."""
    return next(model.parameters()).device


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a :class:`torch.device`, checked to exist here; by default CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but this machine has no CUDA GPU; use 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


# The checks. Each returns the value to use: converted, and on the model's device where it is a tensor.


def model_is(*classes: type) -> Check:
    """The argument must be an instance of one of ``classes``."""

    def check(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Any:
        if not isinstance(value, classes):
            expected = " or ".join(f"a vae.{c.__name__}" for c in classes)
            raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
        return value

    return check


def data(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Tensor:
    """A batch [B, D] in the units of the model's likelihood (:func:`vae.validation.check_data`)."""
    return check_data(value, model.input_dim, model.lik.name, model.lik.n_levels).to(device_of(model))


def codes(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Tensor:
    """Floating-point codes or posterior parameters [..., L]."""
    return _finite_rows(name, value, model, model.latent_dim, "latent_dim")


def contexts(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Tensor:
    """A flow posterior's context [..., H], H the encoder's last hidden size (``model.context_dim``)."""
    return _finite_rows(name, value, model, model.context_dim, "context_dim")


def _finite_rows(name: str, value: Any, model: Any, width: int, what: str) -> Tensor:
    """A finite floating-point tensor [..., width], on the model's device."""
    value = check_tensor(name, value)
    if value.dim() == 0 or value.shape[-1] != width:
        raise ValueError(f"{name} must have shape [..., {width}] ({what}), got {list(value.shape)}")
    if value.device.type != "meta" and not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or inf")
    return value.to(device_of(model))


def labels(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Tensor | None:
    """Class labels for a conditional model (none for the others), matching the batch: ``x``, ``z`` or ``n``."""
    if "x" in arguments:
        shape = tuple(arguments["x"].shape[:1])
    elif "z" in arguments:
        shape = tuple(arguments["z"].shape[:-1])
    else:
        shape = (arguments["n"],)
    y = check_labels(value, getattr(model, "n_classes", 0), shape)
    return None if y is None else y.to(device_of(model))


def posterior(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> tuple[Tensor, ...] | None:
    """``None`` (the encoder's q), or q(z|x)'s parameters for the batch ``x`` as ``model.encode`` gives them:
    ``(mean, logvar)``, each [B, L]; a :class:`vae.FlowVAE`'s are ``(mean, logvar, context)``, context [B, H]."""
    if value is None:
        return None
    widths = model.posterior_widths()  # {"mean": L, "logvar": L, ...}
    parts = f"({', '.join(widths)})"
    if not isinstance(value, (tuple, list)) or len(value) != len(widths):
        raise TypeError(f"{name} must be {parts}, a tuple of {len(widths)} tensors, got {type(value).__name__}")
    value = tuple(_finite_rows(f"{name} {part}", t, model, width, f"the width of {part}")
                  for t, (part, width) in zip(value, widths.items()))
    expected = [[len(arguments["x"]), width] for width in widths.values()]
    if [list(t.shape) for t in value] != expected:
        got = " and ".join(str(list(t.shape)) for t in value)
        raise ValueError(f"{name} must be {parts}, of shapes {' and '.join(map(str, expected))}, got {got}")
    return value


def tensor(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Tensor:
    """A floating-point tensor, left where it is."""
    return check_tensor(name, value)


def shaped_like(other: str) -> Check:
    """A floating-point tensor of the same shape as the argument ``other``."""

    def check(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Tensor:
        value = check_tensor(name, value)
        if value.shape != arguments[other].shape:
            raise ValueError(
                f"{other} and {name} must have the same shape, got {list(arguments[other].shape)} and {list(value.shape)}"
            )
        return value

    return check


def positive_int(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> int:
    return check_positive_int(name, value)


def nonnegative_int(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> int:
    return check_nonnegative_int(name, value)


def function(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Callable:
    if not callable(value):
        raise TypeError(f"{name} must be a function, got {type(value).__name__}")
    return value


def choice(*allowed: str) -> Check:
    """One of the strings ``allowed``."""

    def check(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> str:
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        return value

    return check


def optional(check: Check) -> Check:
    """``None``, or a value that passes ``check``."""

    def check_unless_none(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> Any:
        return None if value is None else check(name, value, model, arguments)

    return check_unless_none


def positive(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> float:
    return check_positive(name, value)


def nonnegative(name: str, value: Any, model: Any, arguments: dict[str, Any]) -> float:
    return check_nonnegative(name, value)
