"""The loss doctor: say in plain words what a hand-written VAE loss computes, and how to fix it.

A learner's loss is written against the classroom interface, ``loss(output, x)``, where ``output``
is the dict that :func:`vae.interface.classroom_output` returns (``imgs`` [B, D], ``z`` [B, L],
``mean`` [B, L], ``logvar`` [B, L]) and the result is a 0-d tensor that training can call
``.backward()`` on. The right answer is the negative ELBO per example in nats: the mean over the
batch of −log p(x|z) summed over pixels, plus KL(q(z|x) || p(z)).

The doctor never reads the loss's source. It calls the loss on probes, outputs whose true terms it
knows, and fits the values by least squares as

    loss ≈ a · rec + b · kl + c,

with ``rec`` the reconstruction term −log p(x|z) and ``kl`` the Gaussian KL, both in nats summed
over the batch (so a correct loss has a = b = 1/B and c = 0). To tell the KL's closed form apart
from its common misspellings, the KL enters the fit as its three parts, ½Σμ², ½Σ(σ² − 1) and
−½Σ log σ², which a correct loss weights equally; further columns catch a variance written as
exp(2 · logvar) or exp(logvar / 2), a reconstruction of the other kind (squared error for a
Bernoulli, cross-entropy for a Gaussian), and a Monte Carlo KL at ``output["z"]``, which is
correct. The fit is made twice, on batches of B and of about B/2 rows, so that a mean over the
batch (a ∝ 1/B) is told from a sum (a fixed) whatever B is. The fitted probes are float64, so rounding
never passes for a finding. Three more probes, in float32 as a model's outputs are, put the outputs at
their boundaries (probabilities exactly 0 or 1, logvar at ±50), where a correct loss stays finite, and one call with tensors that
require gradients checks that the loss can train: it returns a tensor, the gradient reaches the
outputs it uses, and it leaves ``output`` and ``x`` as they were.

The work splits in four, so that a grader can run the learner's code in a sandbox:
:func:`make_probes` builds the probes (plain tensors, trusted code); :func:`evaluate` calls the loss
on each and :func:`check_training` makes the call with gradients (the only steps that run the
learner's code; they return plain floats and a dict of plain values); :func:`diagnose_values`
turns those into a :class:`Diagnosis`. :func:`diagnose_loss` does it all for a :class:`vae.VAE`.
Every exception the learner's loss raises comes back as a :class:`LossError` that quotes the
failing line and says what the arguments were.

Which models the doctor checks (:func:`diagnose_loss`):

- ``vae.VAE`` with a Bernoulli likelihood, or a Gaussian one with a fixed σ (``learn_sigma=False``),
  and the standard normal prior: diagnosed. A ``ClassroomVAE`` is such a model.
- a Gaussian likelihood with a learned σ: refused, since ``loss(output, x)`` cannot see σ;
- a categorical likelihood: refused, since ``output["imgs"]`` holds mean levels, from which no loss
  can compute the probabilities of the levels;
- a learned prior (``prior="mixture"`` or ``"vamp"``): refused, since the KL against it depends on
  the model's prior parameters, which the probes do not come from;
- a ``ConditionalVAE``: refused, since the classroom interface carries no labels.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import re
import sysconfig
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from vae.boundary import checked, data, device_of, model_is, outside
from vae.likelihoods import SIGMA_RANGE
from vae.models import VAE, ConditionalVAE
from vae.validation import check_data, check_positive, check_positive_int

N_FIT = 24  # probes of the batch's own size B for the least-squares fit; it has 9 unknowns
N_RESIZED = 12  # probes of another size (B // 2, or 2B for tiny batches): how the loss scales with B
LOGVAR_EDGE = 50.0  # a logvar far out, where every correct loss's value is still finite in float32
TOLERANCE = 1e-4  # the largest misfit the fit accepts, relative to the spread of the loss's values
NEGLIGIBLE = 1e-7  # a column whose share of that spread is below this (or 100 misfits) is not in the loss
MATCH = 1e-3  # relative tolerance when a fitted weight is compared with a named value (1/B, 1/D, ½ ...)
COLUMNS = ("rec", "other rec", "kl mu^2", "kl sigma^2", "kl log sigma^2", "exp(2 logvar)",
           "exp(logvar/2)", "kl at z", "1")
BOUNDARIES = ("probabilities exactly 0 or 1", f"logvar = +{LOGVAR_EDGE:g}", f"logvar = -{LOGVAR_EDGE:g}")
KEYS = ("imgs", "z", "mean", "logvar")


class LossError(ValueError, TypeError):
    """The learner's loss could not be called as ``loss(output, x)``, raised an exception, or returned
    something other than one number. The message quotes the failing line of the learner's code, says
    what the arguments were and how to match the interface. A ``ValueError`` and a ``TypeError``."""


@dataclass(frozen=True)
class Probes:
    """Outputs with known terms on which to call a loss, built by :func:`make_probes`.

    ``outputs[i]`` and ``xs[i]`` are the arguments of call i; ``names[i]`` is ``"fit"`` for the
    ``N_FIT`` probes of ``batch_size`` rows, ``"resized"`` for the ``N_RESIZED`` probes of
    ``resized_size`` rows, and a boundary's description for the last three. ``terms``
    [N_FIT + N_RESIZED, 9] holds the known terms of the first two kinds, in nats summed over the
    batch (columns as in ``COLUMNS``). ``entropy`` is Σ_i H(x_i) per example for a Bernoulli
    likelihood: the least a cross-entropy can be when pixels are grey (0 for binary pixels).
    """

    outputs: list[dict[str, Tensor]]
    xs: list[Tensor]
    names: list[str]
    terms: Tensor
    likelihood: str
    sigma: float
    batch_size: int
    resized_size: int
    input_dim: int
    latent_dim: int
    entropy: float


@dataclass(frozen=True)
class Finding:
    """One thing the doctor found: ``code`` (a short name), what it means, the fix, and whether it
    changes what training learns (``changes_gradient``) or only the value the loss reports."""

    code: str
    text: str
    fix: str
    changes_gradient: bool


@dataclass(frozen=True)
class Diagnosis:
    """What a loss computes. ``a``, ``b``, ``c``: the fit loss ≈ a · rec + b · kl + c on batches of
    ``batch_size``, with rec and kl in nats summed over the batch (a correct loss: a = b = 1/B,
    c = 0); b is the KL's weight (read from its parts that agree, or from a Monte Carlo KL).
    ``coefficients``: every column of the fit. ``misfit``: the root-mean-square misfit relative to
    the spread of the values (NaN when they do not vary). ``findings``: empty when the loss is the
    per-example negative ELBO in nats and can train. ``str()`` gives the report in words."""

    findings: tuple[Finding, ...]
    a: float
    b: float
    c: float
    coefficients: dict[str, float]
    misfit: float
    batch_size: int

    @property
    def correct(self) -> bool:
        """True when the loss is the per-example negative ELBO in nats, finite at the boundaries."""
        return not self.findings

    @property
    def codes(self) -> tuple[str, ...]:
        """The findings' short names, e.g. ``("kl-sign",)``."""
        return tuple(f.code for f in self.findings)

    @property
    def scale(self) -> float:
        """a · B: 1 for a mean over the batch, B for a sum over it, 1/D for a mean over pixels too."""
        return self.a * self.batch_size

    @property
    def kl_weight(self) -> float:
        """b / a: the KL's weight relative to the reconstruction; 1 in the ELBO."""
        return self.b / self.a if self.a else math.nan

    def __str__(self) -> str:
        n = self.batch_size
        codes = set(self.codes)
        if "constant" in codes:
            fit = f"none: the loss is {self.c:.6g} whatever the outputs."
        elif math.isnan(self.a):
            fit = "none: too few probes gave a finite value."
        elif "unexplained" in codes:
            fit = (f"no weighted sum of the ELBO's terms reproduces the values; the best leaves {self.misfit:.1e} "
                   "of their spread unexplained.")
        else:
            other = self.coefficients.get("other rec", 0.0)
            terms = [f"{_number(self.a)} · rec"] if self.a or not other else []
            if other:
                terms.append(f"{'−' if other < 0 else '+' if terms else ''} {_number(abs(other))} · (the other "
                             "reconstruction: squared error or cross-entropy)".lstrip())
            if self.b:
                terms.append(f"{'−' if self.b < 0 else '+'} {_number(abs(self.b))} · KL")
            if abs(self.c) > 1e-3 * max(abs(self.a), abs(other), abs(self.b)) * n:  # 1e-3 nats per example or more
                terms.append(f"{'−' if self.c < 0 else '+'} {abs(self.c):.4g}")
            fit = (f"loss ≈ {' '.join(terms)}, with rec = −log p(x|z) and KL summed over the batch of {n}; "
                   f"the per-example negative ELBO in nats is 1/{n} · rec + 1/{n} · KL.")
        verdict = ("Loss doctor: correct. The loss is the negative ELBO per example, in nats (the mean over the "
                   "batch of −log p(x|z) summed over pixels, plus the KL); it stays finite at the boundaries "
                   "and its gradient reaches the outputs."
                   if self.correct else "Loss doctor: this is not the per-example negative ELBO.")
        lines = [(verdict, "", "  "), (f"Fit: {fit}", "  ", "    ")]  # (text, first indent, indent)
        for i, f in enumerate(self.findings, 1):
            effect = "changes what is learned" if f.changes_gradient else "changes only the value"
            lines += [(f"{i}. [{f.code}; {effect}] {f.text}", "  ", "     "), (f"Fix: {f.fix}", "     ", "     ")]
        if not self.correct:
            lines.append(("Next: fix the loss and run the doctor again, until it says correct.", "  ", "  "))
        return "\n".join(textwrap.fill(text, 100, initial_indent=first, subsequent_indent=rest)
                         for text, first, rest in lines)


# --- The probes -----------------------------------------------------------------------------------


def make_probes(
    x: Tensor, latent_dim: int, likelihood: str = "bernoulli", sigma: float = 1.0, seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Probes:
    """Probes for a loss on the batch ``x`` [B, D] (B >= 2) with ``latent_dim`` latent dimensions.

    ``likelihood`` is the decoder's: ``"bernoulli"`` (``imgs`` are pixel probabilities) or
    ``"gaussian"`` with standard deviation ``sigma`` (``imgs`` are the means). Each probe takes rows
    of x (shuffled) and draws ``imgs`` in [0.02, 0.98], ``mean``, ``logvar`` and ``z = mean +
    exp(logvar / 2) · eps`` at random scales, so that the fit's columns vary independently.
    Deterministic for a given ``seed``; everything lives on the CPU, in ``dtype`` (float64, so that
    a correct loss is fitted to rounding of 1e-16; float32 where a device has no float64), except the
    boundary probes, which are float32 as a model's outputs are: that is where exp and log overflow.
    """
    if likelihood == "categorical":
        raise ValueError("a categorical likelihood cannot be scored from output['imgs'], which holds only "
                         "each pixel's mean level; the doctor checks 'bernoulli' and 'gaussian' losses")
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
    width = x.shape[-1] if isinstance(x, (Tensor, np.ndarray)) and x.ndim == 2 else 0
    x = check_data(x, width, likelihood).to("cpu", dtype)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples, to tell a sum over the batch from a mean; got {len(x)}")
    latent_dim = check_positive_int("latent_dim", latent_dim)
    sigma = check_positive("sigma", sigma)
    if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
        raise ValueError(f"sigma must lie in [{SIGMA_RANGE[0]:g}, {SIGMA_RANGE[1]:g}], got {sigma:g}")
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    resized = n // 2 if n >= 4 else 2 * n
    fit = _draw(x, N_FIT, n, latent_dim, gen)
    small = _draw(x, N_RESIZED, resized, latent_dim, gen)
    terms = torch.cat([_terms(*fit, likelihood, sigma), _terms(*small, likelihood, sigma)])

    edge = [t[0] for t in _draw(x, 1, n, latent_dim, gen)]  # one more probe, pushed to each boundary in turn
    x_edge, imgs, mean, logvar, z = edge
    at_01 = (x_edge == 0) | (x_edge == 1)
    boundary = [{"imgs": torch.where(at_01, x_edge, imgs), "z": z, "mean": mean, "logvar": logvar}]  # each such pixel right
    for sign in (1, -1):
        wide = logvar.clone()
        wide[:, 0] = sign * LOGVAR_EDGE
        noise = torch.randn(n, latent_dim, generator=gen, dtype=dtype)
        boundary.append({"imgs": imgs, "z": mean + (0.5 * wide).exp() * noise, "mean": mean, "logvar": wide})
    boundary = [{k: v.float() for k, v in o.items()} for o in boundary]  # float32, where training overflows
    x_edge = x_edge.float()
    entropy = 0.0
    if likelihood == "bernoulli":
        p = x.double()
        entropy = (torch.special.entr(p) + torch.special.entr(1 - p)).sum(-1).mean().item()

    def unstack(xs: Tensor, imgs: Tensor, mean: Tensor, logvar: Tensor, z: Tensor) -> tuple[list, list]:
        return [dict(zip(("imgs", "z", "mean", "logvar"), t)) for t in zip(imgs, z, mean, logvar)], list(xs)

    (out_fit, x_fit), (out_small, x_small) = unstack(*fit), unstack(*small)
    return Probes(
        outputs=out_fit + out_small + boundary,
        xs=x_fit + x_small + [x_edge] * len(boundary),
        names=["fit"] * N_FIT + ["resized"] * N_RESIZED + list(BOUNDARIES),
        terms=terms,
        likelihood=likelihood,
        sigma=sigma,
        batch_size=n,
        resized_size=resized,
        input_dim=x.shape[1],
        latent_dim=latent_dim,
        entropy=entropy,
    )


def _draw(x: Tensor, count: int, size: int, latent_dim: int, gen: torch.Generator) -> tuple[Tensor, ...]:
    """``count`` probes of ``size`` rows of x: (xs, imgs, mean, logvar, z), each [count, size, ·]."""
    n, d = x.shape
    if size <= n:
        rows = torch.rand(count, n, generator=gen).argsort(1)[:, :size]
    else:
        rows = torch.randint(n, (count, size), generator=gen)
    xs = x[rows]

    def uniform(lo: float, hi: float) -> Tensor:  # one number per probe
        return lo + (hi - lo) * torch.rand(count, 1, 1, generator=gen, dtype=x.dtype)

    def normal(width: int) -> Tensor:
        return torch.randn(count, size, width, generator=gen, dtype=x.dtype)

    follow, power = uniform(0, 1), uniform(0.3, 3)  # how closely imgs follow x, and the noise's shape
    noise = torch.rand(count, size, d, generator=gen, dtype=x.dtype) ** power
    imgs = 0.02 + 0.96 * (follow * xs.clamp(0, 1) + (1 - follow) * noise)
    mean = uniform(0, 2) * normal(latent_dim)
    logvar = uniform(-3, 1) + uniform(0, 1) * normal(latent_dim)
    z = mean + (0.5 * logvar).exp() * uniform(0, 2) * normal(latent_dim)
    return xs, imgs, mean, logvar, z


def _terms(x: Tensor, imgs: Tensor, mean: Tensor, logvar: Tensor, z: Tensor, likelihood: str, sigma: float
           ) -> Tensor:
    """The known terms of probes [N, B, ·], each summed over its batch, in float64: [N, 9], the columns of ``COLUMNS``."""
    p, x, mean, logvar, z = (t.double() for t in (imgs, x, mean, logvar, z))

    def total(t: Tensor) -> Tensor:  # sum over the batch and the pixels (or latent dimensions)
        return t.sum((-2, -1))

    bce = total(-(x * p.log() + (1 - x) * (1 - p).log()))
    sse = total((x - p).pow(2))
    if likelihood == "bernoulli":
        rec, other = bce, sse
    else:
        rec, other = sse / (2 * sigma**2) + 0.5 * x[0].numel() * math.log(2 * math.pi * sigma**2), bce
    kl_at_z = 0.5 * total(z.pow(2) - (z - mean).pow(2) / logvar.exp() - logvar)  # log q(z|x) − log p(z)
    return torch.stack([
        rec,
        other,
        0.5 * total(mean.pow(2)),
        0.5 * total(logvar.exp() - 1),
        -0.5 * total(logvar),
        0.5 * total((2 * logvar).exp()),
        0.5 * total((0.5 * logvar).exp()),
        kl_at_z,
        torch.ones_like(rec),
    ], dim=-1)


# --- Calling the learner's loss: the one guarded place ---------------------------------------------


def evaluate(loss: Callable[[dict[str, Tensor], Tensor], object], probes: Probes, device: str | torch.device = "cpu"
             ) -> list[float]:
    """Call ``loss(output, x)`` on every probe (on ``device``, each call with fresh copies, without
    gradients) and return the values as Python floats; NaN and inf are kept.

    Raises a :class:`LossError` if the loss cannot be called with (output, x), raises an exception,
    or returns anything but one number.
    """
    _check_signature(loss)
    values = []
    with torch.no_grad():
        for output, x in zip(probes.outputs, probes.xs):
            copy = {k: v.to(device, copy=True) for k, v in output.items()}
            values.append(_number_of(_call(loss, copy, x.to(device, copy=True), probes), copy, x))
    return values


def check_training(loss: Callable[[dict[str, Tensor], Tensor], object], probes: Probes,
                   device: str | torch.device = "cpu") -> dict[str, object]:
    """Call ``loss(output, x)`` once as training does, with outputs that require gradients, and call
    ``backward()`` on the result. Returns plain values: ``returns`` (``"tensor"``, ``"float"`` for a
    Python or numpy number), ``requires_grad`` (the result has a gradient path), ``reaches`` (the
    output keys the gradient reaches), ``changed`` (the keys of output, and ``"x"``, that the loss
    changed in place) and ``backward_error`` (the message when ``backward()`` fails, else None).
    """
    _check_signature(loss)
    leaves = {k: v.to(device, copy=True).requires_grad_(True) for k, v in probes.outputs[0].items()}
    output = {k: v.clone() for k, v in leaves.items()}  # not leaves, like a model's outputs
    x = probes.xs[0].to(device, copy=True)
    versions = {k: v._version for k, v in output.items()} | {"x": x._version}
    with torch.enable_grad():
        value = _call(loss, output, x, probes)
        _number_of(value, output, x)  # one number, or a LossError
        changed = sorted(k for k, v in ({**output, "x": x}).items() if v._version != versions[k])
        report: dict[str, object] = {"returns": "tensor" if isinstance(value, Tensor) else "float",
                                     "requires_grad": isinstance(value, Tensor) and value.requires_grad,
                                     "reaches": [], "changed": changed, "backward_error": None}
        if report["requires_grad"]:
            try:
                value.reshape(()).backward()
            except Exception as err:  # noqa: BLE001 - any failure of backward is a finding, not a crash
                report["backward_error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            report["reaches"] = [k for k, v in leaves.items() if v.grad is not None and bool(v.grad.abs().sum() > 0)]
    return report


def _call(loss: Callable, output: dict[str, Tensor], x: Tensor, probes: Probes) -> object:
    """Call the learner's loss: the only place it runs. Any exception becomes a :class:`LossError`."""
    try:
        with outside():  # the learner's code calls the library as any caller does: checked
            return loss(output, x)
    except Exception as err:  # whatever the learner's code raises is explained
        raise LossError(_explain(loss, err, output, x, probes)) from err


def _number_of(value: object, output: dict[str, Tensor], x: Tensor) -> float:
    """The loss's result as a float, or a LossError that says what it returned instead."""
    shape = f"the batch holds {len(x)} examples"
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        size = value.numel() if isinstance(value, Tensor) else value.size
        if size != 1:
            per_example = list(value.shape) in ([len(x)], [len(x), 1])
            raise LossError(
                f"loss(output, x) must return one number for the batch, got a {type(value).__name__} of shape "
                f"{list(value.shape)} ({shape})" + ("; it looks like one loss per example: average them with "
                                                    ".mean()" if per_example else "; reduce it to one number"))
        if isinstance(value, Tensor) and (value.is_complex() or not value.is_floating_point()):
            raise LossError(f"loss(output, x) must return a floating-point number, got a tensor of {value.dtype}")
        return float(value.item())
    if isinstance(value, tuple) and value:
        raise LossError(f"loss(output, x) must return one number, got a tuple of {len(value)} (a loss that also "
                        "returns its terms?); give the doctor the total alone, e.g. "
                        "lambda output, x: my_loss(output, x)[0]")
    if value is None:
        raise LossError("loss(output, x) returned None: is its return statement missing?")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LossError(f"loss(output, x) must return one number, got {type(value).__name__}")
    return float(value)


def _check_signature(loss: object) -> None:
    """Refuse, before calling it, a loss that cannot take the two arguments (output, x)."""
    if not callable(loss):
        raise LossError(f"loss must be a function loss(output, x), got {type(loss).__name__}")
    try:
        signature = inspect.signature(loss)
    except (TypeError, ValueError):
        return  # a builtin or extension: try it
    try:
        signature.bind(None, None)
    except TypeError:
        params = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p.name for p in params if p.default is p.empty]
        name = getattr(loss, "__name__", "loss")
        name = "loss" if name == "<lambda>" else name
        text = (f"the doctor calls loss(output, x), with two arguments, as the classroom interface defines it; "
                f"{name}{signature} needs {len(required)}.")
        if len(required) == 4:
            text += (f" It looks like pytorch/examples' loss_function(recon_x, x, mu, logvar). Wrap it to "
                     f"match: lambda output, x: {name}({_adapter(required)})")
        else:
            text += (" Write a function of (output, x) that takes what it needs from output: output['imgs'] "
                     "(the decoder's pixel probabilities or means), output['mean'], output['logvar'], output['z'].")
        raise LossError(text)


def _role(name: str) -> str | None:
    """Which argument a parameter's name most likely stands for: an output key or 'x'."""
    name = name.lower()
    if "logvar" in name or "log_var" in name or "log_sigma" in name or name in ("lv", "logv"):
        return "logvar"
    if name in ("mu", "m", "loc") or "mean" in name or name.startswith("mu_") or name.endswith("_mu"):
        return "mean"
    if any(w in name for w in ("recon", "hat", "pred", "decoded", "imgs", "out", "prob")) or name in ("y", "p"):
        return "imgs"
    if name in ("x", "data", "inputs", "input", "target", "targets", "images", "batch", "x_true", "orig"):
        return "x"
    if name in ("z", "code", "codes", "z_sample"):
        return "z"
    return None


def _adapter(params: list[str]) -> str:
    """The arguments of a 4-argument loss, taken from (output, x) by the parameters' names."""
    text = {"imgs": 'output["imgs"]', "x": "x", "mean": 'output["mean"]', "logvar": 'output["logvar"]',
            "z": 'output["z"]'}
    roles = [_role(p) for p in params]
    if None in roles or len(set(roles)) != len(roles):
        roles = ["imgs", "x", "mean", "logvar"]  # pytorch/examples' order
    return ", ".join(text[r] for r in roles)


_NOT_THE_LEARNERS = tuple(os.path.dirname(m.__file__) + os.sep for m in (torch, np)) + (
    os.path.dirname(os.path.abspath(__file__)) + os.sep, sysconfig.get_paths()["stdlib"] + os.sep)


def _explain(loss: Callable, err: Exception, output: dict[str, Tensor], x: Tensor, probes: Probes) -> str:
    """A LossError's message: the error, the learner's failing line, the arguments, and a hint."""
    message = str(err).splitlines()[0] if str(err) else ""
    if isinstance(err, KeyError):
        message = repr(err.args[0]) if err.args else ""
    lines = [f"the loss raised {type(err).__name__}: {message}".rstrip(": ")]
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not os.path.abspath(f.filename).startswith(
        _NOT_THE_LEARNERS)]
    if frames:
        f = frames[-1]
        lines.append(f"  at {f.filename}, line {f.lineno}: {(f.line or '').strip()}")
    shapes = ", ".join(f"'{k}' {list(v.shape)}" for k, v in output.items())
    lines.append(f"The doctor called loss(output, x) with output = a dict of {output['imgs'].dtype} tensors "
                 f"{{{shapes}}} and x = a tensor {list(x.shape)} ({len(x)} examples of {x.shape[1]} pixels).")
    if len(x) != probes.batch_size:
        lines.append(f"This call was on a batch of {len(x)}, not {probes.batch_size}: the doctor also tries another "
                     "size, to tell a mean over the batch from a sum, and a loss must work for any batch size "
                     "(an epoch's last batch is smaller).")
    lines.append(_hint(loss, err, message, x))
    return "\n".join(lines)


SYNONYMS = {"imgs": ("recon", "x_hat", "xhat", "recon_x", "reconstruction", "x_recon", "decoded", "probs",
                     "output", "x_mean", "mean_x", "pred"),
            "mean": ("mu", "z_mean", "z_mu", "loc", "means"),
            "logvar": ("log_var", "z_log_var", "logvariance", "log_sigma2", "lv", "z_logvar"),
            "z": ("z_sample", "sample", "code", "latent")}


def _hint(loss: Callable, err: Exception, message: str, x: Tensor) -> str:
    """What the learner can do about ``err``, from its kind and message."""
    interface = ("The interface: output['imgs'] [B, D] holds the decoder's pixel probabilities (Bernoulli) or "
                 "means (Gaussian), output['mean'] and output['logvar'] [B, L] are q(z|x)'s parameters, "
                 "output['z'] [B, L] the sampled codes; x [B, D] is the batch.")
    try:
        params = list(inspect.signature(loss).parameters)
    except (TypeError, ValueError):
        params = []
    swapped = len(params) >= 2 and _role(params[0]) == "x" and _role(params[1]) == "imgs"
    if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str):
        key = err.args[0]
        if key.lower() == "logits":
            return ("output has no logits: output['imgs'] holds probabilities. Use F.binary_cross_entropy on "
                    "output['imgs'], or torch.logit(output['imgs'], eps=1e-6) where logits are needed.")
        meant = [k for k, names in SYNONYMS.items() if key.lower() in names]
        guess = f" '{key}' is probably output['{meant[0]}']." if meant else ""
        return f"output has no key '{key}'; its keys are {', '.join(repr(k) for k in KEYS)}.{guess} {interface}"
    if swapped or "(got str)" in message or "'dict' object" in message or "dict" in message and "Tensor" in message:
        return ("output is a dict and x a tensor, in that order: the doctor calls loss(output, x). If the loss "
                "takes them the other way round, swap them: lambda output, x: my_loss(x, output). " + interface)
    reshape = re.search(r"shape '\[(.*?)\]' is invalid for input of size (\d+)", message)
    if reshape or re.search(r"size of tensor a \(\d+\) must match the size of tensor b", message):
        asked = f"[{reshape.group(1)}]" if reshape else "another size"
        side = math.isqrt(x.shape[1])
        images = f" ({side} × {side} images)" if side * side == x.shape[1] else ""
        return (f"A reshape or an operation asks for {asked}, but x has D = {x.shape[1]} pixels per "
                f"example{images}, and B = {len(x)} examples. Write sizes from the data, not as numbers: "
                "x.view(len(x), -1) or x.flatten(1), and len(x) for the batch size.")
    return interface


# --- Reading the values ----------------------------------------------------------------------------


def diagnose_values(probes: Probes, values: list[float], training: dict[str, object] | None = None) -> Diagnosis:
    """The diagnosis of a loss from its ``values`` on ``probes`` (one float per probe, as
    :func:`evaluate` returns them; NaN and inf allowed) and, when given, what :func:`check_training`
    found. Plain arithmetic: runs no learner code."""
    if len(values) != len(probes.names):
        raise ValueError(f"values must hold one number per probe ({len(probes.names)}), got {len(values)}")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in values):
        raise TypeError("values must be numbers, one per probe, as evaluate returns them")
    y = torch.tensor([float(v) for v in values], dtype=torch.float64)
    n_terms = N_FIT + N_RESIZED
    fit, resized, edges = y[:N_FIT], y[N_FIT:n_terms], y[n_terms:]
    findings = []
    coef = torch.full((len(COLUMNS),), math.nan, dtype=torch.float64)
    misfit, b = math.nan, math.nan
    finite = torch.isfinite(y[:n_terms])
    if not finite.all():
        findings.append(Finding(
            "nan",
            f"The loss is NaN or infinite on {int((~finite).sum())} of {n_terms} ordinary outputs (probabilities "
            "in [0.02, 0.98], logvar within a few units of 0), where every term of the ELBO is finite: it "
            "takes the log or square root of something that can be negative, such as logvar.",
            "logvar is any real number; use exp(logvar) for the variance and exp(logvar / 2) for the "
            "standard deviation.", True))
    elif fit.max() - fit.min() <= 1e-12 * max(1.0, fit.abs().max().item()):
        coef = torch.zeros(len(COLUMNS), dtype=torch.float64)
        coef[-1] = fit.mean()
        findings.append(Finding(
            "constant",
            f"The loss is {fit[0].item():.6g} on every probe, whatever the outputs: it does not depend on them, "
            "so its gradient is zero and training changes nothing. A loss built from numbers rather than "
            "from output's tensors (torch.tensor(value), a value kept from an earlier batch) does this.",
            "Compute the loss from output['imgs'], output['mean'] and output['logvar'] (and x), with torch "
            "operations from start to end.", True))
    else:
        coef, weight, misfit = _fit(probes.terms[:N_FIT], fit)
        if misfit > TOLERANCE:
            findings.append(Finding(
                "unexplained",
                f"The loss is not a weighted sum of the reconstruction and KL terms the doctor knows (misfit "
                f"{misfit:.1e}): it computes something else, such as a reconstruction that is neither "
                "the log-likelihood nor a squared error, or a KL with terms of another form.",
                "Compare the loss term by term with −log p(x|z) summed over pixels and the closed-form "
                "KL ½Σ(μ² + σ² − log σ² − 1), both averaged over the batch.", True))
        else:
            small, _, small_misfit = _fit(probes.terms[N_FIT:], resized)
            more, b = _read_fit(coef, weight, misfit, small if small_misfit <= TOLERANCE else None, probes)
            findings += more
            findings += _gradient_findings(training, coef, weight, misfit)
    if training is not None:  # first: a loss that cannot train needs that fixed before anything else
        constant = bool(findings) and findings[0].code == "constant"
        findings[:0] = [f for f in _training_findings(training) if not (constant and f.code == "no-gradient")]
    for name, value in zip(probes.names[n_terms:], edges.tolist()):
        if not math.isfinite(value):
            findings.append(_boundary_finding(name, value))
    if probes.entropy > 1e-6:
        findings.append(Finding(
            "bce-grey",
            "The pixels of x are not all 0 or 1, but the likelihood is a Bernoulli: the cross-entropy of a "
            "grey pixel is not the log-probability of anything. Even a perfect reconstruction scores "
            f"Σ H(x) = {probes.entropy:.2f} nats per example, not 0, and the ELBO bounds no likelihood of "
            "these images.",
            "Binarise the data (x > 0.5) for a Bernoulli decoder, or keep the grey levels and use a "
            "likelihood made for them, such as the categorical of vae.VAE(..., likelihood='categorical').",
            False))
    if not math.isnan(misfit) and misfit <= TOLERANCE:  # columns the loss does not use: 0, not rounding noise
        coef = torch.where(torch.tensor(_used(weight, misfit)) | (torch.arange(len(COLUMNS)) == len(COLUMNS) - 1),
                           coef, torch.zeros_like(coef))
    if abs(coef[-1].item()) <= 1e-9 * coef[:-1].abs().max().item() * probes.batch_size:
        coef[-1] = 0.0  # float64 rounding, not a constant
    a, c = coef[0].item(), coef[-1].item()
    return Diagnosis(tuple(findings), a, b if not math.isnan(b) else coef[2].item(), c,
                     dict(zip(COLUMNS, coef.tolist())), misfit, probes.batch_size)


def _fit(terms: Tensor, values: Tensor) -> tuple[Tensor, Tensor, float]:
    """Least squares values ≈ terms @ coef. Returns coef, each column's share of the values' spread
    (|coef| × the column's standard deviation / the values' standard deviation) and the relative
    root-mean-square misfit (NaN when the values do not vary)."""
    spread = values.std().item()
    size = terms.std(0)
    size[-1] = 1.0  # the constant column
    size[size == 0] = 1.0
    solution = torch.linalg.lstsq(terms / size, values.unsqueeze(1), driver="gelsd").solution.squeeze(1)
    coef = solution / size
    if spread == 0:
        return coef, torch.zeros_like(coef), math.nan
    misfit = ((values - terms @ coef).pow(2).mean().sqrt() / spread).item()
    return coef, solution.abs() / spread, misfit


def _close(u: float, v: float, rtol: float = MATCH) -> bool:
    return abs(u - v) <= rtol * max(abs(u), abs(v))


def _used(weight: Tensor, misfit: float) -> list[bool]:
    return [w >= max(NEGLIGIBLE, 100 * misfit) for w in weight.tolist()]


def _training_findings(training: dict[str, object]) -> list[Finding]:
    """Findings from :func:`check_training`'s call: a result training cannot use, changes in place."""
    findings = []
    if training.get("returns") != "tensor":
        findings.append(Finding(
            "not-a-tensor",
            "The loss returns a Python number (after .item(), float() or numpy), not a tensor: it carries no "
            "gradient, and loss.backward() fails ('float' object has no attribute 'backward').",
            "Return the tensor itself; call .item() only where the value is printed or logged.", True))
    elif not training.get("requires_grad"):
        findings.append(Finding(
            "no-gradient",
            "The loss returns a tensor with no gradient path to the outputs (computed under torch.no_grad(), "
            "after .detach(), or rebuilt with torch.tensor(...)): loss.backward() fails, and nothing trains.",
            "Compute the loss from output's tensors with torch operations, with gradients on.", True))
    changed = list(training.get("changed") or [])
    if changed:
        names = ", ".join("x" if k == "x" else f"output['{k}']" for k in changed)
        findings.append(Finding(
            "in-place",
            f"The loss changes {names} in place (an operation ending in _, such as exp_, clamp_ or add_, or an "
            "assignment into it). In training these are the model's own tensors: autograd needs them "
            "unchanged for the backward pass (RuntimeError: one of the variables needed for gradient "
            "computation has been modified by an inplace operation), and every term computed after the "
            "change sees the changed values.",
            "Use the out-of-place forms: logvar.exp() for logvar.exp_(), imgs.clamp(...) for imgs.clamp_(...), "
            "a + b for a += b on a tensor taken from output.", True))
    error = training.get("backward_error")
    if error and not changed:
        findings.append(Finding(
            "backward-fails", f"loss.backward() fails: {error}.",
            "Make every step from output to the loss a differentiable torch operation.", True))
    return findings


def _gradient_findings(training: dict[str, object] | None, coef: Tensor, weight: Tensor, misfit: float
                       ) -> list[Finding]:
    """A term the values contain but the gradient does not reach (it went through .item() or .detach())."""
    if not training or not training.get("requires_grad") or training.get("backward_error"):
        return []
    used, reaches = _used(weight, misfit), set(training.get("reaches") or [])
    findings = []
    if (used[0] or used[1]) and "imgs" not in reaches:
        findings.append(("reconstruction", "output['imgs']", "the decoder"))
    if any(used[2:8]) and not reaches & {"mean", "logvar", "z"}:
        findings.append(("KL", "output['mean'] and output['logvar']", "the encoder"))
    return [Finding(
        "detached",
        f"The {term} term counts in the loss's value, but no gradient flows from it to {keys}: it went "
        f"through .item(), .detach(), .numpy() or torch.tensor(...). Training ignores it, so {who} never "
        "learns from it.",
        f"Keep the {term} as a tensor computed from output, from start to end.", True) for term, keys, who in findings]


def _read_fit(coef: Tensor, weight: Tensor, misfit: float, small: Tensor | None, probes: Probes
              ) -> tuple[list[Finding], float]:
    """Findings from a fit that explains the values: the reconstruction, the KL's form, the two terms'
    weights and how they scale with the batch, and the constant. Also returns b, the KL's weight."""
    rec, _, mu, var, log, _, _, _, one = coef.tolist()
    used = _used(weight, misfit)
    findings = []
    if used[1]:
        kind = "a squared error" if probes.likelihood == "bernoulli" else "a binary cross-entropy"
        right = ("the binary cross-entropy, summed over pixels" if probes.likelihood == "bernoulli" else
                 f"‖x − imgs‖² / (2σ²) + (D/2) log(2πσ²) with σ = {probes.sigma:g}")
        findings.append(Finding(
            "rec-not-likelihood",
            f"The reconstruction term is (or contains) {kind}, which is not −log p(x|z) for the model's "
            f"{probes.likelihood} decoder; the gradient is not the ELBO's.",
            f"Use the decoder's own negative log-likelihood: {right}.", True))
    elif not used[0]:
        findings.append(Finding(
            "rec-missing", "The loss does not depend on the reconstruction: nothing makes the decoder fit x.",
            "Add −log p(x|z) summed over pixels, averaged over the batch.", True))
    column = None  # the column the KL's weight is read from
    if not any(used[2:8]):
        findings.append(Finding(
            "kl-missing",
            "The loss has no KL term (or a negligible one): it trains an autoencoder with noise, and codes "
            "need not stay near the prior, so samples from the prior decode to nonsense.",
            "Add KL(q(z|x) || N(0, I)) = ½Σ(μ² + σ² − log σ² − 1), summed over latent dimensions.", True))
    elif used[7]:
        column = 7
        if any(used[2:7]):
            findings.append(Finding(
                "kl-form", "The KL mixes a Monte Carlo estimate at z with closed-form terms.",
                "Use one of them: the closed form ½Σ(μ² + σ² − log σ² − 1), or log q(z|x) − log p(z).", True))
    else:
        column, form = _kl_form(mu, var, log, used)
        findings += form
    kl = coef[column].item() if column is not None else 0.0
    if used[0] and not used[1] and column is not None:
        findings += _weights(rec, kl, None if small is None else (small[0].item(), small[column].item()), probes)
        offset = one / (abs(rec) * probes.batch_size)  # nats per example, in the reconstruction's units
        if abs(offset) > 1e-3 and not any(f.code.startswith("kl-") and f.code != "kl-weight" and f.code != "kl-sign"
                                          for f in findings):  # a wrong form shifts the constant too
            findings.append(_offset(offset, kl / rec, probes))
    return findings, kl


KL_PARTS = ("½Σμ²", "½Σ(σ² − 1)", "−½Σ log σ²")
KL_FIX = "Write the KL from logvar: 0.5 * (mean**2 + logvar.exp() - logvar - 1).sum(-1)."


def _kl_form(mu: float, var: float, log: float, used: list[bool]) -> tuple[int, list[Finding]]:
    """The column to read the KL's weight from, and findings on the closed-form KL, whose parts
    ½Σμ², ½Σ(σ² − 1), −½Σ log σ² (columns 2, 3, 4) a correct KL weights equally."""
    parts = [mu, var, log]
    on = [used[2], used[3], used[4]]
    if used[5] or used[6]:
        what = "exp(2 · logvar), the variance if logvar were log σ" if used[5] else "exp(logvar / 2), σ itself"
        return (2 if on[0] else 4), [Finding(
            "kl-variance", f"The KL uses {what}, where the variance σ² = exp(logvar) belongs.", KL_FIX, True)]
    pairs = [(i, j) for i in range(3) for j in range(i + 1, 3) if on[i] and on[j] and _close(parts[i], parts[j])]
    if all(on) and len(pairs) == 3:
        return 2, []
    if pairs:  # two parts agree: they carry the KL's weight, the third is the slip
        i, j = pairs[0]
        odd = 3 - i - j
        ref = parts[i]
        ratio = parts[odd] / ref if on[odd] else 0.0
        if odd == 2 and _close(ratio, -1):
            return 2 + i, [Finding(
                "kl-log-sign",
                "The log-variance term of the KL has the wrong sign: ½Σ(μ² + σ² + log σ² − 1) in place of "
                "½Σ(μ² + σ² − log σ² − 1). It is no KL (it is negative for small σ) and it rewards a "
                "collapsing variance without bound.", KL_FIX, True)]
        if odd == 2 and (_close(ratio, 0.5) or _close(ratio, 2)):
            which = "log σ where log σ² belongs" if _close(ratio, 0.5) else "log σ² where log σ belongs"
            return 2 + i, [Finding(
                "kl-log-scale",
                f"The log term of the KL has {_times(ratio)} the weight of the others: {which}.", KL_FIX, True)]
        if odd == 0 and _close(ratio, -1):
            return 2 + i, [Finding(
                "kl-mu-sign",
                "The μ² term of the KL has the wrong sign: ½Σ(1 + log σ² + μ² − σ²) subtracted, where "
                "½Σ(1 + log σ² − μ² − σ²) belongs. The loss then rewards codes far from 0, and the KL it "
                "claims to compute can be negative.", KL_FIX, True)]
        if odd == 1 and _close(ratio, -1):
            return 2 + i, [Finding(
                "kl-var-sign",
                "The σ² term of the KL has the wrong sign: ½Σ(μ² − σ² − log σ² + 1) in place of "
                "½Σ(μ² + σ² − log σ² − 1). Nothing then stops σ from growing without bound.", KL_FIX, True)]
        if not on[odd]:
            effect = {0: "nothing pulls the codes' means towards 0",
                      1: "nothing stops σ from growing", 2: "nothing stops σ from shrinking to 0"}[odd]
            return 2 + i, [Finding(
                "kl-form", f"The KL's {KL_PARTS[odd]} part is missing: {effect}.", KL_FIX, True)]
        return 2 + i, [Finding(
            "kl-form", f"The KL's {KL_PARTS[odd]} part has {_times(ratio)} the weight of the other two; the KL "
                       "weights its three parts equally.", KL_FIX, True)]
    ref = next(i for i in range(3) if on[i])
    described = [f"{KL_PARTS[k]} is missing" if not on[k] else f"{KL_PARTS[k]} has {_times(parts[k] / parts[ref])} its weight"
                 for k in range(3) if k != ref]
    return 2 + ref, [Finding(
        "kl-form", f"The KL's parts are weighted unequally: relative to {KL_PARTS[ref]}, "
                   + " and ".join(described) + "; the KL weights its three parts equally.", KL_FIX, True)]


# --- Scales: how each term is reduced over the batch, the pixels, the latent dimensions -----------


@dataclass(frozen=True)
class _Reduction:
    """How one term is reduced: over the batch (``batch``: mean, sum, unknown) and by a
    per-example ``factor`` (1 in the ELBO), with the words that name the factor's parts."""

    batch: str
    factor: float
    words: tuple[str, ...]
    named: frozenset[str]

    def story(self) -> str:
        batch = {"mean": "averaged over the batch", "sum": "summed over the batch (not averaged)",
                 "unknown": "averaged over the batch"}[self.batch]
        return ", ".join((batch,) + self.words)


def _reduction(weight: float, small: float | None, term: str, probes: Probes) -> _Reduction:
    """The reduction of a term whose fitted weight is ``weight`` on batches of B and ``small`` on batches
    of the other size (per unit of the term summed over the batch)."""
    n, m = probes.batch_size, probes.resized_size
    batch, factor = "unknown", abs(weight) * n
    if small is not None and small * weight > 0:
        power = math.log(small / weight) / math.log(m / n)
        if abs(power + 1) < 0.01:
            batch = "mean"
        elif abs(power) < 0.01:
            batch, factor = "sum", abs(weight)
    words, named = _factor_words(factor, term, probes, batch == "sum")
    return _Reduction(batch, factor, words, named)


def _factor_words(factor: float, term: str, probes: Probes, summed: bool = False
                  ) -> tuple[tuple[str, ...], frozenset[str]]:
    """Words for a per-example factor: products of the pixel count, the latent size, ln 2 and the
    Gaussian's 1/(2σ²), times a plain fraction; for a sum over the batch (``summed``) also a
    division by a fixed whole number. The simplest reading first."""
    d, dim, s2 = probes.input_dim, probes.latent_dim, 2 * probes.sigma**2
    if term == "rec":
        named = [("pixels", 1 / d, f"averaged over the {d} pixels instead of summed")]
        if probes.likelihood == "gaussian" and not _close(s2, 1):
            named.append(("sigma", s2, f"without the Gaussian's 1/(2σ²) = {1 / s2:.4g} (σ = {probes.sigma:g})"))
    else:
        named = [("latent", 1 / dim, f"averaged over the {dim} latent dimensions instead of summed"),
                 ("pixels", 1 / d, f"divided by the number of pixels, {d}")]
    named.append(("bits", 1 / math.log(2), "in bits (divided by ln 2) rather than nats"))
    divisor = round(1 / factor) if factor > 0 else 0
    if summed and divisor >= 2 and _close(factor * divisor, 1):
        named.append(("fixed", 1 / divisor, f"divided by a fixed {divisor} where len(x) belongs"))
        if divisor == probes.batch_size:  # the batch size, written as a number: the likelier reading
            named.insert(0, named.pop())
    found = []
    for mask in range(2 ** len(named)):
        chosen = [named[k] for k in range(len(named)) if mask >> k & 1]
        rest = factor / math.prod(v for _, v, _ in chosen)
        fraction = Fraction(rest).limit_denominator(12)
        if fraction and fraction.numerator <= 12 and _close(rest, float(fraction)):
            score = len(chosen) + (0 if fraction == 1 else 10)
            words = [w for _, _, w in chosen] + ([] if fraction == 1 else [_scaled(fraction)])
            found.append((score, tuple(words), frozenset(k for k, _, _ in chosen)))
    if not found:
        return (f"multiplied by {factor:.4g}",), frozenset()
    found.sort(key=lambda f: f[0])
    score, words, keys = found[0]
    if len(found) > 1 and found[1][1] in (("halved",), ("doubled",)) and score <= 1 and words:  # L = 2: ambiguous
        words = (*words[:-1], f"{words[-1]} (or, the same here, {found[1][1][0]})")
    return words, keys


def _scaled(fraction: Fraction) -> str:
    names = {Fraction(1, 2): "halved", Fraction(2): "doubled", Fraction(1, 3): "divided by 3",
             Fraction(3): "tripled", Fraction(1, 4): "divided by 4", Fraction(4): "multiplied by 4"}
    return names.get(fraction, f"multiplied by {fraction}")


def _plain(v: float) -> Fraction | None:
    """``v`` as a plain fraction, if it is one: a whole number, 1/n, or p/q with p, q <= 12."""
    if v == 0 or not math.isfinite(v):
        return None
    candidates = [Fraction(v).limit_denominator(12)]
    if round(1 / v):
        candidates.append(Fraction(1, round(1 / v)))
    for fraction in candidates:
        if fraction and (abs(fraction.numerator) <= 12 or fraction.denominator == 1) and _close(v, float(fraction)):
            return fraction
    return None


def _times(ratio: float) -> str:
    """A ratio in words: 'half', 'twice', 'a third of', 'minus', '1/128 times', '3.7 times'."""
    words = {Fraction(1, 2): "half", Fraction(2): "twice", Fraction(1, 3): "a third of", Fraction(3): "three times",
             Fraction(1, 4): "a quarter of", Fraction(-1): "minus", Fraction(1): "the same as"}
    fraction = _plain(ratio)
    if fraction is None:
        return f"{ratio:.3g} times"
    return words.get(fraction, f"{fraction} times")


def _number(v: float) -> str:
    """A fitted coefficient: a plain fraction (1/128, 64) where it is one, else 4 significant digits."""
    fraction = _plain(v)
    if fraction is not None and abs(float(fraction) - v) <= 1e-6 * abs(v):
        return str(fraction)
    return f"{v:.4g}" if v else "0"


def _weights(rec: float, kl: float, small: tuple[float, float] | None, probes: Probes) -> list[Finding]:
    """Findings on the signs and weights of the two terms, and on the overall scale. ``small`` holds
    the two weights fitted on batches of the other size, which say how each term is reduced over the batch."""
    n = probes.batch_size
    findings = []
    if rec < 0 and kl < 0:
        findings.append(Finding(
            "negated", "The loss is the ELBO itself, not its negative: minimising it makes reconstructions "
            "worse and pushes q away from the prior.", "Return minus the ELBO.", True))
    elif rec < 0:
        findings.append(Finding(
            "rec-sign", "The reconstruction term has the wrong sign: minimising the loss makes reconstructions worse.",
            "Add −log p(x|z) (the cross-entropy or scaled squared error), not log p(x|z).", True))
    elif kl < 0:
        findings.append(Finding(
            "kl-sign",
            "The KL enters with a minus sign: minimising the loss pushes q(z|x) away from the prior, and the "
            "KL grows without bound. A function that returns −KL, or the ½Σ(1 + log σ² − μ² − σ²) form "
            "(which is −KL) added to the loss, does this.",
            "Add the KL, which is ≥ 0: ½Σ(μ² + σ² − log σ² − 1), or −½Σ(1 + log σ² − μ² − σ²).", True))
    r = _reduction(rec, None if small is None else small[0], "rec", probes)
    k = _reduction(kl, None if small is None else small[1], "kl", probes)
    beta = abs(kl / rec)
    if r.batch != k.batch or not _close(r.factor, k.factor):
        sigma_only = r.named == {"sigma"} and not k.named and _close(r.factor, 2 * probes.sigma**2 * k.factor)
        code = "rec-sigma" if sigma_only or ("sigma" in r.named and r.batch == k.batch
                                             and _close(r.factor / (2 * probes.sigma**2), k.factor)) else "kl-weight"
        depends = " at this batch size (the ratio changes with it)" if r.batch != k.batch else ""
        cause = ""
        if code == "kl-weight" and not k.named and k.factor < 1 and not _close(Fraction(k.factor).limit_denominator(
                12), k.factor):
            cause = (f" A factor like this is a weight β on the KL (a β-VAE), or a data-set-size factor such as "
                     f"batch size / N with N ≈ {n / k.factor:.0f}.")
        findings.append(Finding(
            code,
            f"The reconstruction is {r.story()}; the KL is {k.story()}. So the KL weighs {_times(beta)} what "
            f"it does in the ELBO, relative to the reconstruction{depends}.{cause} A weight other than 1 changes "
            "what is learned (above 1, codes are pulled towards the prior and carry less; below 1, they stray "
            "from it) and the loss is no longer a bound on −log p(x).",
            "Sum −log p(x|z) over pixels and the KL over latent dimensions, average both over the batch "
            "(.mean() over the examples, or divide sums by len(x)), and add them with weight 1.", True))
        return findings
    if r.batch in ("mean", "unknown") and _close(r.factor, 1):
        return findings
    scale = abs(rec) * n
    if "bits" in r.named:
        code = "bits"
        unit = "bits per dimension (÷ D ln 2)" if "pixels" in r.named else "bits (÷ ln 2)"
        fix = (f"Nothing to fix if you mean to report {unit}, as papers on images do: "
               "the gradient is the ELBO's up to that factor. For nats per example, which the doctor "
               "expects, multiply by ln 2" + (f" and by D = {probes.input_dim}." if "pixels" in r.named else "."))
    elif "pixels" in r.named:
        code, fix = "pixel-mean", "Sum over pixels (and latent dimensions), average over the batch only."
    elif r.batch == "sum" and "fixed" not in r.named:
        code, fix = "batch-sum", "Divide by len(x), or average the per-example sums with .mean()."
    elif "fixed" in r.named:
        code, fix = "fixed-batch", "Divide by len(x) (x.shape[0]), which is right for every batch, the last one included."
    else:
        code, fix = "scaled", "Average over the batch with .mean() (or divide sums by len(x)), and drop the extra factor."
    length = ("" if _close(scale, 1) else
              f" The gradient points the same way, {_times(scale)} as long (plain SGD's step changes with it; "
              "Adam hardly notices).")
    size = round(1 / r.factor) if "fixed" in r.named else 0
    fixed = (f" It would be right for batches of exactly {size} only, and is off for any other size, such as an "
             "epoch's smaller last batch." if size else "")
    findings.append(Finding(
        code,
        f"Both terms are {r.story()}, so their balance is right: the loss is {_times(scale)} the per-example "
        f"negative ELBO in nats at this batch size.{length}{fixed}", fix, False))
    return findings


def _offset(offset: float, beta: float, probes: Probes) -> Finding:
    """The finding for a constant ``offset`` (nats per example) added to the loss."""
    constant = 0.5 * probes.input_dim * math.log(2 * math.pi * probes.sigma**2)
    if probes.likelihood == "gaussian" and _close(offset, -constant, 0.02):
        cause = f"the Gaussian's normalising constant (D/2) log(2πσ²) = {constant:.4g} nats is missing"
    elif probes.likelihood == "gaussian" and _close(offset, -0.5 * probes.input_dim * math.log(2 * math.pi), 0.02):
        cause = "the ½ log 2π of every pixel is missing (F.gaussian_nll_loss leaves it out unless full=True)"
    elif _close(abs(offset), abs(beta) * probes.latent_dim / 2, 0.02):
        cause = "the −1 inside the KL's closed form is missing or has the wrong sign (L/2 nats)"
    else:
        cause = "a constant is added or missing"
    return Finding(
        "offset",
        f"The loss is shifted by {offset:+.4g} nats per example: {cause}. A constant does not change the "
        "gradient, so training is unaffected, but the value is not the negative ELBO and cannot be "
        "compared with log-likelihoods or bounds.",
        "Include every term of −log p(x|z) and of the KL if the value is to be read in nats.", False)


def _boundary_finding(name: str, value: float) -> Finding:
    what = "NaN" if math.isnan(value) else "infinite"
    if name == BOUNDARIES[0]:
        return Finding(
            "nan-probability",
            f"The loss is {what} when pixel probabilities are exactly 0 or 1 (each on a pixel it predicts "
            "right, so the true value is finite): 0 · log 0. A sigmoid rounds to exactly 0 or 1 in float32 "
            "for large logits, and one NaN ends training.",
            "Score with torch.distributions.Bernoulli(probs=imgs).log_prob(x) or F.binary_cross_entropy, "
            "which clamp the logarithm, or clamp imgs to [1e-6, 1 − 1e-6] first.", True)
    return Finding(
        "nan-logvar",
        f"The loss is {what} at {name}, where the KL is finite: the KL goes through a step that overflows "
        "or underflows, such as exp(2 · logvar) or log(exp(logvar)).",
        "Compute the KL from logvar directly: 0.5 * (mean**2 + logvar.exp() - logvar - 1).", True)


@checked(model=model_is(VAE), x=data)
def diagnose_loss(loss: Callable[[dict[str, Tensor], Tensor], object], model: VAE, x: Tensor) -> Diagnosis:
    """Diagnose ``loss(output, x)`` for ``model`` on the batch ``x`` [B, D]: :func:`make_probes`,
    :func:`evaluate` and :func:`check_training` on the model's device, then :func:`diagnose_values`.
    ``print()`` the result for the report.

    Diagnosed: a :class:`vae.VAE` (or ``ClassroomVAE``) with a Bernoulli likelihood or a Gaussian one
    with a fixed σ, and the standard normal prior. Refused with a ``ValueError`` that gives the
    reason: a learned σ, a categorical likelihood, a learned prior, and (a ``TypeError``) a conditional VAE
    (see the module's docstring). Whatever the loss itself raises comes back as a :class:`LossError`."""
    if isinstance(model, ConditionalVAE):
        raise TypeError(
            "the doctor checks losses written for the classroom interface, loss(output, x), which carries no "
            "labels; a conditional VAE's decoder and prior need y. Check the same loss on an unconditional "
            "vae.VAE with this likelihood and latent size: given y, the ELBO's terms are the same.")
    if model.config["prior"] != "standard":
        raise ValueError(
            f"this model's prior is a learned {model.config['prior']!r} prior; the KL against it has no closed "
            "form and depends on the prior's parameters, which loss(output, x) cannot reach and the doctor's "
            "probes do not come from. The doctor judges losses against N(0, I) only, so it would call a correct "
            "loss for this model wrong and an N(0, I) loss right. Check the loss on a vae.VAE with "
            "prior='standard' (the reconstruction term and its reductions are the same), and the KL against "
            "the learned prior with vae.gaussian_kl_mc.")
    if model.lik.name == "categorical":
        raise ValueError(
            "a categorical decoder's output['imgs'] holds each pixel's mean level, not the probabilities of its "
            "levels, so no loss(output, x) can compute −log p(x|z) from it; the doctor checks Bernoulli and "
            "fixed-σ Gaussian decoders. Score a categorical model with vae.elbo(model, x).")
    if model.config["learn_sigma"]:
        raise ValueError(
            "with learn_sigma=True the Gaussian's σ is a parameter of the model, and loss(output, x) sees only "
            "output['imgs'], the means: the doctor's probes fix σ. Check the loss on a model with a fixed σ "
            "(learn_sigma=False, sigma=...), where σ in the loss is the same constant.")
    device = device_of(model)
    probes = make_probes(x, model.latent_dim, model.lik.name, model.config["sigma"],
                         dtype=torch.float32 if device.type == "mps" else torch.float64)
    values = evaluate(loss, probes, device)
    return diagnose_values(probes, values, check_training(loss, probes, device))
