"""The decoder's output distribution p(x|z): one distribution per pixel, independent.

A likelihood turns the decoder's outputs ``h`` [..., D * params_per_pixel] into a torch
``Distribution`` with event shape [D], so ``log_prob(x)`` sums over pixels and returns nats per
example, shape [...]. Each kind is a subclass:

* :class:`BernoulliLikelihood`: black-and-white pixels, or grey levels in [0, 1] (then ``log_prob``
  is minus the binary cross-entropy, which is not a normalised density);
* :class:`GaussianLikelihood`: real-valued pixels with a scale σ per pixel, fixed or learned;
* :class:`CategoricalLikelihood`: integer grey levels ``0 .. n_levels - 1``, one softmax per pixel.

The distributions are built with ``validate_args=False``: a diverging network then gives a NaN loss
that ``fit`` reports, not an error from inside torch.distributions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

from vae.validation import check_positive, check_positive_int

SIGMA_RANGE = (1e-4, 1e4)  # a Gaussian pixel scale float32 can score without over- or underflow


class Likelihood(nn.Module):
    """p(x|z) for D = ``input_dim`` pixels. ``params_per_pixel``: decoder outputs each pixel needs."""

    name: str
    params_per_pixel = 1
    n_levels = 2
    max_value = 1.0  # the largest pixel value, for drawing images

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.input_dim = input_dim

    def distribution(self, h: Tensor) -> Distribution:
        """p(x|z) from decoder outputs ``h`` [..., D * params_per_pixel]; event shape [D]."""
        raise NotImplementedError

    def mean(self, h: Tensor) -> Tensor:
        """The mean of p(x|z) in input units, shape [..., D]."""
        raise NotImplementedError

    def scale_input(self, x: Tensor) -> Tensor:
        """What the encoder sees of an input ``x`` [..., D]: floats in [0, 1] or real values."""
        return x.float()


class BernoulliLikelihood(Likelihood):
    name = "bernoulli"

    def distribution(self, h: Tensor) -> Distribution:
        return Independent(Bernoulli(logits=h, validate_args=False), 1)

    def mean(self, h: Tensor) -> Tensor:
        return torch.sigmoid(h)


class GaussianLikelihood(Likelihood):
    """N(h, σ²) per pixel; ``log_sigma`` [D] is learned with the model when ``learn_sigma``."""

    name = "gaussian"

    def __init__(self, input_dim: int, sigma: float = 1.0, learn_sigma: bool = False) -> None:
        super().__init__(input_dim)
        log_sigma = torch.full((input_dim,), math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def distribution(self, h: Tensor) -> Distribution:
        return Independent(Normal(h, self.log_sigma.exp(), validate_args=False), 1)

    def mean(self, h: Tensor) -> Tensor:
        return h


class CategoricalLikelihood(Likelihood):
    """A softmax over ``n_levels`` grey levels per pixel; the encoder sees levels / (n_levels - 1)."""

    name = "categorical"

    def __init__(self, input_dim: int, n_levels: int = 17) -> None:
        super().__init__(input_dim)
        self.n_levels = n_levels
        self.params_per_pixel = n_levels
        self.max_value = float(n_levels - 1)

    def distribution(self, h: Tensor) -> Distribution:
        logits = h.unflatten(-1, (self.input_dim, self.n_levels))
        return Independent(Categorical(logits=logits, validate_args=False), 1)

    def mean(self, h: Tensor) -> Tensor:
        probs = h.unflatten(-1, (self.input_dim, self.n_levels)).softmax(-1)
        levels = torch.arange(self.n_levels, dtype=probs.dtype, device=probs.device)
        return probs @ levels

    def scale_input(self, x: Tensor) -> Tensor:
        return x.float() / (self.n_levels - 1)


LIKELIHOODS = ("bernoulli", "gaussian", "categorical")


def make_likelihood(
    name: str, input_dim: int, n_levels: int = 17, sigma: float = 1.0, learn_sigma: bool = False
) -> Likelihood:
    """The likelihood a model's ``likelihood=name`` asks for, its settings checked."""
    if name == "bernoulli":
        return BernoulliLikelihood(input_dim)
    if name == "gaussian":
        sigma = check_positive("sigma", sigma)
        if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
            raise ValueError(
                f"sigma must lie in [{SIGMA_RANGE[0]:g}, {SIGMA_RANGE[1]:g}] (float32 cannot score "
                f"pixels with a scale outside it), got {sigma:g}"
            )
        return GaussianLikelihood(input_dim, sigma, learn_sigma)
    if name == "categorical":
        if check_positive_int("n_levels", n_levels) < 2:
            raise ValueError(f"n_levels must be at least 2, got {n_levels}")
        return CategoricalLikelihood(input_dim, n_levels)
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {name!r}")
