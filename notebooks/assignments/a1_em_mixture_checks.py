"""The checks that grade assignment 1 (EM for a Gaussian mixture), run by ``python -m classroom``.

The probe calls the submission's functions on inputs drawn afresh for each submission; the tests
compare the plain results with values computed here, in the grader's process.
"""

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from classroom.checks import Check, Mismatch, array, close


def draw(rng: np.random.Generator) -> dict:
    """Inputs for one submission: a 1-D mixture, soft responsibilities in 2-D, data for EM."""
    centres = rng.permutation([-3.0, -1.0, 1.0, 3.0])
    return {
        "mix_x": rng.normal(0.0, 2.0, size=(5, 1)).tolist(),
        "mix_w": rng.dirichlet([2.0, 2.0]).tolist(),
        "mix_mu": rng.normal(0.0, 2.0, size=(2, 1)).tolist(),
        "mix_var": rng.uniform(0.25, 2.0, size=(2, 1, 1)).tolist(),
        "share_x": (rng.normal(size=(50, 2)) @ np.array([[1.0, 0.5], [0.0, 2.0]])).tolist(),
        "soft_x": rng.normal(size=(40, 2)).tolist(),
        "soft_r": rng.dirichlet(np.ones(3), size=40).tolist(),
        "em_x": np.concatenate([rng.normal(c, 0.8, size=75) for c in centres])[:, None].tolist(),
        # the same questions as the hand-made cases, at points no one can know in advance
        "std_x": rng.normal(0.0, 1.5, size=(3, 1)).tolist(),
        "far_x": [[float(rng.uniform(900.0, 1100.0))]],
        "half_w": rng.dirichlet([2.0, 2.0]).tolist(),
        "hard_x": np.sort(rng.uniform(-5.0, 5.0, size=6))[:, None].tolist(),
        "small_x": rng.normal(0.0, 2.0, size=(8, 1)).tolist(),
        "fit_x": (
            rng.normal(size=(300, 2)) * 0.6
            + rng.permutation(np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]]))[rng.integers(3, size=300)]
        ).tolist(),
        "fit_start": rng.choice(300, size=3, replace=False).tolist(),
    }


PROBE = """\
import numpy as _np
A = {k: _np.array(v) for k, v in INPUTS.items()}
# %%
record("ll_standard", lambda: log_likelihood(_np.zeros((1, 1)), _np.array([1.0]), _np.zeros((1, 1)), _np.ones((1, 1, 1))))
record("ll_mixture", lambda: log_likelihood(A["mix_x"], A["mix_w"], A["mix_mu"], A["mix_var"]))
record("ll_far", lambda: log_likelihood(_np.array([[1000.0]]), _np.array([0.5, 0.5]), _np.zeros((2, 1)), _np.ones((2, 1, 1))))
record("ll_std", lambda: [log_likelihood(_np.array([p]), _np.array([1.0]), _np.zeros((1, 1)), _np.ones((1, 1, 1))) for p in A["std_x"]])
record("ll_far_random", lambda: log_likelihood(A["far_x"], _np.array([0.5, 0.5]), _np.zeros((2, 1)), _np.ones((2, 1, 1))))
# %%
_X2 = _np.array([[0.0, 0.0], [1.0, 2.0], [-3.0, 0.5], [4.0, -1.0]])
_M3 = _np.array([[0.0, 0.0], [2.0, 2.0], [-2.0, 0.0]])
record("r_rows", lambda: e_step(_X2, _np.array([0.2, 0.5, 0.3]), _M3, _np.stack([_np.eye(2)] * 3)))
record("r_1d", lambda: e_step(_np.array([[-1.0], [1.0]]), _np.array([0.5, 0.5]), _np.array([[-1.0], [1.0]]), _np.ones((2, 1, 1))))
record("r_weights", lambda: e_step(_np.array([[0.0]]), _np.array([0.9, 0.1]), _np.array([[-2.0], [2.0]]), _np.ones((2, 1, 1))))
record("r_far", lambda: e_step(_np.array([[1000.0]]), _np.array([0.5, 0.5]), _np.array([[0.0], [1.0]]), _np.ones((2, 1, 1))))
record("r_random", lambda: e_step(A["mix_x"], A["mix_w"], A["mix_mu"], A["mix_var"]))
record("r_half", lambda: e_step(_np.array([[0.0]]), A["half_w"], _np.array([[-2.0], [2.0]]), _np.ones((2, 1, 1))))
record("r_far_random", lambda: e_step(A["far_x"], _np.array([0.5, 0.5]), _np.array([[0.0], [1.0]]), _np.ones((2, 1, 1))))
# %%
_XH = _np.array([[0.0], [2.0], [10.0], [12.0]])
record("m_hard", lambda: m_step(_XH, _np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])))
record("m_hard_random", lambda: m_step(A["hard_x"], _np.repeat(_np.eye(2), 3, axis=0)))
record("m_share", lambda: m_step(A["share_x"], _np.full((50, 2), 0.5)))
record("m_soft", lambda: m_step(A["soft_x"], A["soft_r"]))
# %%
_XE = _np.array([[-2.1], [-1.9], [-1.5], [0.2], [1.8], [2.0], [2.4], [2.6]])
record("em_small", lambda: run_em(_XE, _np.array([0.5, 0.5]), _np.array([[-0.5], [0.5]]), _np.ones((2, 1, 1)), 5)[-1])
record("em_small_random", lambda: run_em(A["small_x"], _np.array([0.5, 0.5]), _np.array([[-0.5], [0.5]]), _np.ones((2, 1, 1)), 5)[-1])
# %%
_START = (_np.full(4, 0.25), _np.array([[0.0], [0.1], [0.2], [0.3]]), _np.ones((4, 1, 1)))
record("em_hard", lambda: run_em(A["em_x"], *_START, 30)[-1])
# %%
record("fit", lambda: {"weights": weights_hat, "means": means_hat, "history": history})
def _fresh_fit():
    x = A["fit_x"]
    weights, means, covs, hist = run_em(x, _np.full(3, 1 / 3), x[A["fit_start"]], _np.stack([_np.eye(2)] * 3), 100)
    return {"weights": weights, "means": means, "history": hist}
record("fit_fresh", _fresh_fit)
"""


def mixture_log_likelihood(x, weights, means, covs) -> float:
    joint = np.stack([np.log(w) + multivariate_normal.logpdf(x, m, c) for w, m, c in zip(weights, means, covs)], -1)
    return float(logsumexp(joint.reshape(len(x), len(weights)), axis=1).sum())


def reference_em(x, weights, means, covs, n_iter):
    """EM as the master notebook runs it: the weights, means and the log-likelihood history."""
    x, weights, means, covs = (np.asarray(v, dtype=float) for v in (x, weights, means, covs))
    history = [mixture_log_likelihood(x, weights, means, covs)]
    for _ in range(n_iter):
        joint = np.stack([np.log(w) + multivariate_normal.logpdf(x, m, c) for w, m, c in zip(weights, means, covs)], -1)
        joint = joint.reshape(len(x), len(weights))
        r = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        counts = r.sum(axis=0)
        means = (r.T @ x) / counts[:, None]
        diffs = x[None] - means[:, None]
        covs = np.einsum("nk,kni,knj->kij", r, diffs, diffs) / counts[:, None, None]
        weights = counts / len(x)
        history.append(mixture_log_likelihood(x, weights, means, covs))
    return weights, means, np.array(history)


def _fresh(i):
    x = np.asarray(i["fit_x"])
    return reference_em(x, np.full(3, 1 / 3), x[i["fit_start"]], np.stack([np.eye(2)] * 3), 100)


def responsibilities(got, n: int, k: int) -> np.ndarray:
    r = array(got, (n, k))
    assert np.all(np.isfinite(r)) and np.all(r >= 0) and np.all(r <= 1), "got entries outside [0, 1]"
    close(r.sum(axis=1), np.ones(n), atol=1e-9)
    return r


def m_step_result(got, k: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert isinstance(got, list) and len(got) == 3, "m_step should return (weights, means, covs)"
    return array(got[0], (k,)), array(got[1], (k, d)), array(got[2], (k, d, d))


def history(got, length: int) -> np.ndarray:
    values = array(got, (length,))
    assert np.all(np.isfinite(values)), "the history holds values that are not finite"
    steps = np.diff(values)
    if not np.all(steps >= -1e-9 * np.abs(values[:-1])):
        raise Mismatch("a history that never decreases", values)
    return values


def _ll_standard(i, got):
    close(got["ll_standard"], -0.5 * np.log(2 * np.pi))
    x = np.asarray(i["std_x"])[:, 0]
    close(got["ll_std"], -0.5 * np.log(2 * np.pi) - x**2 / 2)


def _ll_far(i, got):
    close(got["ll_far"], -0.5 * 1000.0**2 - 0.5 * np.log(2 * np.pi))
    close(got["ll_far_random"], mixture_log_likelihood(i["far_x"], [0.5, 0.5], np.zeros((2, 1)), np.ones((2, 1, 1))))


def _r_rows(i, got):
    responsibilities(got["r_rows"], 4, 3)
    x, w, mu, var = (np.asarray(i[k]) for k in ("mix_x", "mix_w", "mix_mu", "mix_var"))
    joint = np.stack([np.log(a) + multivariate_normal.logpdf(x, m, c) for a, m, c in zip(w, mu, var)], -1).reshape(5, 2)
    close(responsibilities(got["r_random"], 5, 2), np.exp(joint - logsumexp(joint, axis=1, keepdims=True)))


def _r_weights(i, got):
    close(responsibilities(got["r_weights"], 1, 2), [[0.9, 0.1]])
    close(responsibilities(got["r_half"], 1, 2), [i["half_w"]])


def _em_small(i, got):
    history(got["em_small"], 6)
    x = np.asarray(i["small_x"])
    *_, expected = reference_em(x, [0.5, 0.5], [[-0.5], [0.5]], np.ones((2, 1, 1)), 5)
    close(history(got["em_small_random"], 6), expected, rtol=1e-6)


def _ll_mixture(i, got):
    close(got["ll_mixture"], mixture_log_likelihood(i["mix_x"], i["mix_w"], i["mix_mu"], i["mix_var"]))


def _r_1d(i, got):
    near = 1 / (1 + np.exp(-2.0))
    close(responsibilities(got["r_1d"], 2, 2), [[near, 1 - near], [1 - near, near]])
    _r_rows(i, got)  # and the same in 1-D on a mixture drawn for this submission


def _r_far(i, got):
    for key in ("r_far", "r_far_random"):
        r = responsibilities(got[key], 1, 2)
        assert r[0, 1] > 0.999, f"expected almost all weight on the nearer component, got {r[0, 1]:.4g}"


def _m_hard(i, got):
    weights, means, covs = m_step_result(got["m_hard"], 2, 1)
    close(weights, [0.5, 0.5])
    close(means, [[1.0], [11.0]])
    close(covs, [[[1.0]], [[1.0]]])
    x = np.asarray(i["hard_x"])
    weights, means, covs = m_step_result(got["m_hard_random"], 2, 1)
    close(weights, [0.5, 0.5])
    close(means, [x[:3].mean(axis=0), x[3:].mean(axis=0)])
    close(covs, [[[x[:3].var()]], [[x[3:].var()]]])


def _m_share(i, got):
    x = np.asarray(i["share_x"])
    weights, means, covs = m_step_result(got["m_share"], 2, 2)
    close(weights, [0.5, 0.5])
    close(means, [x.mean(axis=0)] * 2)
    close(covs, [np.cov(x.T, bias=True)] * 2)


def _m_soft(i, got):
    x, r = np.asarray(i["soft_x"]), np.asarray(i["soft_r"])
    weights, means, covs = m_step_result(got["m_soft"], 3, 2)
    counts = r.sum(axis=0)
    mu = (r.T @ x) / counts[:, None]
    diffs = x[None] - mu[:, None]
    close(weights, counts / len(x))
    close(means, mu)
    close(covs, np.einsum("nk,kni,knj->kij", r, diffs, diffs) / counts[:, None, None])


def _em_hard(i, got):
    values = history(got["em_hard"], 31)
    if not values[-1] > values[0]:
        raise Mismatch("a final log-likelihood above the first", values[-1])
    x = np.asarray(i["em_x"])
    *_, expected = reference_em(x, np.full(4, 0.25), [[0.0], [0.1], [0.2], [0.3]], np.ones((4, 1, 1)), 30)
    close(values, expected, rtol=1e-6)


def _fit_shapes(i, got):
    fit = got["fit"]
    assert isinstance(fit, dict) and set(fit) == {"weights", "means", "history"}, (
        "weights_hat, means_hat or history is missing"
    )
    array(fit["means"], (3, 2))
    close(np.sum(array(fit["weights"], (3,))), 1.0)
    array(fit["history"], (101,))
    fresh = got["fit_fresh"]  # run_em on a mixture drawn for this submission: the same shapes
    assert isinstance(fresh, dict) and set(fresh) == {"weights", "means", "history"}, "run_em failed on fresh data"
    array(fresh["means"], (3, 2))
    close(np.sum(array(fresh["weights"], (3,))), 1.0)
    values = history(fresh["history"], 101)
    close(values[0], _fresh(i)[2][0], rtol=1e-6)  # starting from the log-likelihood at the start


def _fit_clusters(i, got):
    fit = got["fit"]
    assert isinstance(fit, dict) and set(fit) == {"weights", "means", "history"}, "weights_hat or means_hat is missing"
    true_means = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    means = array(fit["means"], (3, 2))
    distances = np.linalg.norm(means[None] - true_means[:, None], axis=-1).min(axis=1)
    if not np.all(distances < 0.25):
        raise Mismatch("distances below 0.25", distances)
    close(array(fit["weights"], (3,)), np.full(3, 1 / 3), rtol=0, atol=0.08)
    fresh = got["fit_fresh"]  # the same 100 iterations on a mixture drawn for this submission
    weights, means, _ = _fresh(i)
    assert isinstance(fresh, dict), "run_em failed on fresh data"
    close(array(fresh["means"], (3, 2)), means, rtol=1e-4, atol=1e-4)
    close(array(fresh["weights"], (3,)), weights, rtol=1e-4, atol=1e-4)


CHECKS = [
    Check(
        "log_likelihood",
        "single standard normal",
        1,
        "One point at 0 under a single standard normal should give -0.5 log(2 pi), about -0.9189 nats.",
        _ll_standard,
    ),
    Check(
        "log_likelihood",
        "two components",
        0.5,
        "For a two-component mixture in 1-D, the value should equal the sum over points of "
        "log(sum_k pi_k N(x | mu_k, var_k)).",
        _ll_mixture,
    ),
    Check(
        "log_likelihood",
        "far point",
        0.5,
        "A point 1000 standard deviations from every component must give a finite log-likelihood (about "
        "-5e5 nats); combine log-densities with logsumexp instead of exponentiating them.",
        _ll_far,
    ),
    Check(
        "e_step",
        "rows are distributions",
        1,
        "e_step should return an array of shape [N, K] whose entries are between 0 and 1 and whose rows sum to 1.",
        _r_rows,
    ),
    Check(
        "e_step",
        "hand-made 1-D case",
        1,
        "For x = -1 and x = 1 with equal weights and unit-variance components at -1 and 1, the "
        "responsibility of the nearer component is 1 / (1 + exp(-2)), about 0.8808.",
        _r_1d,
    ),
    Check(
        "e_step",
        "weights matter",
        0.5,
        "A point half-way between two identical components should get responsibilities equal to the "
        "weights (0.9 and 0.1 here).",
        _r_weights,
    ),
    Check(
        "e_step",
        "far point",
        0.5,
        "A point 1000 standard deviations from both components must still get responsibilities that are "
        "finite and sum to 1 (here almost all on the nearer component); normalise in the log domain.",
        _r_far,
    ),
    Check(
        "m_step",
        "hard assignments",
        1,
        "With x = 0, 2, 10, 12 and the first two points given wholly to component 1, expected weights "
        "[0.5, 0.5], means [1, 11] and variances [1, 1] (divide by N_k, not N_k - 1).",
        _m_hard,
    ),
    Check(
        "m_step",
        "equal sharing",
        1,
        "When every point is shared equally by two components, both should get weight 0.5, the sample mean "
        "and the maximum-likelihood (divide by N) sample covariance.",
        _m_share,
    ),
    Check(
        "m_step",
        "soft responsibilities in 2-D",
        1,
        "For soft responsibilities in 2-D the weights should sum to 1, means have shape [K, d], and each "
        "covariance should be the r-weighted average of outer products (x - mu_k)(x - mu_k)^T.",
        _m_soft,
    ),
    Check(
        "run_em",
        "history never decreases",
        1,
        "run_em(..., n_iter=5) should return 4 values, the last a list of 6 log-likelihoods that never "
        "decreases (up to 1e-9 relative rounding).",
        _em_small,
    ),
    Check(
        "run_em",
        "history on harder data",
        1,
        "On 300 points from four overlapping 1-D clusters, 30 iterations from a poor start should give a "
        "non-decreasing history of 31 values that ends higher than it starts.",
        _em_hard,
    ),
    Check(
        "clusters",
        "shapes of the fit",
        1,
        "means_hat should have shape (3, 2), weights_hat should sum to 1, and history should hold 101 log-likelihoods.",
        _fit_shapes,
    ),
    Check(
        "clusters",
        "clusters recovered",
        1,
        "Each true mean, (-2, 0), (2, 1) and (0, -2.5), should have a fitted mean within 0.25 of it, and "
        "each fitted weight should be within 0.08 of 1/3.",
        _fit_clusters,
    ),
]
