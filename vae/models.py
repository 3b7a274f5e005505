"""Autoencoder and VAE built from small MLPs.

Shapes used throughout: ``B`` examples in a batch, ``D`` input dimensions
(pixels), ``L`` latent dimensions, ``S`` samples of ``z`` per input.

Devices: a model lives on one device (``model.to("cuda")``, or where :func:`vae.fit` put it).
Every method takes tensors on any device and moves them to the model's device in one
place, :meth:`_Model.check` for data and :meth:`_Model.on_device` for codes, and returns
tensors there; call ``.cpu()`` on a result before handing it to numpy.

Both models take inputs in the units of their likelihood:

* ``"bernoulli"`` and ``"gaussian"``: floats, e.g. pixel intensities in [0, 1];
* ``"categorical"``: integer grey levels ``0 .. n_levels - 1`` (long or float).
  The encoder divides them by ``n_levels - 1`` so the network sees [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

from vae.checks import check_data, check_nonnegative, check_positive, check_positive_int, check_tensor

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
SIGMA_RANGE = (1e-4, 1e4)  # a Gaussian pixel scale float32 can score without over- or underflow


def mlp(sizes: list[int], final_activation: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given sizes with LeakyReLU (and dropout, if > 0) between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.LeakyReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Likelihood(nn.Module):
    """The decoder's output distribution p(x|z), one per pixel, independent.

    ``params_per_pixel`` is how many decoder outputs each pixel needs: 1 for a
    Bernoulli (a logit) or a Gaussian (a mean), ``n_levels`` for a Categorical.
    """

    def __init__(
        self,
        name: str,
        input_dim: int,
        n_levels: int = 17,
        sigma: float = 1.0,
        learn_sigma: bool = False,
    ) -> None:
        super().__init__()
        if name not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {name!r}")
        if name == "categorical":
            check_positive_int("n_levels", n_levels)
            if n_levels < 2:
                raise ValueError(f"n_levels must be at least 2, got {n_levels}")
        if name == "gaussian":
            sigma = check_positive("sigma", sigma)
            if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
                raise ValueError(
                    f"sigma must lie in [{SIGMA_RANGE[0]:g}, {SIGMA_RANGE[1]:g}] (float32 cannot score "
                    f"pixels with a scale outside it), got {sigma:g}"
                )
        self.name = name
        self.input_dim = input_dim
        self.n_levels = n_levels
        self.params_per_pixel = n_levels if name == "categorical" else 1
        if name == "gaussian":
            log_sigma = torch.full((input_dim,), math.log(sigma))
            if learn_sigma:
                self.log_sigma = nn.Parameter(log_sigma)
            else:
                self.register_buffer("log_sigma", log_sigma)

    def distribution(self, h: Tensor) -> Distribution:
        """p(x|z) from decoder outputs ``h`` of shape [..., D * params_per_pixel].

        Arguments are not validated here (inputs are checked on the way in), so
        a diverging network yields a NaN loss that ``fit`` reports, rather than
        an error from inside torch.distributions.

        The result has event shape [D]: ``log_prob(x)`` sums over pixels and
        returns nats per example, shape [...].
        """
        if self.name == "bernoulli":
            # validate_args=False lets grey levels in [0, 1] through: log_prob is
            # then minus the binary cross-entropy, which is not a normalised density.
            return Independent(Bernoulli(logits=h, validate_args=False), 1)
        if self.name == "gaussian":
            return Independent(Normal(h, self.log_sigma.exp(), validate_args=False), 1)
        logits = h.unflatten(-1, (self.input_dim, self.n_levels))
        return Independent(Categorical(logits=logits, validate_args=False), 1)

    def mean(self, h: Tensor) -> Tensor:
        """The mean of p(x|z) in input units, shape [..., D]."""
        if self.name == "bernoulli":
            return torch.sigmoid(h)
        if self.name == "gaussian":
            return h
        probs = h.unflatten(-1, (self.input_dim, self.n_levels)).softmax(-1)
        levels = torch.arange(self.n_levels, dtype=probs.dtype, device=probs.device)
        return probs @ levels

    def scale_input(self, x: Tensor) -> Tensor:
        """What the encoder sees: grey levels divided by ``n_levels - 1``."""
        x = x.float()
        return x / (self.n_levels - 1) if self.name == "categorical" else x


def diagonal_gaussian(mean: Tensor, logvar: Tensor) -> Distribution:
    """N(mean, diag(exp(logvar))) with event shape [L]: the form of every q(z|x) in the book."""
    return Independent(Normal(mean, (0.5 * logvar).exp(), validate_args=False), 1)


def _check_hidden(hidden_dims: list[int]) -> None:
    if not isinstance(hidden_dims, (list, tuple)):
        raise TypeError(f"hidden_dims must be a list of positive ints, got {hidden_dims!r}")
    if not hidden_dims:
        raise ValueError("hidden_dims must list at least one hidden layer size, got []")
    for h in hidden_dims:
        check_positive_int("each entry of hidden_dims", h)


class _Model(nn.Module):
    """What the Autoencoder and the VAE share: config, likelihood, input checks."""

    def __init__(
        self,
        input_dim: int,
        hidden_dims: list[int],
        latent_dim: int,
        likelihood: str,
        n_levels: int,
        sigma: float,
        learn_sigma: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        check_positive_int("input_dim", input_dim)
        _check_hidden(hidden_dims)
        check_positive_int("latent_dim", latent_dim)
        dropout = check_nonnegative("dropout", dropout)
        if not dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.lik = Likelihood(likelihood, input_dim, n_levels, sigma, learn_sigma)  # validates sigma
        self.config = dict(
            input_dim=input_dim,
            hidden_dims=list(hidden_dims),
            latent_dim=latent_dim,
            likelihood=likelihood,
            n_levels=n_levels,
            sigma=float(sigma),
            learn_sigma=learn_sigma,
            dropout=float(dropout),
        )
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        out_dim = input_dim * self.lik.params_per_pixel
        self.decoder = mlp([latent_dim, *reversed(hidden_dims), out_dim], dropout=dropout)

    @property
    def device(self) -> torch.device:
        """Where the model's weights live; every method moves its inputs here."""
        return next(self.parameters()).device

    def check(self, x: Tensor) -> Tensor:
        """Validate a batch ``x`` [B, D] (:func:`vae.checks.check_data`) and return it on the model's device."""
        return check_data(x, self.input_dim, self.lik.name, self.lik.n_levels).to(self.device)

    def on_device(self, t: Tensor, name: str = "z") -> Tensor:
        """A floating-point tensor ``t`` (codes, posterior parameters) moved to the model's device."""
        return check_tensor(name, t).to(self.device)

    def likelihood(self, z: Tensor) -> Distribution:
        """p(x|z) for codes ``z`` [..., L]; event shape [D]."""
        return self.lik.distribution(self.decoder(self.on_device(z)))

    def decode(self, z: Tensor) -> Tensor:
        """The mean image of p(x|z), shape [..., D], in input units."""
        return self.lik.mean(self.decoder(self.on_device(z)))


class Autoencoder(_Model):
    """A deterministic autoencoder: x -> code z [B, L] -> reconstruction.

    It is trained by maximising log p(x|z) with z = encode(x), the same
    likelihood the VAE uses, so the two can be compared term for term.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: list[int],
        latent_dim: int = 2,
        *,
        likelihood: str = "bernoulli",
        n_levels: int = 17,
        sigma: float = 1.0,
        learn_sigma: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_dim, hidden_dims, latent_dim, likelihood, n_levels, sigma, learn_sigma, dropout)
        self.encoder = mlp([input_dim, *hidden_dims, latent_dim], dropout=dropout)

    def encode(self, x: Tensor) -> Tensor:
        """The code of each input, shape [B, L]."""
        return self._encode(self.check(x))

    def _encode(self, x: Tensor) -> Tensor:
        """:meth:`encode` for a batch that :meth:`check` has already validated."""
        return self.encoder(self.lik.scale_input(x))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Returns ``imgs`` [B, D] (reconstructions) and ``z`` [B, L] (codes)."""
        z = self.encode(x)
        return {"imgs": self.decode(z), "z": z}


class VAE(_Model):
    """A variational autoencoder with a diagonal Gaussian encoder q(z|x).

    ``VAE(input_dim, hidden_dims)`` builds an encoder input_dim -> hidden_dims
    -> (mean, logvar) and a decoder latent_dim -> reversed(hidden_dims) ->
    p(x|z). Without ``latent_dim`` the latent size is ``hidden_dims[-1] // 2``.
    The prior is p(z) = N(0, I). ``dropout`` > 0 adds dropout after every
    hidden layer, a regulariser for small data sets (active in ``train()`` mode only).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: list[int],
        latent_dim: int | None = None,
        *,
        likelihood: str = "bernoulli",
        n_levels: int = 17,
        sigma: float = 1.0,
        learn_sigma: bool = False,
        dropout: float = 0.0,
    ) -> None:
        if latent_dim is None:
            _check_hidden(hidden_dims)
            latent_dim = hidden_dims[-1] // 2
        super().__init__(input_dim, hidden_dims, latent_dim, likelihood, n_levels, sigma, learn_sigma, dropout)
        self.encoder = mlp([input_dim, *hidden_dims], final_activation=True, dropout=dropout)
        self.to_mean = nn.Linear(hidden_dims[-1], latent_dim)
        self.to_logvar = nn.Linear(hidden_dims[-1], latent_dim)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Parameters of q(z|x): ``mean`` and ``logvar``, each [B, L]."""
        return self._encode(self.check(x))

    def _encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`encode` for a batch that :meth:`check` has already validated."""
        h = self.encoder(self.lik.scale_input(x))
        return self.to_mean(h), self.to_logvar(h)

    def posterior(self, x: Tensor) -> Distribution:
        """q(z|x) as a distribution with batch shape [B] and event shape [L]."""
        return diagonal_gaussian(*self.encode(x))

    def prior(self) -> Distribution:
        """p(z) = N(0, I) with event shape [L]."""
        zeros = torch.zeros(self.latent_dim, device=self.device)
        return diagonal_gaussian(zeros, zeros)

    def reparameterize(self, mean: Tensor, logvar: Tensor, n_samples_per_z: int = 1) -> Tensor:
        """Draw z = mean + exp(logvar / 2) * eps with eps ~ N(0, I).

        Gradients flow to ``mean`` and ``logvar`` through this deterministic
        map; the randomness lives in ``eps`` alone. Returns [B, L] when
        ``n_samples_per_z`` is 1, else [B, S, L]. (The rest of the library calls
        the number of draws ``n_samples``; this method and :meth:`forward` keep
        ``n_samples_per_z``, the name of the classroom interface they implement.)
        """
        check_positive_int("n_samples_per_z", n_samples_per_z)
        mean, logvar = self.on_device(mean, "mean"), self.on_device(logvar, "logvar")
        if n_samples_per_z > 1:
            mean, logvar = mean.unsqueeze(-2), logvar.unsqueeze(-2)
            shape = (*mean.shape[:-2], n_samples_per_z, mean.shape[-1])
        else:
            shape = mean.shape
        eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)
        return mean + (0.5 * logvar).exp() * eps

    def forward(self, x: Tensor, n_samples_per_z: int = 1) -> dict[str, Tensor]:
        """Encode, sample and decode a batch ``x`` [B, D] (the classroom interface).

        Returns a dict with
        ``imgs`` [B, D]: the decoder's mean image, averaged over the S samples;
        ``z`` [B, L] if S == 1 else [B, S, L]: the sampled codes;
        ``mean``, ``logvar`` [B, L]: the parameters of q(z|x).
        """
        mean, logvar = self.encode(x)
        z = self.reparameterize(mean, logvar, n_samples_per_z)
        imgs = self.decode(z)
        if n_samples_per_z > 1:
            imgs = imgs.mean(dim=-2)
        return {"imgs": imgs, "z": z, "mean": mean, "logvar": logvar}

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """Decode ``n`` draws from the prior: mean images, shape [n, D].

        For pixel noise as well, draw from ``self.likelihood(z)``.
        """
        check_positive_int("n", n)
        return self.decode(self.prior().sample((n,)))


def check_model(model: object, vae_only: bool = False) -> None:
    """Raise a ``TypeError`` unless ``model`` is a :class:`VAE` (or, unless ``vae_only``, an :class:`Autoencoder`)."""
    if vae_only and isinstance(model, Autoencoder):
        raise TypeError("this needs a vae.VAE: an Autoencoder has no posterior q(z|x) to sample from")
    if not isinstance(model, (VAE,) if vae_only else (VAE, Autoencoder)):
        expected = "a vae.VAE" if vae_only else "a vae.VAE or vae.Autoencoder"
        raise TypeError(f"model must be {expected}, got {type(model).__name__}")
