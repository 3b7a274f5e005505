"""The checks that grade assignment 3 (the Gaussian KL with sympy), run by ``python -m classroom``.

The probe evaluates the submission's expressions at points drawn afresh for each submission and
returns only numbers; the tests compare them with the closed forms here. Properties of the form
are checked through mathematics too, never through printed text: an expression is free of a
symbol when substituting two random values for it gives the same number, it is evaluated when it
compiles to plain floating-point code (``lambdify`` with the ``math`` module, which has no
integrals), and the log-ratio is expanded when that code stays finite far out in z, where the
densities themselves underflow.
"""

import math

import numpy as np

from classroom.checks import Check, Mismatch, array, close


def draw(rng: np.random.Generator) -> dict:
    """Points (mu, sigma, z) and (mu, logvar) for one submission."""
    return {
        "points": np.column_stack([rng.normal(size=5), rng.uniform(0.3, 3.0, size=5), rng.normal(size=5) * 2]).tolist(),
        "zs": np.linspace(-2.0, 2.0, 5).tolist(),
        "means": rng.normal(size=(6, 4)).tolist(),
        "logvars": rng.normal(size=(6, 4)).tolist(),
        "far": np.column_stack(
            [
                rng.uniform(40.0, 60.0, size=4) * rng.choice([-1, 1], size=4),
                rng.normal(size=4),
                rng.uniform(0.5, 2.0, size=4),
            ]
        ).tolist(),
        "other_z": rng.normal(size=5).tolist(),
        "lv_points": np.column_stack([rng.normal(size=5), rng.normal(size=5), rng.uniform(0.3, 3.0, size=5)]).tolist(),
    }


PROBE = """\
import sympy as _sp
_z, _mu = _sp.symbols("z mu", real=True)
_sigma = _sp.Symbol("sigma", positive=True)
_logvar = _sp.Symbol("logvar", real=True)
def _at(expr, **values):
    names = {"z": _z, "mu": _mu, "sigma": _sigma, "logvar": _logvar}
    return float(expr.subs({names[k]: v for k, v in values.items()}))
def _fast(expr, *names):
    symbols = {"z": _z, "mu": _mu, "sigma": _sigma, "logvar": _logvar}
    return _sp.lambdify([symbols[n] for n in names], expr, "math")
# %%
record("p_grid", lambda: [_at(p, z=v) for v in INPUTS["zs"]])
record("q_standard", lambda: [_at(q, z=v, mu=0, sigma=1) for v in INPUTS["zs"]])
record("q_points", lambda: [_at(q, mu=m, sigma=s, z=v) for m, s, v in INPUTS["points"]])
# %%
record("ratio_prior", lambda: [_at(log_ratio, z=v, mu=0, sigma=1) for v in INPUTS["zs"]])
record("ratio_two", lambda: [_at(log_ratio, z=v, mu=2, sigma=1) for v in INPUTS["zs"]])
record("ratio_points", lambda: [_at(log_ratio, mu=m, sigma=s, z=v) for m, s, v in INPUTS["points"]])
record("ratio_far", lambda: [float(_fast(log_ratio, "z", "mu", "sigma")(v, m, s)) for v, m, s in INPUTS["far"]])
# %%
record("kl_prior", lambda: _at(kl, mu=0, sigma=1))
record("kl_points", lambda: [_at(kl, mu=m, sigma=s) for m, s, _ in INPUTS["points"]])
record("kl_half", lambda: _at(kl, mu=0, sigma=0.5))
record("kl_other_z", lambda: [_at(kl, mu=m, sigma=s, z=v) for (m, s, _), v in zip(INPUTS["points"], INPUTS["other_z"])])
record("kl_fast", lambda: [float(_fast(kl, "mu", "sigma")(m, s)) for m, s, _ in INPUTS["points"]])
# %%
record("numeric_known", lambda: [float(kl_numeric(0.0, 0.0)), float(kl_numeric(2.0, 0.0)), float(kl_numeric(0.0, 2.0))])
record("numeric_arrays", lambda: kl_numeric(_np_arr(INPUTS["means"]), _np_arr(INPUTS["logvars"])))
record("logvar_points", lambda: [[_at(kl_logvar, mu=m, logvar=lv, sigma=s) for m, lv, s in INPUTS["lv_points"]], [_at(kl_logvar, mu=m, logvar=lv, sigma=2 * s) for m, lv, s in INPUTS["lv_points"]]])
""".replace("_np_arr", "__import__('numpy').array")


def normal_density(z, mu, sigma):
    return np.exp(-((z - mu) ** 2) / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2)


def closed_kl(mu, sigma):
    return (mu**2 + sigma**2 - np.log(sigma**2) - 1) / 2


def _q_points(i, got):
    mu, sigma, z = np.asarray(i["points"]).T
    close(got["q_points"], normal_density(z, mu, sigma), rtol=1e-9)


def _prior(i, got):
    z = np.asarray(i["zs"])
    close(got["p_grid"], normal_density(z, 0.0, 1.0), rtol=1e-9)
    close(got["q_standard"], normal_density(z, 0.0, 1.0), rtol=1e-9)


def _ratio_values(i, got):
    z = np.asarray(i["zs"])
    close(got["ratio_prior"], np.zeros(5), atol=1e-9)
    close(got["ratio_two"], 2 * z - 2, atol=1e-9)


def _ratio_expanded(i, got):
    mu, sigma, z = np.asarray(i["points"]).T
    close(got["ratio_points"], -np.log(sigma) - (z - mu) ** 2 / (2 * sigma**2) + z**2 / 2, rtol=1e-9, atol=1e-9)
    far = np.asarray(i["far"])
    z, mu, sigma = far.T
    expected = -np.log(sigma) - (z - mu) ** 2 / (2 * sigma**2) + z**2 / 2
    if isinstance(got["ratio_far"], dict):
        raise AssertionError("log_ratio as floating-point code fails far out in z, where exp underflows")  # noqa: TRY004
    close(got["ratio_far"], expected, rtol=1e-8, atol=1e-6)


def _kl_evaluated(i, got):
    close(got["kl_prior"], 0.0, atol=1e-12)
    if isinstance(got["kl_fast"], dict):
        raise AssertionError("kl does not compile to plain floating-point code: is an integral left in it?")  # noqa: TRY004
    values = array(got["kl_points"], (5,))
    close(got["kl_fast"], values, rtol=1e-9, atol=1e-12)  # the same function as kl itself
    if not np.allclose(array(got["kl_other_z"], (5,)), values, rtol=1e-12, atol=1e-12):
        raise AssertionError("kl changes with z")


def _kl_closed(i, got):
    mu, sigma, _ = np.asarray(i["points"]).T
    close(got["kl_points"], closed_kl(mu, sigma), rtol=1e-9, atol=1e-12)


def _kl_sign(i, got):
    mu, sigma, _ = np.asarray(i["points"]).T
    values = array(got["kl_points"], (5,))
    wrong = (mu**2 + sigma**2 + np.log(sigma**2) - 1) / 2
    if np.allclose(values, wrong, rtol=1e-9):
        raise Mismatch("not the wrong-sign formula", values)
    half = float(array(got["kl_half"], ()))
    if not half > 0:
        raise Mismatch("a positive KL at mu = 0, sigma = 1/2", half)


def _known(i, got):
    close(array(got["numeric_known"], (3,))[:2], [0.0, 2.0], rtol=1e-9, atol=1e-9)


def _log_sigma_one(i, got):
    close(array(got["numeric_known"], (3,))[2], 0.5 * (math.e**2 - 3), rtol=1e-9)
    mu, logvar, _ = np.asarray(i["lv_points"]).T
    once, twice = array(got["logvar_points"], (2, 5))
    close(once, closed_kl(mu, np.exp(logvar / 2)), rtol=1e-9, atol=1e-12)
    if not np.allclose(once, twice, rtol=1e-12, atol=1e-12):
        raise AssertionError("kl_logvar changes with sigma")


def _arrays(i, got):
    mean, logvar = np.asarray(i["means"]), np.asarray(i["logvars"])
    ours = array(got["numeric_arrays"], mean.shape).sum(-1)
    close(ours, closed_kl(mean, np.exp(logvar / 2)).sum(-1), rtol=1e-5)


CHECKS = [
    Check(
        "densities",
        "the prior's density",
        1,
        "p at z = 0 should be 1 / sqrt(2 pi), about 0.3989, and q with mu = 0, sigma = 1 should be the same function of z as p.",
        _prior,
    ),
    Check(
        "densities",
        "q is the normal density",
        1,
        "q should equal the normal density exp(-(z - mu)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2) for every mu and sigma, so that it integrates to 1 over z.",
        _q_points,
    ),
    Check(
        "log_ratio",
        "values",
        1,
        "log_ratio should be zero everywhere when mu = 0 and sigma = 1, and equal to 2 z - 2 when mu = 2 and sigma = 1.",
        _ratio_values,
    ),
    Check(
        "log_ratio",
        "expanded",
        1,
        "log_ratio should equal -log(sigma) - (z - mu)^2 / (2 sigma^2) + z^2 / 2, a polynomial of degree 2 in z with no exp or log of z left.",
        _ratio_expanded,
    ),
    Check(
        "kl",
        "evaluated",
        1,
        "kl should be a finished sympy expression in mu and sigma only (no z, no unevaluated Integral) that is 0 for mu = 0, sigma = 1.",
        _kl_evaluated,
    ),
    Check("kl", "closed form", 1, "kl should equal (mu^2 + sigma^2 - log(sigma^2) - 1) / 2 symbolically.", _kl_closed),
    Check(
        "kl",
        "not the wrong sign",
        1,
        "kl must not be (mu^2 + sigma^2 + log(sigma^2) - 1) / 2, the version with the wrong sign of the log term, which is negative for sigma < 1 near mu = 0; a KL divergence is never negative.",
        _kl_sign,
    ),
    Check(
        "kl_logvar",
        "known values",
        1,
        "kl_numeric(0, 0) should be 0 and kl_numeric(2, 0) should be 2 (nats), within 1e-9.",
        _known,
    ),
    Check(
        "kl_logvar",
        "log sigma one",
        1,
        "kl_numeric(0, 2), the KL for log sigma = 1, should be (e^2 - 1 - 2) / 2, about 2.1945 nats, and kl_logvar should contain logvar but no sigma.",
        _log_sigma_one,
    ),
    Check(
        "kl_logvar",
        "arrays",
        1,
        "Summed over latent dimensions, kl_numeric applied to arrays of means and log-variances should match the closed form the book's library uses, within 1e-5 relative.",
        _arrays,
    ),
]
