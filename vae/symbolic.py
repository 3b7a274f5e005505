"""The KL divergence between Gaussians, derived with sympy rather than typed in.

Every result here is obtained by integrating a log-density ratio against a
density and letting sympy simplify; the familiar closed forms are written out
separately (:func:`kl_1d_closed_form`, :func:`kl_mvn_closed_form`,
:func:`kl_diagonal_closed_form`) only so that the derivations can be checked
against them with :func:`is_zero`.

Conventions: KL(p || q) = E_p[log p(z) − log q(z)] in nats, where p is the
distribution we integrate against (the encoder's q(z|x) in a VAE) and q the
one we compare it to (the prior).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import numpy as np
import sympy as sp

from vae.validation import check_positive_int

z = sp.Symbol("z", real=True)
mu_p, mu_q = sp.symbols("mu_p mu_q", real=True)
sigma_p, sigma_q = sp.symbols("sigma_p sigma_q", positive=True)


def normal_density(x: sp.Expr, mean: sp.Expr, std: sp.Expr) -> sp.Expr:
    """The density of N(mean, std²) at ``x``."""
    return sp.exp(-((x - mean) ** 2) / (2 * std**2)) / sp.sqrt(2 * sp.pi * std**2)


def expectation(expr: sp.Expr, mean: sp.Expr = mu_p, std: sp.Expr = sigma_p) -> sp.Expr:
    """E[expr] for z ~ N(mean, std²): the integral of expr · density over the real line.

    ``expr`` is an expression in this module's symbol ``z``. It is expanded first, so that sympy integrates a sum of monomials
    times a Gaussian, which it does quickly and exactly.
    """
    integral = sp.integrate(sp.expand(expr) * normal_density(z, mean, std), (z, -sp.oo, sp.oo))
    return sp.simplify(integral)


class Derivation(NamedTuple):
    """The 1-D KL split into the three pieces of log p(z) − log q(z).

    ``terms`` maps a name to (the piece of the integrand, its expectation under p);
    ``kl`` is the sum of the expectations.
    """

    integrand: sp.Expr
    terms: dict[str, tuple[sp.Expr, sp.Expr]]
    kl: sp.Expr


def derive_kl_1d() -> Derivation:
    """KL(N(mu_p, sigma_p²) || N(mu_q, sigma_q²)) by integrating against the density of p.

    log p(z) − log q(z) = log(sigma_q / sigma_p) − (z − mu_p)²/(2 sigma_p²) + (z − mu_q)²/(2 sigma_q²);
    each of the three pieces is integrated against N(mu_p, sigma_p²) on its own.
    """
    pieces = {
        "log-ratio of normalisers": sp.log(sigma_q / sigma_p),
        "p's quadratic": -((z - mu_p) ** 2) / (2 * sigma_p**2),
        "q's quadratic": (z - mu_q) ** 2 / (2 * sigma_q**2),
    }
    terms = {name: (piece, expectation(piece)) for name, piece in pieces.items()}
    return Derivation(sum(pieces.values()), terms, sum(value for _, value in terms.values()))


def kl_1d_closed_form() -> sp.Expr:
    """The textbook answer log(sigma_q/sigma_p) + (sigma_p² + (mu_p − mu_q)²)/(2 sigma_q²) − 1/2."""
    return sp.log(sigma_q / sigma_p) + (sigma_p**2 + (mu_p - mu_q) ** 2) / (2 * sigma_q**2) - sp.Rational(1, 2)


@cache
def _standard_normal_moment(k: int) -> sp.Expr:
    """E[u^k] for u ~ N(0, 1), by integration."""
    u = sp.Symbol("u", real=True)
    return sp.integrate(u**k * normal_density(u, 0, 1), (u, -sp.oo, sp.oo))


def _cholesky_symbols(name: str, d: int) -> sp.Matrix:
    """A generic lower-triangular d×d matrix with a positive diagonal.

    Every symmetric positive-definite matrix is C Cᵀ for exactly one such C,
    so results proved for C Cᵀ hold for all covariance matrices of size d.
    """

    def entry(i: int, j: int) -> sp.Expr:
        if i < j:
            return sp.Integer(0)
        return sp.Symbol(f"{name}_{i + 1}{j + 1}", positive=(i == j), real=True)

    return sp.Matrix(d, d, entry)


class Gaussians(NamedTuple):
    """Two generic d-dimensional Gaussians: means and Cholesky factors of the covariances."""

    mean_p: sp.Matrix
    chol_p: sp.Matrix
    mean_q: sp.Matrix
    chol_q: sp.Matrix


def generic_gaussians(d: int) -> Gaussians:
    """Symbolic means m, n (d×1) and Cholesky factors A, B (d×d) for p = N(m, A Aᵀ), q = N(n, B Bᵀ)."""
    check_positive_int("d", d)
    mean_p = sp.Matrix(sp.symbols(f"m_1:{d + 1}", real=True))
    mean_q = sp.Matrix(sp.symbols(f"n_1:{d + 1}", real=True))
    return Gaussians(mean_p, _cholesky_symbols("A", d), mean_q, _cholesky_symbols("B", d))


def mvn_log_density(x: sp.Matrix, mean: sp.Matrix, chol: sp.Matrix) -> sp.Expr:
    """log N(x; mean, C Cᵀ) with C = ``chol`` lower-triangular: −d/2 log 2π − Σ log C_ii − ½|C⁻¹(x − mean)|²."""
    d = len(mean)
    r = chol.LUsolve(x - mean)
    return -sp.Rational(d, 2) * sp.log(2 * sp.pi) - sum(sp.log(chol[i, i]) for i in range(d)) - (r.T * r)[0] / 2


def derive_kl_mvn(g: Gaussians) -> sp.Expr:
    """KL(p || q) for d-dimensional Gaussians by integrating against p.

    Substituting z = m + A u with u ~ N(0, I) turns log p(z) − log q(z) into a
    polynomial in u; its expectation is a sum of products of 1-D standard-normal
    moments (the u_i are independent), each found by :func:`_standard_normal_moment`.
    """
    d = len(g.mean_p)
    u = sp.symbols(f"u_1:{d + 1}", real=True)
    zs = g.mean_p + g.chol_p * sp.Matrix(u)
    log_ratio = mvn_log_density(zs, g.mean_p, g.chol_p) - mvn_log_density(zs, g.mean_q, g.chol_q)
    poly = sp.Poly(sp.expand(log_ratio), *u)
    return sum(c * sp.prod([_standard_normal_moment(k) for k in powers]) for powers, c in poly.terms())


def kl_mvn_closed_form(mean_p: sp.Matrix, cov_p: sp.Matrix, mean_q: sp.Matrix, cov_q: sp.Matrix) -> sp.Expr:
    """½[log det Σ_q/det Σ_p + tr(Σ_q⁻¹Σ_p) + (μ_p − μ_q)ᵀ Σ_q⁻¹ (μ_p − μ_q) − d]."""
    d = len(mean_p)
    precision_q = cov_q.inv()
    diff = mean_p - mean_q
    return (
        sp.log(cov_q.det() / cov_p.det()) + (precision_q * cov_p).trace() + (diff.T * precision_q * diff)[0] - d
    ) / 2


def diagonal_symbols(d: int) -> tuple[list[sp.Symbol], list[sp.Symbol]]:
    """Symbols mu_1..mu_d (real) and sigma_1..sigma_d (positive) for a diagonal Gaussian."""
    check_positive_int("d", d)
    return list(sp.symbols(f"mu_1:{d + 1}", real=True)), list(sp.symbols(f"sigma_1:{d + 1}", positive=True))


def kl_diagonal_from_mvn(d: int) -> sp.Expr:
    """The general closed form with Σ_p = diag(σ²), μ_q = 0, Σ_q = I: the VAE's KL term."""
    mu, sigma = diagonal_symbols(d)
    return kl_mvn_closed_form(
        sp.Matrix(mu), sp.diag(*[s**2 for s in sigma]), sp.zeros(d, 1), sp.eye(d)
    )


def kl_diagonal_closed_form(d: int, log_sign: int = -1) -> sp.Expr:
    """½ Σ_j [log_sign · log σ_j² + σ_j² + μ_j² − 1].

    ``log_sign = -1`` is the correct KL(N(μ, diag σ²) || N(0, I)); ``log_sign = +1``
    is the common misprint, which is not a divergence at all.
    """
    if log_sign not in (-1, 1):
        raise ValueError(f"log_sign must be -1 or +1, got {log_sign!r}")
    mu, sigma = diagonal_symbols(d)
    return sum(log_sign * sp.log(s**2) + s**2 + m**2 - 1 for m, s in zip(mu, sigma)) / 2


def is_zero(expr: sp.Expr) -> bool:
    """True when sympy simplifies ``expr`` (logs of positive symbols expanded) to exactly 0."""
    return sp.simplify(sp.expand_log(expr, force=True)) == 0


def kl_numeric(expr: sp.Expr | None = None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A numpy function f(mean, logvar) -> KL per element, in nats, made with ``sympy.lambdify``.

    ``expr`` is a 1-D KL to N(0, 1) in ``mu_p`` and ``sigma_p`` (by default the one
    :func:`derive_kl_1d` derives, with mu_q = 0 and sigma_q = 1). It is rewritten
    in terms of the log-variance, as a VAE's encoder outputs it. Sum the result
    over the latent axis to get the KL of a diagonal Gaussian.
    """
    if expr is None:
        expr = derive_kl_1d().kl.subs({mu_q: 0, sigma_q: 1})
    mean, logvar = sp.symbols("mean logvar", real=True)
    in_logvar = sp.simplify(sp.expand_log(expr.subs({mu_p: mean, sigma_p: sp.exp(logvar / 2)}), force=True))
    return sp.lambdify((mean, logvar), in_logvar, modules="numpy")


def symmetric_symbols(name: str, d: int) -> sp.Matrix:
    """A generic symmetric d×d matrix of real symbols ``{name}_ij`` (i <= j)."""
    check_positive_int("d", d)
    return sp.Matrix(d, d, lambda i, j: sp.Symbol(f"{name}_{min(i, j) + 1}{max(i, j) + 1}", real=True))


def expected_quadratic_form(d: int) -> tuple[sp.Expr, sp.Expr]:
    """E[(z − n)ᵀ Q (z − n)] for z ~ N(m, A Aᵀ) by integration, and tr(Q A Aᵀ) + (m − n)ᵀ Q (m − n).

    The identity behind the d-dimensional KL. ``Q`` is a generic symmetric matrix, ``m`` and ``n``
    generic vectors and ``A`` a generic Cholesky factor; the expectation substitutes z = m + A u,
    u ~ N(0, I), and integrates the polynomial in u with the moments of :func:`_standard_normal_moment`.
    Returns (by integration, by the identity); their difference is zero for every Q, m, n and A.
    """
    g = generic_gaussians(d)
    q = symmetric_symbols("Q", d)
    u = sp.symbols(f"u_1:{d + 1}", real=True)
    r = g.mean_p + g.chol_p * sp.Matrix(u) - g.mean_q
    poly = sp.Poly(sp.expand((r.T * q * r)[0]), *u)
    integrated = sum(c * sp.prod([_standard_normal_moment(k) for k in powers]) for powers, c in poly.terms())
    offset = g.mean_p - g.mean_q
    return integrated, (q * g.chol_p * g.chol_p.T).trace() + (offset.T * q * offset)[0]


def kl_diagonal_by_integration(d: int) -> sp.Expr:
    """KL(N(μ, diag σ²) || N(0, I)) integrated as in :func:`derive_kl_mvn`, with the symbols of
    :func:`diagonal_symbols`: the VAE's KL term derived, not substituted into a typed formula."""
    mu, sigma = diagonal_symbols(d)
    return derive_kl_mvn(Gaussians(sp.Matrix(mu), sp.diag(*sigma), sp.zeros(d, 1), sp.eye(d)))
