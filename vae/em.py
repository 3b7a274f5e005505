"""The EM algorithm for a mixture of Gaussians, in numpy.

A mixture of K Gaussians in d dimensions draws a component z = k with
probability pi_k and then x ~ N(mu_k, Sigma_k), so that
p(x) = sum_k pi_k N(x; mu_k, Sigma_k). Shapes used throughout: ``N`` points,
``d`` dimensions, ``K`` components. Log-densities, ELBOs and KLs are in nats,
one value per point (shape [N]) unless a docstring says otherwise.

For any distribution q over the components of a point x (a row of
"responsibilities" r), log p(x) = ELBO(r) + KL(r || p(z|x)). The E-step sets
r to the posterior, which closes the gap; the M-step maximises the ELBO over
the parameters with r fixed. :func:`run_em` records every quantity in that
argument at every iteration. To draw a 2-D mixture, see :func:`vae.plots.draw_mixture`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import logsumexp, xlogy
from scipy.stats import multivariate_normal

from vae.validation import check_data, check_positive_int


@dataclass(frozen=True)
class Mixture:
    """The parameters of a Gaussian mixture: ``weights`` [K], ``means`` [K, d], ``covs`` [K, d, d].

    Checked on construction: weights positive and summing to 1, covariances
    symmetric and positive definite, everything finite. Stored as float64.
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def __post_init__(self) -> None:
        weights, means, covs = (np.asarray(a, dtype=np.float64) for a in (self.weights, self.means, self.covs))
        if weights.ndim != 1 or means.ndim != 2 or covs.shape != (len(weights), means.shape[1], means.shape[1]):
            raise ValueError(
                "need weights [K], means [K, d] and covs [K, d, d]; "
                f"got shapes {list(weights.shape)}, {list(means.shape)}, {list(covs.shape)}"
            )
        if len(means) != len(weights) or len(weights) == 0:
            raise ValueError(
                f"need as many means as weights (K >= 1), got {len(means)} means and {len(weights)} weights"
            )
        if not all(np.isfinite(a).all() for a in (weights, means, covs)):
            raise ValueError("mixture parameters contain NaN or inf")
        if (weights <= 0).any() or not np.isclose(weights.sum(), 1.0, atol=1e-6):
            raise ValueError(f"weights must be > 0 and sum to 1, got {weights.tolist()}")
        if not np.allclose(covs, covs.transpose(0, 2, 1)):
            raise ValueError("each covariance matrix must be symmetric")
        for k, cov in enumerate(covs):
            try:
                np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ValueError(f"covariance {k} is not positive definite: {cov.tolist()}") from None
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "covs", covs)

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]


def _points(x: object, dim: int | None = None) -> np.ndarray:
    """``x`` as a float64 array [N, dim] (any dim if None), with a clear error for anything else."""
    if dim is None:
        if not isinstance(x, (np.ndarray, torch.Tensor)):
            raise TypeError(f"points must be a numpy array or torch tensor of shape [N, d], got {type(x).__name__}")
        if x.ndim != 2:
            raise ValueError(f"points must have shape [N, d], got {list(x.shape)}")
        dim = x.shape[1]
    return check_data(x, dim).double().numpy()


def log_joint(x: object, mixture: Mixture) -> np.ndarray:
    """log p(x_n, z_n = k) = log pi_k + log N(x_n; mu_k, Sigma_k), shape [N, K], nats."""
    x = _points(x, mixture.dim)
    columns = [
        np.log(w) + np.atleast_1d(multivariate_normal.logpdf(x, m, c))
        for w, m, c in zip(mixture.weights, mixture.means, mixture.covs)
    ]
    return np.stack(columns, axis=1)


def log_density(x: object, mixture: Mixture) -> np.ndarray:
    """log p(x_n) = log sum_k pi_k N(x_n; mu_k, Sigma_k) for each point, shape [N], nats."""
    return logsumexp(log_joint(x, mixture), axis=1)


def sample(mixture: Mixture, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ancestral sampling: draw z ~ Categorical(weights), then x ~ N(mu_z, Sigma_z).

    Returns the points [n, d] and their components [n] (ints in 0..K-1).
    """
    check_positive_int("n", n)
    rng = np.random.default_rng(seed)
    z = rng.choice(mixture.n_components, size=n, p=mixture.weights)
    noise = rng.standard_normal((n, mixture.dim))
    chol = np.linalg.cholesky(mixture.covs)  # [K, d, d]
    x = mixture.means[z] + np.einsum("nij,nj->ni", chol[z], noise)
    return x, z


def e_step(x: object, mixture: Mixture) -> np.ndarray:
    """The responsibilities r_nk = p(z_n = k | x_n), shape [N, K]; each row sums to 1.

    Normalised in the log domain, so points far from every component still get
    valid responsibilities.
    """
    joint = log_joint(x, mixture)
    return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))


def _responsibilities(resp: object, n: int, k: int | None = None) -> np.ndarray:
    resp = np.asarray(resp, dtype=np.float64)
    if resp.ndim != 2 or resp.shape[0] != n or (k is not None and resp.shape[1] != k):
        want = f"[{n}, {k if k is not None else 'K'}]"
        raise ValueError(f"responsibilities must have shape {want}, got {list(resp.shape)}")
    if not np.isfinite(resp).all() or (resp < 0).any() or not np.allclose(resp.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("each row of the responsibilities must be a probability distribution (>= 0, summing to 1)")
    return resp


def m_step(x: object, resp: object) -> Mixture:
    """The parameters that maximise the ELBO for fixed responsibilities ``resp`` [N, K].

    With N_k = sum_n r_nk: pi_k = N_k / N, mu_k = sum_n r_nk x_n / N_k and
    Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k (maximum likelihood,
    divided by N_k). Raises ValueError when a component is left with
    (almost) no responsibility or a singular covariance.
    """
    x = _points(x)
    resp = _responsibilities(resp, len(x))
    counts = resp.sum(axis=0)  # [K]
    empty = np.flatnonzero(counts < 1e-8 * len(x))
    if len(empty):
        raise ValueError(f"component(s) {empty.tolist()} have no responsibility; reinitialise")
    means = resp.T @ x / counts[:, None]
    centred = x[None, :, :] - means[:, None, :]  # [K, N, d]
    covs = np.einsum("nk,kni,knj->kij", resp, centred, centred) / counts[:, None, None]
    try:
        return Mixture(counts / len(x), means, covs)
    except ValueError as err:
        raise ValueError(f"the M-step produced an invalid mixture ({err}); a component may have collapsed") from err


def mixture_elbo(x: object, mixture: Mixture, resp: object) -> np.ndarray:
    """ELBO(r, theta) = sum_k r_nk [log p(x_n, z_n = k) - log r_nk] per point, shape [N], nats.

    A lower bound on log p(x_n) for any responsibilities; ``0 log 0`` counts as 0.
    """
    joint = log_joint(x, mixture)
    resp = _responsibilities(resp, *joint.shape)
    return (resp * joint - xlogy(resp, resp)).sum(axis=1)


def kl_to_posterior(x: object, mixture: Mixture, resp: object) -> np.ndarray:
    """KL(r_n || p(z_n | x_n)) = sum_k r_nk [log r_nk - log p(z_n = k | x_n)] per point, shape [N], nats.

    Computed from the posterior directly (not as log p(x) - ELBO), so the
    identity log p(x) = ELBO + KL can be checked with it.
    """
    joint = log_joint(x, mixture)
    resp = _responsibilities(resp, *joint.shape)
    log_post = joint - logsumexp(joint, axis=1, keepdims=True)
    return (xlogy(resp, resp) - resp * log_post).sum(axis=1)


@dataclass
class EMRun:
    """What :func:`run_em` records, each averaged over the points (nats per point).

    Iteration t (t = 0 .. T-1) takes theta_t to theta_{t+1}:

    * ``log_likelihood`` [T+1]: log p(x | theta_t) for t = 0 .. T;
    * ``elbo_after_e`` [T]: ELBO(r_{t+1}, theta_t), r_{t+1} the posterior under theta_t;
    * ``elbo_after_m`` [T]: ELBO(r_{t+1}, theta_{t+1});
    * ``gap_after_e`` [T]: KL(r_{t+1} || p(z | x, theta_t)), zero up to rounding;
    * ``gap_after_m`` [T]: KL(r_{t+1} || p(z | x, theta_{t+1})) >= 0;
    * ``mixtures``: theta_0 .. theta_T.
    """

    log_likelihood: np.ndarray
    elbo_after_e: np.ndarray
    elbo_after_m: np.ndarray
    gap_after_e: np.ndarray
    gap_after_m: np.ndarray
    mixtures: list[Mixture]


def run_em(x: object, init: Mixture, n_iter: int) -> EMRun:
    """Run ``n_iter`` EM iterations on the points ``x`` [N, d] from the mixture ``init``.

    Returns an :class:`EMRun`; its last mixture is the fit.
    """
    check_positive_int("n_iter", n_iter)
    x = _points(x, init.dim)
    mixtures = [init]
    records: dict[str, list[float]] = {k: [] for k in ("elbo_after_e", "elbo_after_m", "gap_after_e", "gap_after_m")}
    for _ in range(n_iter):
        old = mixtures[-1]
        resp = e_step(x, old)
        new = m_step(x, resp)
        records["elbo_after_e"].append(mixture_elbo(x, old, resp).mean())
        records["gap_after_e"].append(kl_to_posterior(x, old, resp).mean())
        records["elbo_after_m"].append(mixture_elbo(x, new, resp).mean())
        records["gap_after_m"].append(kl_to_posterior(x, new, resp).mean())
        mixtures.append(new)
    log_likelihood = np.array([log_density(x, m).mean() for m in mixtures])
    return EMRun(log_likelihood, *(np.array(records[k]) for k in records), mixtures=mixtures)


def random_init(x: object, n_components: int, seed: int = 0) -> Mixture:
    """A starting point for EM: equal weights, means at distinct random data points,
    every covariance equal to the covariance of the whole data set."""
    check_positive_int("n_components", n_components)
    x = _points(x)
    if n_components > len(x):
        raise ValueError(f"n_components={n_components} is more than the {len(x)} points")
    rng = np.random.default_rng(seed)
    means = x[rng.choice(len(x), size=n_components, replace=False)]
    cov = np.cov(x.T, bias=True).reshape(x.shape[1], x.shape[1])
    return Mixture(np.full(n_components, 1 / n_components), means, np.stack([cov] * n_components))
