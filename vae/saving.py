"""Saving and loading models: the class, its settings and its weights in one file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from vae.boundary import pick_device
from vae.models import VAE, Autoencoder, ConditionalVAE, FlowVAE

MODELS = {cls.__name__: cls for cls in (VAE, ConditionalVAE, FlowVAE, Autoencoder)}


def save(model: VAE | Autoencoder, path: str | os.PathLike) -> Path:
    """Write the model's class, config and weights to ``path`` atomically.

    The file is written next to its destination and renamed into place, so an existing file is
    either left whole or replaced whole, never half-written.
    """
    path = Path(path)
    if type(model).__name__ not in MODELS or not isinstance(model, tuple(MODELS.values())):
        raise TypeError(f"can only save {tuple(MODELS)}, got {type(model).__name__}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist; create it first")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"class": type(model).__name__, "config": model.config, "state_dict": state}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> VAE | Autoencoder:
    """Rebuild a model written by :func:`save`, in eval mode, on ``device``.

    Raises ``FileNotFoundError`` when there is no file, and ``ValueError`` when the file is not a
    model written by :func:`save`, its config is incomplete or invalid, or its weights do not fit
    the model that the config describes. The config is checked against the weights on PyTorch's
    ``meta`` device first, so an absurd config allocates nothing.
    """
    device = pick_device(device)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a model written by vae.save ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or not {"class", "config", "state_dict"} <= payload.keys():
        raise ValueError(f"{path} is not a model written by vae.save: it lacks the class, config and weights")
    if not isinstance(payload["class"], str) or payload["class"] not in MODELS:
        raise ValueError(f"{path} holds a {payload['class']!r}; vae.load rebuilds only {tuple(MODELS)}")
    if not isinstance(payload["config"], dict) or not isinstance(payload["state_dict"], dict):
        raise ValueError(f"{path} is not a model written by vae.save: its config or weights are not dicts")
    config = dict(payload["config"])
    missing = {"input_dim", "hidden_dims", "latent_dim"} - config.keys()
    if missing:
        raise ValueError(f"{path} has an incomplete config: {sorted(missing)} missing")
    cls = MODELS[payload["class"]]
    try:
        with torch.device("meta"):  # check the config against the weights before allocating anything
            _fit_weights(cls(**config), payload["state_dict"])
        model = cls(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path} has an invalid config: {err}") from err
    except _Mismatch as err:
        raise ValueError(f"{path}: the weights do not fit the model its config describes ({err})") from err
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


class _Mismatch(Exception):
    """The weights in a file do not fit the model its config describes."""


def _fit_weights(model: torch.nn.Module, state: dict) -> None:
    """Raise :class:`_Mismatch` unless ``state`` has exactly the model's tensors, in their shapes, and finite."""
    expected = model.state_dict()
    if expected.keys() != state.keys():
        extra, absent = sorted(state.keys() - expected.keys()), sorted(expected.keys() - state.keys())
        raise _Mismatch(f"unexpected {extra[:3]}, missing {absent[:3]}")
    for key, tensor in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise _Mismatch(f"{key} is {shape}, the config needs {list(tensor.shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise _Mismatch(f"{key} contains NaN or inf")
