"""The loss doctor: say in plain words what a hand-written VAE loss computes, and how to fix it.

A learner's loss is written against the classroom interface, ``loss(output, x)``, where ``output``
is the dict that :func:`vae.interface.classroom_output` returns (``imgs`` [B, D], ``z`` [B, L], ``mean`` [B, L],
``logvar`` [B, L]) and the result is one number. The right answer is the negative ELBO per example
in nats: the mean over the batch of −log p(x|z) summed over pixels, plus KL(q(z|x) || p(z)).

The doctor never reads the loss's source. It calls the loss on probes, outputs whose true terms it
knows, and fits the values by least squares as

    loss ≈ a · rec + b · kl + c,

with ``rec`` the reconstruction term −log p(x|z) and ``kl`` the Gaussian KL, both in nats summed
over the batch (so a correct loss has a = b = 1/B and c = 0). To tell the KL's closed form apart
from its common misspellings, the KL enters the fit as its three parts, ½Σμ², ½Σ(σ² − 1) and
−½Σ log σ², which a correct loss weights equally; further columns catch a variance written as
exp(2 · logvar) or exp(logvar / 2), a reconstruction of the other kind (squared error for a
Bernoulli, cross-entropy for a Gaussian), and a Monte Carlo KL at ``output["z"]``, which is
correct. A few more probes put the outputs at their boundaries (probabilities exactly 0 or 1,
logvar at ±50), where a correct loss stays finite.

The work splits in three, so that a grader can run the learner's code in a sandbox:
:func:`make_probes` builds the probes (plain tensors, trusted code), :func:`evaluate` calls the loss
on each (the only step that runs the learner's code; it returns plain floats) and
:func:`diagnose_values` turns those floats into a :class:`Diagnosis`. :func:`diagnose_loss` does the
three in one call for a :class:`vae.VAE`.
"""

from __future__ import annotations

import math
import numbers
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vae.boundary import checked, data, device_of, model_is, outside
from vae.likelihoods import SIGMA_RANGE
from vae.models import VAE, ConditionalVAE
from vae.validation import check_data, check_positive, check_positive_int

N_FIT = 48  # probes for the least-squares fit; it has 9 unknowns
LOGVAR_EDGE = 50.0  # a logvar far out, where float32 still holds every correct loss's value
TOLERANCE = 1e-3  # the largest misfit the fit accepts, relative to the spread of the loss's values
NEGLIGIBLE = 1e-5  # a column whose share of that spread is below this (or 100 misfits) is not in the loss
COLUMNS = ("rec", "other rec", "kl mu^2", "kl sigma^2", "kl log sigma^2", "exp(2 logvar)",
           "exp(logvar/2)", "kl at z", "1")
BOUNDARIES = ("probabilities exactly 0 or 1", f"logvar = +{LOGVAR_EDGE:g}", f"logvar = -{LOGVAR_EDGE:g}")


@dataclass(frozen=True)
class Probes:
    """Outputs with known terms on which to call a loss, built by :func:`make_probes`.

    ``outputs[i]`` and ``xs[i]`` are the arguments of call i; ``names[i]`` is ``"fit"`` for the
    ``N_FIT`` probes that enter the fit and a boundary's description for the others.
    ``terms`` [N_FIT, 9] holds the fit probes' known terms, in nats summed over the batch
    (columns as in ``COLUMNS``). ``entropy`` is Σ_i H(x_i) per example for a Bernoulli likelihood:
    the least a cross-entropy can be when pixels are grey (0 for binary pixels).
    """

    outputs: list[dict[str, Tensor]]
    xs: list[Tensor]
    names: list[str]
    terms: Tensor
    likelihood: str
    sigma: float
    batch_size: int
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
    """What a loss computes. ``a``, ``b``, ``c``: the fit loss ≈ a · rec + b · kl + c, with rec and
    kl in nats summed over the batch (a correct loss: a = b = 1/B, c = 0); b is read from the KL's
    μ² part, or from a Monte Carlo KL. ``coefficients``: every column of the fit. ``misfit``: the
    root-mean-square misfit relative to the spread of the values. ``findings``: empty when the loss
    is the per-example negative ELBO in nats. ``str()`` gives the report in words."""

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
        if math.isnan(self.a):
            fit = "no fit: too few probes gave a finite value."
        else:
            b, c = (f"{'−' if v < 0 else '+'} {abs(v):.4g}" for v in (self.b, self.c))
            fit = (f"loss ≈ {self.a:.4g} · rec {b} · KL {c}, where rec and KL are "
                   f"summed over the batch of {self.batch_size} (a correct loss: {1 / self.batch_size:.4g}, "
                   f"{1 / self.batch_size:.4g}, 0); misfit {self.misfit:.1e}.")
        verdict = ("Loss doctor: correct. The loss is the negative ELBO per example, in nats (the mean over the "
                   "batch of −log p(x|z) summed over pixels, plus the KL), and it stays finite at the boundaries."
                   if self.correct else "Loss doctor: this is not the per-example negative ELBO.")
        lines = [(verdict, "", "  "), (f"Fit: {fit}", "  ", "    ")]  # (text, first indent, indent)
        for i, f in enumerate(self.findings, 1):
            effect = "changes what is learned" if f.changes_gradient else "changes only the value"
            lines += [(f"{i}. [{f.code}; {effect}] {f.text}", "  ", "     "), (f"Fix: {f.fix}", "     ", "     ")]
        return "\n".join(textwrap.fill(text, 100, initial_indent=first, subsequent_indent=rest)
                         for text, first, rest in lines)


def make_probes(
    x: Tensor, latent_dim: int, likelihood: str = "bernoulli", sigma: float = 1.0, seed: int = 0
) -> Probes:
    """Probes for a loss on the batch ``x`` [B, D] (B >= 2) with ``latent_dim`` latent dimensions.

    ``likelihood`` is the decoder's: ``"bernoulli"`` (``imgs`` are pixel probabilities) or
    ``"gaussian"`` with standard deviation ``sigma`` (``imgs`` are the means). Each probe keeps x's
    rows (shuffled) and draws ``imgs`` in [0.02, 0.98], ``mean``, ``logvar`` and ``z = mean +
    exp(logvar / 2) · eps`` at random scales, so that the fit's columns vary independently.
    Deterministic for a given ``seed``; everything lives on the CPU.
    """
    if likelihood == "categorical":
        raise ValueError("a categorical likelihood cannot be scored from output['imgs'], which holds only "
                         "each pixel's mean level; the doctor checks 'bernoulli' and 'gaussian' losses")
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    width = x.shape[-1] if isinstance(x, (Tensor, np.ndarray)) and x.ndim == 2 else 0
    x = check_data(x, width, likelihood).float().cpu()
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples, to tell a sum over the batch from a mean; got {len(x)}")
    latent_dim = check_positive_int("latent_dim", latent_dim)
    sigma = check_positive("sigma", sigma)
    if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
        raise ValueError(f"sigma must lie in [{SIGMA_RANGE[0]:g}, {SIGMA_RANGE[1]:g}], got {sigma:g}")
    gen = torch.Generator().manual_seed(seed)
    n, d = x.shape

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=gen).item()

    def draw() -> tuple[dict[str, Tensor], Tensor]:
        xs = x[torch.randperm(n, generator=gen)]
        follow, power = uniform(0, 1), uniform(0.3, 3)  # how closely imgs follow x, and the noise's shape
        noise = torch.rand(n, d, generator=gen) ** power
        imgs = 0.02 + 0.96 * (follow * xs.clamp(0, 1) + (1 - follow) * noise)
        mean = uniform(0, 2) * torch.randn(n, latent_dim, generator=gen)
        logvar = uniform(-3, 1) + uniform(0, 1) * torch.randn(n, latent_dim, generator=gen)
        eps = uniform(0, 2) * torch.randn(n, latent_dim, generator=gen)
        z = mean + (0.5 * logvar).exp() * eps
        return {"imgs": imgs, "z": z, "mean": mean, "logvar": logvar}, xs

    outputs, xs = map(list, zip(*(draw() for _ in range(N_FIT))))
    terms = torch.stack([_terms(o, xb, likelihood, sigma) for o, xb in zip(outputs, xs)])

    edge, x_edge = draw()  # the same outputs pushed to each boundary in turn
    at_01 = (x_edge == 0) | (x_edge == 1)
    boundary = [{**edge, "imgs": torch.where(at_01, x_edge, edge["imgs"])}]  # finite: each such pixel is right
    for sign in (1, -1):
        logvar = edge["logvar"].clone()
        logvar[:, 0] = sign * LOGVAR_EDGE
        z = edge["mean"] + (0.5 * logvar).exp() * torch.randn(n, latent_dim, generator=gen)
        boundary.append({**edge, "logvar": logvar, "z": z})
    entropy = 0.0
    if likelihood == "bernoulli":
        p = x.double()
        entropy = (torch.special.entr(p) + torch.special.entr(1 - p)).sum(-1).mean().item()
    return Probes(
        outputs=outputs + boundary,
        xs=xs + [x_edge] * len(boundary),
        names=["fit"] * N_FIT + list(BOUNDARIES),
        terms=terms,
        likelihood=likelihood,
        sigma=sigma,
        batch_size=n,
        input_dim=d,
        latent_dim=latent_dim,
        entropy=entropy,
    )


def _terms(output: dict[str, Tensor], x: Tensor, likelihood: str, sigma: float) -> Tensor:
    """The known terms of one probe, each summed over the batch, in float64: the columns of ``COLUMNS``."""
    p, x = output["imgs"].double(), x.double()
    mean, logvar, z = (output[k].double() for k in ("mean", "logvar", "z"))
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).sum()
    sse = (x - p).pow(2).sum()
    if likelihood == "bernoulli":
        rec, other = bce, sse
    else:
        rec, other = sse / (2 * sigma**2) + 0.5 * x.numel() * math.log(2 * math.pi * sigma**2), bce
    kl_at_z = 0.5 * (z.pow(2) - (z - mean).pow(2) / logvar.exp() - logvar).sum()  # log q(z|x) − log p(z)
    return torch.stack([
        rec,
        other,
        0.5 * mean.pow(2).sum(),
        0.5 * (logvar.exp() - 1).sum(),
        -0.5 * logvar.sum(),
        0.5 * (2 * logvar).exp().sum(),
        0.5 * (0.5 * logvar).exp().sum(),
        kl_at_z,
        torch.ones((), dtype=torch.float64),
    ])


def evaluate(loss: Callable[[dict[str, Tensor], Tensor], object], probes: Probes, device: str | torch.device = "cpu"
             ) -> list[float]:
    """Call ``loss(output, x)`` on every probe (on ``device``, each call with fresh copies) and return
    the values as Python floats; NaN and inf are kept. This is the only step that runs the loss.

    Raises a ``TypeError`` if the loss returns anything but one number (a tensor with one element).
    """
    if not callable(loss):
        raise TypeError(f"loss must be a function loss(output, x), got {type(loss).__name__}")
    values = []
    with torch.no_grad():
        for output, x in zip(probes.outputs, probes.xs):
            copy = {k: v.to(device, copy=True) for k, v in output.items()}
            with outside():  # the learner's code calls the library as any caller does: checked
                value = loss(copy, x.to(device, copy=True))
            if isinstance(value, (Tensor, np.ndarray, np.generic)):
                if (value.numel() if isinstance(value, Tensor) else value.size) != 1:
                    raise TypeError(f"loss(output, x) must return one number for the batch, got shape "
                                    f"{list(value.shape)}; average the per-example losses with .mean()")
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"loss(output, x) must return one number, got {type(value).__name__}")
            values.append(float(value))
    return values


def diagnose_values(probes: Probes, values: list[float]) -> Diagnosis:
    """The diagnosis of a loss from its ``values`` on ``probes`` (one float per probe, as
    :func:`evaluate` returns them; NaN and inf allowed). Plain arithmetic: runs no learner code."""
    if len(values) != len(probes.names):
        raise ValueError(f"values must hold one number per probe ({len(probes.names)}), got {len(values)}")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in values):
        raise TypeError("values must be numbers, one per probe, as evaluate returns them")
    y = torch.tensor([float(v) for v in values], dtype=torch.float64)
    fit, edges = y[:N_FIT], y[N_FIT:]
    findings = []
    finite = torch.isfinite(fit)
    if not finite.all():
        findings.append(Finding(
            "nan",
            f"The loss is NaN or infinite on {int((~finite).sum())} of {N_FIT} ordinary outputs (probabilities "
            "in [0.02, 0.98], logvar within a few units of 0), where every term of the ELBO is finite: it "
            "takes the log or square root of something that can be negative, such as logvar.",
            "logvar is any real number; use exp(logvar) for the variance and exp(logvar / 2) for the "
            "standard deviation.", True))
    coef = torch.full((len(COLUMNS),), math.nan, dtype=torch.float64)
    misfit = math.nan
    if int(finite.sum()) >= 2 * len(COLUMNS):
        coef, weight, misfit = _fit(probes.terms[finite], fit[finite])
        if math.isnan(misfit):
            findings.append(Finding(
                "constant", "The loss does not change when the outputs change: it cannot train anything.",
                "Compute the loss from output['imgs'], output['mean'] and output['logvar'].", True))
        elif misfit > TOLERANCE:
            findings.append(Finding(
                "unexplained",
                f"The loss is not a weighted sum of the reconstruction and KL terms the doctor knows (misfit "
                f"{misfit:.1e}): it computes something else, such as a reconstruction that is neither "
                "the log-likelihood nor a squared error, or a KL with terms of another form.",
                "Compare the loss term by term with −log p(x|z) summed over pixels and the closed-form "
                "KL ½Σ(μ² + σ² − log σ² − 1), both averaged over the batch.", True))
        else:
            findings += _read_fit(coef, weight, misfit, probes)
    for name, value in zip(probes.names[N_FIT:], edges.tolist()):
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
    a, c = coef[0].item(), coef[-1].item()
    b = coef[7].item() if abs(coef[7].item()) > abs(coef[2].item()) else coef[2].item()
    return Diagnosis(tuple(findings), a, b, c, dict(zip(COLUMNS, coef.tolist())), misfit, probes.batch_size)


def _fit(terms: Tensor, values: Tensor) -> tuple[Tensor, Tensor, float]:
    """Least squares values ≈ terms @ coef. Returns coef, each column's share of the values' spread
    (|coef| × the column's standard deviation / the values' standard deviation) and the relative
    root-mean-square misfit (NaN when the values do not vary)."""
    spread = values.std().item()
    size = terms.std(0)
    size[-1] = 1.0  # the constant column
    solution = torch.linalg.lstsq(terms / size, values.unsqueeze(1)).solution.squeeze(1)
    coef = solution / size
    if spread == 0:
        return coef, torch.zeros_like(coef), math.nan
    misfit = ((values - terms @ coef).pow(2).mean().sqrt() / spread).item()
    return coef, solution.abs() / spread, misfit


def _close(u: float, v: float, rtol: float = 0.02) -> bool:
    return abs(u - v) <= rtol * max(abs(u), abs(v))


def _read_fit(coef: Tensor, weight: Tensor, misfit: float, probes: Probes) -> list[Finding]:
    """Findings from a fit that explains the values: the reconstruction, the KL's form, their weights,
    the overall scale and the constant."""
    rec, _, mu, var, log, _, _, at_z, one = coef.tolist()
    used = [w >= max(NEGLIGIBLE, 100 * misfit) for w in weight.tolist()]
    n = probes.batch_size
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
    closed = any(used[2:7])
    if not closed and not used[7]:
        findings.append(Finding(
            "kl-missing",
            "The loss has no KL term (or a negligible one): it trains an autoencoder with noise, and codes "
            "need not stay near the prior, so samples from the prior decode to nonsense.",
            "Add KL(q(z|x) || N(0, I)) = ½Σ(μ² + σ² − log σ² − 1), summed over latent dimensions.", True))
        kl = 0.0
    elif used[7]:
        kl = at_z
        if closed:
            findings.append(Finding(
                "kl-form", "The KL mixes a Monte Carlo estimate at z with closed-form terms.",
                "Use one of them: the closed form ½Σ(μ² + σ² − log σ² − 1), or log q(z|x) − log p(z).", True))
    else:
        kl = mu if used[2] else var
        findings += _kl_form(kl, var, log, used[5], used[6])
    if used[0] and not used[1] and kl != 0:
        findings += _weights(rec, kl, probes)
        offset = one / (abs(rec) * n)  # nats per example, in the reconstruction's units
        kl_forms = {"kl-form", "kl-variance", "kl-log-sign", "kl-log-scale"}
        if abs(offset) > 1e-2 and not kl_forms & {f.code for f in findings}:  # a wrong form shifts the constant too
            findings.append(_offset(offset, kl / rec, probes))
    return findings


def _kl_form(kl: float, var: float, log: float, exp2: bool, exphalf: bool) -> list[Finding]:
    """Findings on the closed-form KL, whose parts ½Σμ², ½Σ(σ² − 1), −½Σ log σ² have weights kl, var, log."""
    fix = "Write the KL from logvar: 0.5 * (mean**2 + logvar.exp() - logvar - 1).sum(-1)."
    if exp2 or exphalf:
        used = "exp(2 · logvar), the variance if logvar were log σ" if exp2 else "exp(logvar / 2), σ itself"
        return [Finding("kl-variance", f"The KL uses {used}, where the variance σ² = exp(logvar) belongs.", fix, True)]
    if _close(var, kl) and _close(log, kl):
        return []
    if _close(var, kl) and _close(log, -kl):
        return [Finding(
            "kl-log-sign",
            "The log-variance term of the KL has the wrong sign: ½Σ(μ² + σ² + log σ² − 1) in place of "
            "½Σ(μ² + σ² − log σ² − 1). It is no KL (it is negative for small σ) and it rewards a "
            "collapsing variance without bound.", fix, True)]
    if _close(var, kl) and (_close(log, kl / 2) or _close(log, 2 * kl)):
        which = "log σ where log σ² belongs" if _close(log, kl / 2) else "log σ² where log σ belongs"
        return [Finding(
            "kl-log-scale",
            f"The log term of the KL has {log / kl:g} times the weight of the others: {which}.", fix, True)]
    return [Finding(
        "kl-form",
        f"The KL's parts ½Σμ², ½Σ(σ² − 1), −½Σ log σ² have weights 1 : {var / kl:.3g} : {log / kl:.3g}; "
        "the KL weights them equally.", fix, True)]


def _weights(rec: float, kl: float, probes: Probes) -> list[Finding]:
    """Findings on the signs and weights of the two terms, and on the overall scale."""
    n, d = probes.batch_size, probes.input_dim
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
    beta, scale = abs(kl / rec), abs(rec) * n
    if not _close(beta, 1):
        matches = [(code, words) for value, code, words in _weight_causes(probes) if _close(beta, value)]
        if not matches:
            size = f" such as batch size / N with N ≈ {n / beta:.0f}" if beta < 1 else ""
            matches = [("kl-weight", f"a weight β on the KL (a β-VAE), or a data-set-size factor{size}")]
        findings.append(Finding(
            matches[0][0],
            f"The KL weighs {beta:.4g} times what it does in the ELBO, relative to the reconstruction: "
            + "; or ".join(words for _, words in matches) + ". A weight other than 1 changes what is "
            "learned (above 1, codes are pulled towards the prior and carry less; below 1, they stray from it) and the "
            "loss is no longer a bound on −log p(x).",
            "Sum −log p(x|z) over pixels and the KL over latent dimensions, average both over the batch, "
            "and add them with weight 1.", True))
    elif _close(scale, n):
        findings.append(Finding(
            "batch-sum",
            f"The loss is summed over the batch, not averaged: {n} times the per-example value. The gradient "
            f"points the same way but is {n} times longer (plain SGD's step grows with the batch; Adam "
            "hardly notices), and values must be divided by the batch size to read as nats per example.",
            "Divide by len(x), or average the per-example sums with .mean().", False))
    elif _close(scale, 1 / d):
        findings.append(Finding(
            "pixel-mean",
            f"The loss is averaged over the {d} pixels as well: nats per pixel, not per example. The balance "
            f"of the two terms is right, so the gradient points the same way, {d} times shorter.",
            "Sum over pixels (and latent dimensions), average over the batch only.", False))
    elif not _close(scale, 1):
        findings.append(Finding(
            "scaled",
            f"The loss is {scale:.4g} times the per-example negative ELBO (a fixed batch size in place of "
            "len(x), or another constant factor): the gradient points the same way, with another length.",
            "Divide the sums over the batch by len(x).", False))
    return findings


def _weight_causes(probes: Probes) -> list[tuple[float, str, str]]:
    """Weights of the KL relative to the reconstruction that common slips produce: (weight, code, cause)."""
    n, d, dim, sigma = probes.batch_size, probes.input_dim, probes.latent_dim, probes.sigma
    gaussian = [
        (1 / (2 * sigma**2), "rec-sigma",
         f"the reconstruction is the summed squared error, without the Gaussian's 1/(2σ²) for σ = {sigma:g}"),
        (d / (2 * sigma**2), "rec-sigma",
         f"the reconstruction is the squared error averaged over the {d} pixels, without the Gaussian's 1/(2σ²)"),
    ]
    return (gaussian if probes.likelihood == "gaussian" else []) + [
        (2, "kl-weight", "the ½ in front of the KL's closed form is missing (or β = 2)"),
        (0.5, "kl-weight", "the KL is halved (β = 0.5)"),
        (d, "kl-weight",
         (f"the reconstruction is averaged over the {d} pixels while the KL is summed over the latent dimensions "
          "(F.binary_cross_entropy, F.mse_loss and Keras' losses average by default)")),
        (d / dim, "kl-weight",
         f"the reconstruction is averaged over the {d} pixels and the KL over the {dim} latent dimensions"),
        (1 / dim, "kl-weight", f"the KL is averaged over the {dim} latent dimensions instead of summed"),
        (1 / d, "kl-weight", f"the KL is divided by the number of pixels, {d}"),
        (n, "kl-weight", "the KL is summed over the batch while the reconstruction is averaged over it"),
        (1 / n, "kl-weight", "the KL is averaged over the batch while the reconstruction is summed over it"),
        (n * d, "kl-weight",
         ("the reconstruction is averaged over the batch and the pixels (F.binary_cross_entropy's default) "
          "while the KL is summed over the batch")),
    ]


def _offset(offset: float, beta: float, probes: Probes) -> Finding:
    """The finding for a constant ``offset`` (nats per example) added to the loss."""
    constant = 0.5 * probes.input_dim * math.log(2 * math.pi * probes.sigma**2)
    if probes.likelihood == "gaussian" and _close(offset, -constant):
        cause = f"the Gaussian's normalising constant (D/2) log(2πσ²) = {constant:.4g} nats is missing"
    elif probes.likelihood == "gaussian" and _close(offset, -0.5 * probes.input_dim * math.log(2 * math.pi)):
        cause = "the ½ log 2π of every pixel is missing (F.gaussian_nll_loss leaves it out unless full=True)"
    elif _close(abs(offset), abs(beta) * probes.latent_dim / 2):
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
    """Diagnose ``loss(output, x)`` for ``model`` (a :class:`vae.VAE` with a Bernoulli or fixed-σ
    Gaussian likelihood) on the batch ``x`` [B, D]: :func:`make_probes`, :func:`evaluate` on the
    model's device, then :func:`diagnose_values`. ``print()`` the result for the report.

    Models it refuses, with the reason: a learned σ, a learned prior (the classroom's loss has no
    way to reach p(z), so its KL would be judged against the wrong prior) and a conditional VAE
    (the classroom interface carries no labels)."""
    if model.config["learn_sigma"]:
        raise ValueError("the doctor needs a fixed σ: a loss(output, x) cannot see a learned one")
    if model.config["prior"] != "standard":
        raise ValueError(f"the doctor judges losses against the prior N(0, I); this model's prior is "
                         f"{model.config['prior']!r}, which a loss(output, x) cannot reach")
    if isinstance(model, ConditionalVAE):
        raise ValueError("the doctor speaks the classroom interface, which has no labels: use an unconditional vae.VAE")
    probes = make_probes(x, model.latent_dim, model.lik.name, model.config["sigma"])
    return diagnose_values(probes, evaluate(loss, probes, device_of(model)))
