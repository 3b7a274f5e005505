"""Exact inference for latent-variable models with a one- or two-dimensional latent.

With z in one or two dimensions, integrals over z can be done numerically: on
an evenly spaced grid z_1 .. z_G with cell volume dV,

    log p(x) = log ∫ p(x|z) p(z) dz  ≈  log Σ_g p(x|z_g) p(z_g) dV,

and the true posterior p(z|x) = p(x|z) p(z) / p(x) is known at every grid
point. That makes it possible to check the identity
log p(x) = ELBO(q) + KL(q(z) || p(z|x)) with every term computed separately.

The model is given by its prior p(z) = N(0, I) and a ``likelihood``: any
callable that maps codes z [..., L] to a torch Distribution p(x|z) with event
shape [D] (``VAE.likelihood`` is one). Everything is computed on the device where
the likelihood puts its distributions (a model's device; ``x`` is moved there): the
likelihood in float32, every sum over the grid in float64. Results are
in nats per example.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, Normal

from vae.validation import check_data, check_positive, check_positive_int
from vae.priors import gaussian_kl

Likelihood = Callable[[Tensor], Distribution]


@dataclass(frozen=True)
class LatentGrid:
    """An evenly spaced grid over [-limit, limit]^L.

    ``axis`` [n] holds the coordinates along each axis; ``points`` [G, L] with
    G = n**L lists every grid point, the last coordinate varying fastest, so a
    quantity [..., G] reshapes to [..., n, n] indexed [i_1, i_2] for L = 2.
    ``log_cell`` is the log of the volume of one cell, (2 limit / (n - 1))**L.
    """

    axis: Tensor
    points: Tensor
    log_cell: float

    @property
    def latent_dim(self) -> int:
        return self.points.shape[1]

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid as an array: (n,) for L = 1, (n, n) for L = 2."""
        return (len(self.axis),) * self.latent_dim

    def log_prior(self) -> Tensor:
        """log N(z_g; 0, I) at every grid point, shape [G], nats."""
        return Independent(Normal(torch.zeros_like(self.points), 1.0), 1).log_prob(self.points)


def latent_grid(latent_dim: int = 2, n: int = 201, limit: float = 5.0) -> LatentGrid:
    """A grid of ``n`` points per axis over [-limit, limit] in ``latent_dim`` (1 or 2) dimensions.

    The spacing 2 limit / (n - 1) should be smaller than the posterior's
    standard deviation; the rectangle rule is then accurate to many digits for
    smooth densities (kinks, as from a ReLU decoder, slow it down). ``limit`` = 5
    leaves out about 1e-6 of the prior's mass in two dimensions.
    """
    check_positive_int("latent_dim", latent_dim)
    if latent_dim > 2:
        raise ValueError(f"a grid is practical for latent_dim 1 or 2 only, got {latent_dim}")
    check_positive_int("n", n)
    if n < 2:
        raise ValueError(f"n must be at least 2 points per axis, got {n}")
    limit = check_positive("limit", limit)
    axis = torch.linspace(-limit, limit, n, dtype=torch.float64)
    points = torch.cartesian_prod(*[axis] * latent_dim).reshape(-1, latent_dim)
    return LatentGrid(axis, points, latent_dim * math.log(2 * limit / (n - 1)))


@torch.no_grad()
def grid_log_likelihood(likelihood: Likelihood, x: Tensor, grid: LatentGrid, max_elements: int = 2**24) -> Tensor:
    """log p(x_n | z_g) for every input and grid point, shape [N, G], float64, nats.

    ``x`` [N, D] is in the units the likelihood scores (e.g. grey levels for a
    categorical one). The grid is processed in chunks of about
    ``max_elements`` / (N D) points to bound memory.
    """
    probe = likelihood(grid.points[:1].float())
    if not isinstance(probe, Distribution) or len(probe.event_shape) != 1:
        raise TypeError("likelihood(z) must return a torch Distribution with event shape [D]")
    x = check_data(x, probe.event_shape[0]).to(probe.sample().device)
    chunk = max(1, max_elements // (len(x) * x.shape[1]))
    one_hot = _one_hot_levels(probe, x)
    if one_hot is not None:
        # A product of categoricals scores x_n by sum_d log pi_d(z)[x_nd], which is linear in the one-hot
        # code of x_n: one matrix product per chunk replaces a gather over [chunk, N, D] (several times faster).
        parts = [
            (one_hot @ likelihood(z.float().to(x.device)).base_dist.logits.flatten(1).T).double()  # [N, chunk]
            for z in grid.points.split(chunk)
        ]
        return torch.cat(parts, dim=1)
    parts = [
        likelihood(z.float().to(x.device).unsqueeze(1)).log_prob(x).double()  # [chunk, N]
        for z in grid.points.split(chunk)
    ]
    return torch.cat(parts).T.contiguous()


def _one_hot_levels(probe: Distribution, x: Tensor) -> Tensor | None:
    """The one-hot code [N, D K] of ``x`` when p(x|z) is a product of D categoricals over K levels
    (``Independent(Categorical)``) and every entry of ``x`` is a level 0 .. K - 1; else None."""
    if not (isinstance(probe, Independent) and isinstance(probe.base_dist, Categorical)
            and probe.reinterpreted_batch_ndims == 1) or x.device.type == "meta":
        return None
    n_levels = probe.base_dist.logits.shape[-1]
    if x.is_floating_point() and not bool((x == x.round()).all()):
        return None
    lo, hi = torch.aminmax(x)
    if lo < 0 or hi >= n_levels:
        return None  # the general path below raises its own error
    levels = torch.arange(n_levels, device=x.device)
    return (x.long().unsqueeze(-1) == levels).flatten(1).float()


@dataclass(frozen=True)
class GridPosterior:
    """The exact posterior p(z|x) on a grid for a batch of N inputs.

    ``log_lik`` [N, G]: log p(x|z_g); ``log_evidence`` [N]: log p(x) by
    quadrature; ``log_density`` [N, G]: log p(z_g|x), a density over z (its
    values times the cell volume sum to 1). All float64, nats.
    """

    grid: LatentGrid
    log_lik: Tensor
    log_evidence: Tensor
    log_density: Tensor

    def mass(self) -> Tensor:
        """Posterior probability of each grid cell, [N, G]; each row sums to 1."""
        return (self.log_density + self.grid.log_cell).exp()

    def edge_mass(self) -> Tensor:
        """Posterior mass in the outermost ring of cells, [N]: should be tiny,
        else widen the grid."""
        axis = self.grid.axis.to(self.log_density.device)
        edge = (self.grid.points.to(axis.device).abs() == axis[-1]).any(dim=1)
        return self.mass()[:, edge].sum(dim=1)

    def _axis_log_q(self, mean: Tensor, logvar: Tensor) -> Tensor:
        """log q along each grid axis, [N, L, n], for q = N(mean, diag exp(logvar)).

        q factorises over dimensions and the grid is a product of axes, so
        every sum over the G = n**L grid points below is done axis by axis,
        never by evaluating q at all G points.
        """
        n_inputs, latent_dim = self.log_lik.shape[0], self.grid.latent_dim
        if mean.shape != (n_inputs, latent_dim) or logvar.shape != (n_inputs, latent_dim):
            raise ValueError(
                f"mean and logvar must both have shape [{n_inputs}, {latent_dim}], "
                f"got {list(mean.shape)} and {list(logvar.shape)}"
            )
        if not (torch.isfinite(mean).all() and torch.isfinite(logvar).all()):
            raise ValueError("mean and logvar must be finite")
        axis = self.grid.axis.to(mean.device)
        # The floor keeps the scale above 0 in float64 for any logvar an optimiser may try.
        scale = (0.5 * logvar.double().clamp_min(-200.0)).exp()
        return Normal(mean.double().unsqueeze(-1), scale.unsqueeze(-1)).log_prob(axis)

    def _cell_weights(self, axis_log_q: Tensor) -> Tensor:
        """q's mass on each grid cell along each axis, [N, L, n], each row summing to 1.

        For a q that lies inside the grid and is wider than its spacing this is q(z) dz to
        high accuracy; renormalising keeps it a distribution for any q, so a q narrower than
        a cell cannot inflate the quadrature of E_q[log p(x|z)].
        """
        return axis_log_q.softmax(dim=-1)

    def _expectation(self, weights: Tensor, values: Tensor) -> Tensor:
        """sum_g q(z_g) dV values[:, g] for values [N, G], using the per-axis ``weights`` [N, L, n]."""
        if self.grid.latent_dim == 1:
            return (weights[:, 0] * values).sum(dim=1)
        return torch.einsum("ni,nij,nj->n", weights[:, 0], values.reshape(-1, *self.grid.shape), weights[:, 1])

    def elbo(self, mean: Tensor, logvar: Tensor) -> Tensor:
        """ELBO of q(z) = N(mean, diag exp(logvar)) per input, [N], nats.

        E_q[log p(x|z)] is a sum over the grid; KL(q || p(z)) is the closed
        form :func:`vae.objectives.gaussian_kl`. ``mean`` and ``logvar`` are
        [N, L]; gradients flow to them. q must lie inside the grid and be wider
        than a cell for the result to be accurate: its mass is renormalised to
        the grid (see ``_cell_weights``).
        """
        weights = self._cell_weights(self._axis_log_q(mean, logvar))
        return self._expectation(weights, self.log_lik) - gaussian_kl(mean.double(), logvar.double())

    def kl(self, mean: Tensor, logvar: Tensor) -> Tensor:
        """KL(q(z) || p(z|x)) for q = N(mean, diag exp(logvar)), summed over the grid, [N], nats.

        Computed as sum_g q(z_g) [log q(z_g) - log p(z_g|x)] dV, independently of
        :meth:`elbo`, so that log p(x) - ELBO = KL can be checked.
        """
        axis_log_q = self._axis_log_q(mean, logvar)
        weights = self._cell_weights(axis_log_q)
        # sum_g q log q dV: log q is a sum over axes, and each axis's weights sum to 1
        q_log_q = (weights * axis_log_q).sum(dim=(1, 2))
        return q_log_q - self._expectation(weights, self.log_density)

    def moments(self) -> tuple[Tensor, Tensor]:
        """Mean and variance of p(z|x) in each latent dimension, each [N, L]."""
        mass, points = self.mass(), self.grid.points.to(self.log_density.device)
        mean = mass @ points
        return mean, (mass @ points**2 - mean**2).clamp_min(0.0)

    def best_gaussian(
        self, mean: Tensor | None = None, logvar: Tensor | None = None, max_iter: int = 30
    ) -> tuple[Tensor, Tensor]:
        """The diagonal Gaussian with the highest :meth:`elbo` for each input.

        Equivalently, it minimises KL(q || p(z|x)) over diagonal Gaussians q:
        variational inference without an encoder. The ELBO is not concave in
        q's parameters (q can get stuck on a minor mode), so L-BFGS runs for
        ``max_iter`` iterations from two starts, the posterior's own mean and
        variance and, if given, ``mean`` and ``logvar`` [N, L] (e.g. an
        encoder's output), and the better result is kept for each input.
        Returns ``(mean, logvar)``, each [N, L], float64, detached.
        """
        check_positive_int("max_iter", max_iter)
        moment_mean, moment_var = self.moments()
        starts = [(moment_mean, moment_var.clamp_min(1e-12).log())]
        if mean is not None or logvar is not None:
            if mean is None or logvar is None:
                raise ValueError("give both mean and logvar, or neither")
            self._axis_log_q(mean, logvar)  # validates the shapes
            starts.append((mean, logvar))
        best_mean, best_logvar, best_elbo = None, None, None
        for start_mean, start_logvar in starts:
            m, lv = self._maximise_elbo(start_mean, start_logvar, max_iter)
            value = self.elbo(m, lv).detach()
            if best_elbo is None:
                best_mean, best_logvar, best_elbo = m, lv, value
            else:
                better = (value > best_elbo).unsqueeze(1)
                best_mean, best_logvar = torch.where(better, m, best_mean), torch.where(better, lv, best_logvar)
                best_elbo = torch.maximum(value, best_elbo)
        return best_mean, best_logvar

    def _maximise_elbo(self, mean: Tensor, logvar: Tensor, max_iter: int) -> tuple[Tensor, Tensor]:
        """L-BFGS on the summed ELBO from one start; the inputs do not interact, so each is maximised."""
        mean = mean.detach().double().clone().requires_grad_(True)
        logvar = logvar.detach().double().clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS([mean, logvar], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = -self.elbo(mean, logvar).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return mean.detach(), logvar.detach()


def grid_posterior(likelihood: Likelihood, x: Tensor, grid: LatentGrid) -> GridPosterior:
    """Compute log p(x) and p(z|x) on ``grid`` for the inputs ``x`` [N, D] under the prior N(0, I)."""
    log_lik = grid_log_likelihood(likelihood, x, grid)
    log_joint = log_lik + grid.log_prior().to(log_lik.device)
    log_evidence = torch.logsumexp(log_joint, dim=1) + grid.log_cell
    return GridPosterior(grid, log_lik, log_evidence, log_joint - log_evidence.unsqueeze(1))
