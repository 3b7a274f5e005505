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
from vae.priors import VampPrior, diagonal_gaussian, make_prior

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


def _check_hidden(hidden_dims: list[int]) -> None:
    if not isinstance(hidden_dims, (list, tuple)):
        raise TypeError(f"hidden_dims must be a list of positive ints, got {hidden_dims!r}")
    if not hidden_dims:
        raise ValueError("hidden_dims must list at least one hidden layer size, got []")
    for h in hidden_dims:
        check_positive_int("each entry of hidden_dims", h)


def with_labels(h: Tensor, c: Tensor | None) -> Tensor:
    """``h`` [..., F] with one-hot labels ``c`` (broadcast to [..., C]) appended: [..., F + C].

    This is all that makes a model conditional: its encoder sees the image and its label, and
    its decoder the code and the label (Sohn et al., 2015). ``h`` itself when ``c`` is None.
    """
    return h if c is None else torch.cat([h, c.expand(*h.shape[:-1], -1)], -1)


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
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        check_positive_int("input_dim", input_dim)
        _check_hidden(hidden_dims)
        check_positive_int("latent_dim", latent_dim)
        dropout = check_nonnegative("dropout", dropout)
        if not dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if n_classes != 0 and check_positive_int("n_classes", n_classes) < 2:
            raise ValueError(f"a conditional model needs n_classes >= 2 (or 0 for none), got {n_classes}")
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
        self.n_classes = n_classes
        out_dim = input_dim * self.lik.params_per_pixel
        self.decoder = mlp([latent_dim + n_classes, *reversed(hidden_dims), out_dim], dropout=dropout)

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

    def one_hot(self, y: Tensor | None, shape: tuple[int, ...]) -> Tensor | None:
        """Labels ``y`` (ints ``0 .. n_classes - 1`` that broadcast to ``shape``) as one-hot rows [..., C].

        The result is on the model's device. ``None`` for an unconditional model (``n_classes=0``),
        which takes no labels; a conditional one needs them.
        """
        if not self.n_classes:
            if y is not None:
                raise ValueError("this model is unconditional (n_classes=0): it takes no labels y")
            return None
        if y is None:
            raise ValueError(f"this model is conditional (n_classes={self.n_classes}): pass the labels y")
        y = torch.as_tensor(y)
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"labels y must be integers 0..{self.n_classes - 1}, got dtype {y.dtype}")
        try:
            torch.broadcast_shapes(y.shape, shape)
        except RuntimeError:
            raise ValueError(f"labels y of shape {list(y.shape)} do not match the batch {list(shape)}") from None
        if y.numel() and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"labels y must lie in 0..{self.n_classes - 1}, got values in [{y.min()}, {y.max()}]")
        return nn.functional.one_hot(y.long(), self.n_classes).float().to(self.device)

    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x|z) for codes ``z`` [..., L], or p(x|z, y) for a conditional model; event shape [D]."""
        z = self.on_device(z)
        return self._likelihood(z, self.one_hot(y, z.shape[:-1]))

    def _likelihood(self, z: Tensor, c: Tensor | None = None) -> Distribution:
        """:meth:`likelihood` for codes on the model's device and labels ``c`` already one-hot [..., C]."""
        return self.lik.distribution(self.decoder(with_labels(z, c)))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """The mean image of p(x|z) (or p(x|z, y)), shape [..., D], in input units."""
        z = self.on_device(z)
        return self.lik.mean(self.decoder(with_labels(z, self.one_hot(y, z.shape[:-1]))))


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
    ``dropout`` > 0 adds dropout after every hidden layer, a regulariser for
    small data sets (active in ``train()`` mode only).

    The prior p(z) is N(0, I) unless ``prior`` names a learned one
    (:mod:`vae.priors`): ``"mixture"``, a mixture of ``n_components``
    Gaussians, or ``"vamp"``, the VampPrior with ``n_components``
    pseudo-inputs. With ``n_classes`` > 0 the model is a conditional VAE:
    encoder and decoder also see the label y (one-hot), it models p(x|y),
    and every method that encodes or decodes needs the labels ``y``, ints
    ``0 .. n_classes - 1``. The prior stays unconditional.
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
        prior: str = "standard",
        n_components: int = 1,
        n_classes: int = 0,
    ) -> None:
        if latent_dim is None:
            _check_hidden(hidden_dims)
            latent_dim = hidden_dims[-1] // 2
        super().__init__(
            input_dim, hidden_dims, latent_dim, likelihood, n_levels, sigma, learn_sigma, dropout, n_classes
        )
        if prior == "vamp" and n_classes:
            raise ValueError("a VampPrior passes pseudo-inputs through the encoder, which needs no labels: "
                             "use prior='mixture' or 'standard' for a conditional model")
        self.config.update(prior=prior, n_components=n_components, n_classes=n_classes)
        self.encoder = mlp([input_dim + n_classes, *hidden_dims], final_activation=True, dropout=dropout)
        self.to_mean = nn.Linear(hidden_dims[-1], latent_dim)
        self.to_logvar = nn.Linear(hidden_dims[-1], latent_dim)
        self.latent_prior = make_prior(prior, n_components, latent_dim, input_dim)  # validates both

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Parameters of q(z|x) (q(z|x, y) for a conditional model): ``mean`` and ``logvar``, each [B, L]."""
        x = self.check(x)
        return self._encode(x, self.one_hot(y, x.shape[:1]))

    def _encode(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """:meth:`encode` for a batch that :meth:`check` has already validated (labels one-hot, if any)."""
        return self._encode_scaled(with_labels(self.lik.scale_input(x), c))

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z|x) as a distribution with batch shape [B] and event shape [L]."""
        return diagonal_gaussian(*self.encode(x, y))

    def prior(self) -> Distribution:
        """p(z) with event shape [L]: N(0, I), or the learned prior named by ``prior``."""
        if isinstance(self.latent_prior, VampPrior):  # the encoder's q(z|u) at the pseudo-inputs u
            return self.latent_prior(self._encode_scaled)
        return self.latent_prior()

    def _encode_scaled(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The encoder's ``(mean, logvar)`` for inputs ``u`` [K, D] already scaled as the network sees them
        (labels appended, if any): what :meth:`_encode` computes, and the VampPrior's map from its
        pseudo-inputs."""
        h = self.encoder(u)
        return self.to_mean(h), self.to_logvar(h)

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

    def forward(self, x: Tensor, n_samples_per_z: int = 1, y: Tensor | None = None) -> dict[str, Tensor]:
        """Encode, sample and decode a batch ``x`` [B, D] (the classroom interface); ``y`` [B]: labels, if conditional.

        Returns a dict with
        ``imgs`` [B, D]: the decoder's mean image, averaged over the S samples;
        ``z`` [B, L] if S == 1 else [B, S, L]: the sampled codes;
        ``mean``, ``logvar`` [B, L]: the parameters of q(z|x).
        """
        mean, logvar = self.encode(x, y)
        z = self.reparameterize(mean, logvar, n_samples_per_z)
        if n_samples_per_z > 1:
            imgs = self.decode(z, None if y is None else torch.as_tensor(y).unsqueeze(-1)).mean(dim=-2)
        else:
            imgs = self.decode(z, y)
        return {"imgs": imgs, "z": z, "mean": mean, "logvar": logvar}

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | int | None = None) -> Tensor:
        """Decode ``n`` draws from the prior: mean images, shape [n, D].

        A conditional model needs the labels ``y``: one int for all n images, or n of them.
        For pixel noise as well, draw from ``self.likelihood(z, y)``.
        """
        check_positive_int("n", n)
        return self.decode(self.prior().sample((n,)), y)


def check_model(model: object, vae_only: bool = False) -> None:
    """Raise a ``TypeError`` unless ``model`` is a :class:`VAE` (or, unless ``vae_only``, an :class:`Autoencoder`)."""
    if vae_only and isinstance(model, Autoencoder):
        raise TypeError("this needs a vae.VAE: an Autoencoder has no posterior q(z|x) to sample from")
    if not isinstance(model, (VAE,) if vae_only else (VAE, Autoencoder)):
        expected = "a vae.VAE" if vae_only else "a vae.VAE or vae.Autoencoder"
        raise TypeError(f"model must be {expected}, got {type(model).__name__}")
