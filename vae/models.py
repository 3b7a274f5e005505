"""The models: an autoencoder, the VAE, the conditional VAE and the VAE with a flow posterior, built from small MLPs.

Shapes used throughout: ``B`` examples in a batch, ``D`` input dimensions (pixels), ``L`` latent
dimensions, ``S`` samples of ``z`` per input. Log-likelihoods are in nats per example.

Inputs are in the units of the likelihood: floats for ``"bernoulli"`` (in [0, 1]) and
``"gaussian"``; integer grey levels ``0 .. n_levels - 1`` for ``"categorical"``, which the encoder
divides by ``n_levels - 1`` so that the network sees [0, 1].

The public methods are the boundary's entry points (:mod:`vae.boundary`): a call from outside
checks its arguments and moves them to the model's device once; the bodies below hold the maths.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, TransformedDistribution

from vae.boundary import checked, codes, contexts, data, labels, positive_int
from vae.flows import make_flow
from vae.likelihoods import make_likelihood
from vae.networks import mlp
from vae.priors import diagonal_gaussian, make_prior
from vae.validation import check_nonnegative, check_positive_int


class Autoencoder(nn.Module):
    """A deterministic autoencoder: x [B, D] -> code z [B, L] -> p(x|z).

    It is trained by maximising log p(x|z) with z = encode(x), the same likelihood the VAE uses,
    so the two can be compared term for term. Unlike a VAE it has no q(z|x): ``encode`` returns
    the code itself.
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
        super().__init__()
        self.config = model_config(
            input_dim, hidden_dims, latent_dim, likelihood, n_levels, sigma, learn_sigma, dropout
        )
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.lik = make_likelihood(likelihood, input_dim, n_levels, sigma, learn_sigma)
        out_dim = input_dim * self.lik.params_per_pixel
        self.decoder = mlp([latent_dim, *reversed(hidden_dims), out_dim], dropout=dropout)
        self.encoder = mlp([input_dim, *hidden_dims, latent_dim], dropout=dropout)

    @checked(x=data)
    def encode(self, x: Tensor) -> Tensor:
        """The code of each input, [B, L]."""
        return self.encoder(self.lik.scale_input(x))

    @checked(z=codes)
    def likelihood(self, z: Tensor) -> Distribution:
        """p(x|z) for codes ``z`` [..., L]; event shape [D]."""
        return self.lik.distribution(self.decoder(z))

    @checked(z=codes)
    def decode(self, z: Tensor) -> Tensor:
        """The mean image of p(x|z), [..., D], in input units."""
        return self.lik.mean(self.decoder(z))

    @checked(x=data)
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Returns ``imgs`` [B, D] (reconstructions) and ``z`` [B, L] (codes)."""
        z = self.encode(x)
        return {"imgs": self.decode(z), "z": z}


class VAE(nn.Module):
    """A variational autoencoder: q(z|x) a diagonal Gaussian, p(z) a prior, p(x|z) a likelihood.

    The encoder maps x through ``hidden_dims`` to the mean and log-variance of q(z|x), [B, L] each;
    the decoder maps z back through the hidden sizes reversed to the parameters of p(x|z).
    ``dropout`` > 0 adds dropout after every hidden layer (active in ``train()`` mode only), a
    regulariser for small data sets. The prior p(z) is N(0, I) unless ``prior`` names a learned
    one (:mod:`vae.priors`): ``"mixture"`` (``n_components`` Gaussians) or ``"vamp"`` (the VampPrior
    with ``n_components`` pseudo-inputs).

    Methods take an optional ``y``: the labels of a :class:`ConditionalVAE`; this model has none.
    """

    n_classes = 0

    def __init__(
        self,
        input_dim: int,
        hidden_dims: list[int],
        latent_dim: int,
        *,
        likelihood: str = "bernoulli",
        n_levels: int = 17,
        sigma: float = 1.0,
        learn_sigma: bool = False,
        dropout: float = 0.0,
        prior: str = "standard",
        n_components: int = 1,
    ) -> None:
        super().__init__()
        self.config = model_config(
            input_dim, hidden_dims, latent_dim, likelihood, n_levels, sigma, learn_sigma, dropout
        )
        self.config.update(prior=prior, n_components=n_components)
        self.input_dim, self.latent_dim = input_dim, latent_dim
        c = self.n_classes  # a conditional model's encoder and decoder also see the label, one-hot
        self.lik = make_likelihood(likelihood, input_dim, n_levels, sigma, learn_sigma)
        out_dim = input_dim * self.lik.params_per_pixel
        self.decoder = mlp([latent_dim + c, *reversed(hidden_dims), out_dim], dropout=dropout)
        self.encoder = mlp([input_dim + c, *hidden_dims], final_activation=True, dropout=dropout)
        self.to_mean = nn.Linear(hidden_dims[-1], latent_dim)
        self.to_logvar = nn.Linear(hidden_dims[-1], latent_dim)
        self.latent_prior = make_prior(prior, n_components, latent_dim, input_dim, self.encode_scaled)

    @checked(x=data, y=labels)
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The parameters of q(z|x): ``mean`` and ``logvar``, each [B, L]."""
        return self.encode_scaled(self.lik.scale_input(x))

    def encode_scaled(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The encoder network on inputs ``u`` [K, D] as it sees them (scaled): ``(mean, logvar)`` [K, L]."""
        h = self.encoder(u)
        return self.to_mean(h), self.to_logvar(h)

    @checked(mean=codes, logvar=codes, n_samples=positive_int)
    def reparameterize(self, mean: Tensor, logvar: Tensor, n_samples: int = 1) -> Tensor:
        """Draw z = mean + exp(logvar / 2) * eps with eps ~ N(0, I).

        Gradients flow to ``mean`` and ``logvar`` through this deterministic map; the randomness
        lives in ``eps`` alone. Returns [B, L] when ``n_samples`` is 1, else [B, S, L].
        """
        if n_samples > 1:
            mean, logvar = mean.unsqueeze(-2), logvar.unsqueeze(-2)
            shape = (*mean.shape[:-2], n_samples, mean.shape[-1])
        else:
            shape = mean.shape
        eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)
        return mean + (0.5 * logvar).exp() * eps

    @checked(z=codes, y=labels)
    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x|z) for codes ``z`` [..., L]: event shape [D], ``log_prob`` in nats [...]."""
        return self.lik.distribution(self.decoder(z))

    @checked(mean=codes, logvar=codes, z=codes)
    def kl(self, mean: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
        """KL(q(z|x) || p(z)), [B] nats, for q = N(mean, diag(exp(logvar))) [B, L] and its draws ``z``.

        ``z`` is [B, L] or [B, S, L]; the prior gives the KL (:meth:`vae.priors.Prior.kl`): exact
        for N(0, I), else estimated from these draws.
        """
        return self.latent_prior.kl(mean, logvar, z)

    @checked(z=codes, y=labels)
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """The mean image of p(x|z), [..., D], in input units."""
        return self.lik.mean(self.decoder(z))

    def forward(self, *args: object, **kwargs: object) -> None:
        raise TypeError(
            "a vae.VAE is not called directly: use model.encode / model.decode, vae.elbo(model, x), "
            "or vae.interface.ClassroomVAE for the assignments' model(x) -> dict"
        )

    @checked(x=data, y=labels)
    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z|x) as a distribution with batch shape [B] and event shape [L]."""
        return diagonal_gaussian(*self.encode(x, y))

    def prior(self) -> Distribution:
        """p(z) with event shape [L]."""
        return self.latent_prior()

    def posterior_widths(self) -> dict[str, int]:
        """The parameters of q(z|x) that ``encode`` returns, in order, with their widths: mean and logvar, L each."""
        return {"mean": self.latent_dim, "logvar": self.latent_dim}

    @torch.no_grad()
    @checked(n=positive_int, y=labels)
    def sample(self, n: int, y: Tensor | int | None = None) -> Tensor:
        """Decode ``n`` draws from the prior: mean images [n, D]. (Pixel noise: ``self.likelihood(z)``.)"""
        return self.decode(self.prior().sample((n,)), y)


class ConditionalVAE(VAE):
    """A VAE of p(x|y): encoder and decoder also see the label y, one-hot (Sohn et al., 2015).

    Every method that encodes or decodes needs the labels ``y``, ints ``0 .. n_classes - 1``
    (one per input, or one for all). The prior stays unconditional.
    """

    def __init__(self, input_dim: int, hidden_dims: list[int], latent_dim: int, *, n_classes: int, **settings) -> None:
        if check_positive_int("n_classes", n_classes) < 2:
            raise ValueError(f"a conditional model needs n_classes >= 2, got {n_classes}")
        if settings.get("prior") == "vamp":
            raise ValueError("a VampPrior passes pseudo-inputs through the encoder, which needs no labels: "
                             "use prior='mixture' or 'standard' for a conditional model")
        self.n_classes = n_classes
        super().__init__(input_dim, hidden_dims, latent_dim, **settings)
        self.config["n_classes"] = n_classes

    def with_label(self, h: Tensor, y: Tensor) -> Tensor:
        """``h`` [..., F] with the labels ``y`` appended as one-hot rows (broadcast to h's batch): [..., F + C]."""
        c = nn.functional.one_hot(y, self.n_classes).to(h.dtype)
        return torch.cat([h, c.expand(*h.shape[:-1], -1)], -1)

    @checked(x=data, y=labels)
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z|x, y): ``mean`` and ``logvar``, each [B, L]."""
        return self.encode_scaled(self.with_label(self.lik.scale_input(x), y))

    @checked(z=codes, y=labels)
    def likelihood(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x|z, y); event shape [D]."""
        return self.lik.distribution(self.decoder(self.with_label(z, y)))

    @checked(z=codes, y=labels)
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """The mean image of p(x|z, y), [..., D]."""
        return self.lik.mean(self.decoder(self.with_label(z, y)))


class FlowVAE(VAE):
    """A VAE whose q(z|x) is a diagonal Gaussian pushed through ``flow_length`` invertible steps.

    z_0 ~ N(mean, diag(exp(logvar))) as in the VAE, then z_K = f_K ∘ … ∘ f_1(z_0) goes to the
    decoder. ``flow`` names the step (:mod:`vae.flows`): ``"planar"``, ``"radial"`` (Rezende and
    Mohamed, 2015) or ``"iaf"`` (inverse autoregressive flow, Kingma et al., 2016). The steps'
    parameters are amortised: they come from a ``context``, the encoder's last hidden layer, so
    q(z|x)'s parameters are ``(mean, logvar, context)``, which ``encode`` returns and
    ``elbo(..., posterior=...)`` and ``refine_posterior`` take. ``flow_length = 0`` is the VAE
    itself. The ELBO's KL has no closed form: :meth:`kl` estimates it from the ELBO's draws.
    A VampPrior's components are the encoder's base Gaussians q_0(z|u_k).
    """

    def __init__(self, input_dim: int, hidden_dims: list[int], latent_dim: int, *, flow: str = "planar",
                 flow_length: int = 4, **settings) -> None:
        super().__init__(input_dim, hidden_dims, latent_dim, **settings)
        self.context_dim = hidden_dims[-1]
        self.flow = make_flow(flow, flow_length, latent_dim, self.context_dim)
        self.config.update(flow=flow, flow_length=flow_length)

    @checked(x=data, y=labels)
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """q(z|x)'s parameters: the base Gaussian's ``mean`` and ``logvar`` [B, L] and the ``context`` [B, H]."""
        h = self.encoder(self.lik.scale_input(x))
        return self.to_mean(h), self.to_logvar(h), h

    @checked(mean=codes, logvar=codes, context=contexts, n_samples=positive_int)
    def reparameterize(self, mean: Tensor, logvar: Tensor, context: Tensor, n_samples: int = 1) -> Tensor:
        """Draw z_K = f_K ∘ … ∘ f_1(z_0), with z_0 drawn by :meth:`VAE.reparameterize`: [B, L], or [B, S, L]."""
        z0 = super().reparameterize(mean, logvar, n_samples)
        return self.flow(z0, aligned(context, z0))[0]

    @checked(mean=codes, logvar=codes, context=contexts, z=codes)
    def kl(self, mean: Tensor, logvar: Tensor, context: Tensor, z: Tensor) -> Tensor:
        """KL(q_K(z|x) || p(z)), [B] nats, estimated at draws ``z`` [B, L] or [B, S, L] of q_K:

            KL(q_0 || p) + E[log p(z_0) − log p(z_K) − Σ_k log |det ∂f_k/∂z_{k−1}|]

        The base Gaussian's KL as the prior gives it (exact for N(0, I)), plus what the flow
        changes, at the z_0 that the flow moved to each z_K = ``z``. On average it is
        E[log q_K(z) − log p(z)]; for ``flow_length = 0`` it is the VAE's KL exactly.
        """
        z0, log_det = self.flow.inverse(z, aligned(context, z))
        p = self.prior()
        change = p.log_prob(z0) - p.log_prob(z) - log_det
        return self.latent_prior.kl(mean, logvar, z0) + (change.mean(1) if z.dim() == 3 else change)

    @checked(x=data, y=labels)
    def posterior(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z|x): the base Gaussian pushed through the flow, batch shape [B], event shape [L].

        Its ``log_prob`` of its own samples reads the values that sampling computed; of any other
        point it inverts the flow exactly (:mod:`vae.flows`).
        """
        mean, logvar, context = self.encode(x, y)
        return TransformedDistribution(diagonal_gaussian(mean, logvar), self.flow.transforms(context),
                                       validate_args=False)

    def posterior_widths(self) -> dict[str, int]:
        """``mean`` and ``logvar``, L each, then the flow's ``context``, H (the encoder's last hidden size)."""
        return {**super().posterior_widths(), "context": self.context_dim}


def aligned(context: Tensor, z: Tensor) -> Tensor:
    """``context`` [B, H] with a sample axis, [B, 1, H], when ``z`` has one ([B, S, L]); else as it is."""
    return context.unsqueeze(-2) if z.dim() > context.dim() else context


def model_config(
    input_dim: int,
    hidden_dims: list[int],
    latent_dim: int,
    likelihood: str,
    n_levels: int,
    sigma: float,
    learn_sigma: bool,
    dropout: float,
) -> dict:
    """A model's settings, checked: what :func:`vae.save` writes and :func:`vae.load` rebuilds from."""
    check_positive_int("input_dim", input_dim)
    if not isinstance(hidden_dims, (list, tuple)):
        raise TypeError(f"hidden_dims must be a list of positive ints, got {hidden_dims!r}")
    if not hidden_dims:
        raise ValueError("hidden_dims must list at least one hidden layer size, got []")
    for h in hidden_dims:
        check_positive_int("each entry of hidden_dims", h)
    check_positive_int("latent_dim", latent_dim)
    dropout = check_nonnegative("dropout", dropout)
    if not dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    return dict(
        input_dim=input_dim,
        hidden_dims=list(hidden_dims),
        latent_dim=latent_dim,
        likelihood=likelihood,
        n_levels=n_levels,
        sigma=float(sigma),
        learn_sigma=learn_sigma,
        dropout=float(dropout),
    )
