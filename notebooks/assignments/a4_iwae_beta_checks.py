"""The checks that grade assignment 4 (the beta-VAE, the importance-weighted bound and the two gaps),
run by ``python -m classroom``.

The probe builds ``vae.VAE`` models from weights drawn here for each submission, calls the
submission's functions on them with noise, images and tables drawn here too, and returns plain
numbers; the tests compare them with values this module computes from the same weights, in the
grader's process. Where the submission draws its own noise (the importance-weighted bound), the
tests compare averages over many images and calls with a reference from many more draws made here,
within five standard errors that this module estimates from its own draws, never from the
submission's answers.
"""

import itertools
import math

import numpy as np
import torch
from torch.distributions import Normal

import vae
from classroom.checks import Check, Mismatch, array, close

# The three models: input pixels, hidden sizes, latent size, prior, prior components.
MODELS = {
    "model_a": (20, [12], 3, "standard", 1),  # rate, distortion and the log-weights
    "model_b": (20, [12], 3, "mixture", 4),  # the log-weights under a learned prior
    "model_c": (16, [16], 2, "standard", 1),  # the importance-weighted bound, by its statistics
}
N_IMAGES = 1000  # images of model_c on which the bound is averaged
CALLS = {1: 8, 5: 4, 30: 4}  # calls of iwae_bound(model, x, k) per k
DRAWS = 3000  # log-weights per image for the reference
SIGMAS = 5.0  # how many standard errors an average may stray from the reference
LOWEST = -60.0  # the smallest log-weight the reference may draw for model_c, in nats


def _weights(rng: np.random.Generator, model: vae.VAE) -> list:
    """Weights for every parameter of ``model``, as nested lists: the decoder's strong enough that
    the true posterior differs from q(z|x), q(z|x) narrow (variance about exp(-1.5)), and a
    learned prior's components spread over the latent space."""
    out = []
    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        if name.startswith("latent_prior"):
            w = rng.normal(-1.0, 0.3, size=shape) if name.endswith("logvar") else rng.normal(size=shape)
        elif p.dim() == 2:
            gain = 0.3 if "logvar" in name else 1.5 if name.startswith("decoder") else 1.0
            w = rng.normal(size=shape) * gain / math.sqrt(shape[1])
        elif "logvar" in name:
            w = rng.normal(-1.5, 0.2, size=shape)
        else:
            w = rng.normal(0.0, 0.5 if name.startswith("decoder") else 0.1, size=shape)
        out.append(w.tolist())
    return out


def build(spec: dict) -> vae.VAE:
    """The model a spec describes (the probe builds the same one in the sandbox)."""
    model = vae.VAE(
        spec["input_dim"], spec["hidden"], spec["latent"], prior=spec["prior"], n_components=spec["components"]
    )
    with torch.no_grad():
        for p, w in zip(model.parameters(), spec["weights"]):
            p.copy_(torch.tensor(w, dtype=torch.float32))
    return model.eval()


def _spec(rng: np.random.Generator, name: str) -> dict:
    input_dim, hidden, latent, prior, components = MODELS[name]
    shape = vae.VAE(input_dim, hidden, latent, prior=prior, n_components=components)
    return {
        "input_dim": input_dim,
        "hidden": hidden,
        "latent": latent,
        "prior": prior,
        "components": components,
        "weights": _weights(rng, shape),
    }


@torch.no_grad()
def log_weights(model: vae.VAE, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) at z = mean + std * eps, eps [k, B, L]: [k, B]."""
    mean, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    z = mean + std * eps
    return model.likelihood(z).log_prob(x) + model.prior().log_prob(z) - Normal(mean, std).log_prob(z).sum(-1)


@torch.no_grad()
def rate_distortion(model: vae.VAE, x: torch.Tensor, eps: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The closed-form KL from N(0, I) and -log p(x|z) at z = mean + std * eps, each [B]."""
    mean, logvar = model.encode(x)
    rate = 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1).sum(-1)
    distortion = -model.likelihood(mean + torch.exp(0.5 * logvar) * eps).log_prob(x)
    return rate.double().numpy(), distortion.double().numpy()


def iwae_reference(model: vae.VAE, x: torch.Tensor, generator: torch.Generator) -> dict:
    """For each k of CALLS: the average over images of L_k from DRAWS log-weights per image, and
    the standard error of the difference between it and the average of CALLS[k] calls of the
    submission's iwae_bound on the same images; and under "lowest" the smallest log-weight drawn."""
    latent = model.latent_dim
    log_w = torch.cat(
        [log_weights(model, x, torch.randn(500, len(x), latent, generator=generator)) for _ in range(DRAWS // 500)]
    ).double()
    reference = {}
    for k, calls in CALLS.items():
        groups = DRAWS // k
        estimates = torch.logsumexp(log_w[: groups * k].reshape(groups, k, len(x)), dim=1) - math.log(k)
        spread = estimates.var(dim=0).sum().item() / len(x) ** 2  # the variance of one call's average
        reference[str(k)] = [estimates.mean().item(), math.sqrt(spread * (1 / calls + 1 / groups))]
    reference["lowest"] = log_w.min().item()
    return reference


def clear_gains(reference: dict) -> bool:
    """Whether the bound rises from each k of CALLS to the next by more than 2 * SIGMAS standard
    errors of the difference of two averages: then half the rise tells a bound that rises from one
    that does not."""
    ks = [str(k) for k in CALLS]
    for low, high in itertools.pairwise(ks):
        (a, a_error), (b, b_error) = reference[low], reference[high]
        if not b - a > 2 * SIGMAS * math.hypot(a_error, b_error):
            return False
    return True


def _table(rng: np.random.Generator) -> tuple[list, list, list, float]:
    """A rate-distortion table of five models, each trained with its own beta, shuffled: the rate
    falls and the distortion rises with beta, and the best ELBO at beta = 1 is neither the lowest
    distortion, nor the lowest rate, nor the lowest of each model's own objective D + beta R."""
    choices = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 10.0])
    while True:
        betas = np.sort(rng.choice(choices, size=5, replace=False))
        rates = np.sort(rng.uniform(0.05, 25.0, size=5))[::-1]
        win = int(rng.integers(1, 4))
        totals = 20.0 + rng.uniform(0.0, 5.0) + rng.uniform(0.3, 4.0, size=5)  # -ELBO of each model
        totals[win] = totals.min() - rng.uniform(0.3, 2.0)  # the best, by at least 0.3 nats
        distortions = totals - rates
        wrong = {int(np.argmin(distortions)), int(np.argmin(rates)), int(np.argmin(distortions + betas * rates))}
        if np.all(np.diff(distortions) > 0.2) and np.all(distortions > 1.0) and win not in wrong:
            order = rng.permutation(5)
            return betas[order].tolist(), rates[order].tolist(), distortions[order].tolist(), float(betas[win])


def draw(rng: np.random.Generator) -> dict:
    """Inputs for one submission, and (under names starting with _) what the checks expect."""
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    specs = {name: _spec(rng, name) for name in MODELS}
    model_a, model_b = build(specs["model_a"]), build(specs["model_b"])
    # A model_c whose bound rises clearly with k, and whose log-weights stay far above -103 nats,
    # where exp underflows in float32: the bound's checks grade the bound, and only log_mean_exp's
    # own check grades its stability.
    for _ in range(20):
        model_c = build(specs["model_c"])
        with torch.no_grad():
            z = torch.randn(N_IMAGES, model_c.latent_dim, generator=generator)
            x_c = torch.bernoulli(model_c.decode(z), generator=generator)
        reference = iwae_reference(model_c, x_c, generator)
        if clear_gains(reference) and reference["lowest"] > LOWEST:
            break
        specs["model_c"] = _spec(rng, "model_c")
    x_a = (rng.random((6, 20)) < 0.4).astype(float)
    eps = {
        "eps_one": rng.normal(size=(1, 6, 3)),
        "eps_k": rng.normal(size=(5, 6, 3)),
        "eps_prior": rng.normal(size=(4, 6, 3)),
        "eps_rd": rng.normal(size=(6, 3)),
    }
    x_t = torch.tensor(x_a, dtype=torch.float32)
    t = {name: torch.tensor(value, dtype=torch.float32) for name, value in eps.items()}
    rate, distortion = rate_distortion(model_a, x_t, t["eps_rd"])
    betas = [float(rng.uniform(0.05, 0.5)), 1.0, float(rng.uniform(2.0, 20.0))]
    k_equal = int(rng.integers(2, 40))
    encoder = rng.normal(-20.0, 3.0, size=(2, 50))
    refined = encoder + np.abs(rng.normal(0.5, 0.3, size=(2, 50)))
    log_px = refined + np.abs(rng.normal(0.2, 0.1, size=(2, 50)))
    gaps = [[lp.tolist(), r.tolist(), e.tolist()] for lp, r, e in zip(log_px, refined, encoder)]
    tables = [_table(rng) for _ in range(3)]
    return {
        **specs,
        **{name: value.tolist() for name, value in eps.items()},
        "x_a": x_a.tolist(),
        "x_c": x_c.tolist(),
        "calls": {str(k): calls for k, calls in CALLS.items()},
        "betas": betas,
        "tables": [t_[:3] for t_ in tables],
        "lme_random": (rng.normal(size=(7, 5)) * 4 - 20).tolist(),
        "lme_one": rng.normal(size=(1, 5)).tolist(),
        "lme_base": rng.normal(size=(6, 4)).tolist(),
        "lme_up": float(rng.uniform(800.0, 1200.0)),
        "lme_down": float(-rng.uniform(2500.0, 4000.0)),
        "lme_equal": [float(rng.uniform(-50.0, 50.0)), k_equal],
        "gaps": [*gaps, [[-10.0, -12.0], [-11.0, -13.0], [-12.0, -15.0]]],
        "_lw_one": log_weights(model_a, x_t, t["eps_one"]).double().numpy().tolist(),
        "_lw_k": log_weights(model_a, x_t, t["eps_k"]).double().numpy().tolist(),
        "_lw_prior": log_weights(model_b, x_t, t["eps_prior"]).double().numpy().tolist(),
        "_rate": rate.tolist(),
        "_distortion": distortion.tolist(),
        "_best": [t_[3] for t_ in tables],
        "_iwae": reference,
    }


PROBE = """\
import torch as _torch
import vae as _vae
def _model(spec):
    m = _vae.VAE(spec["input_dim"], spec["hidden"], spec["latent"], prior=spec["prior"], n_components=spec["components"])
    with _torch.no_grad():
        for p, w in zip(m.parameters(), spec["weights"]):
            p.copy_(_torch.tensor(w, dtype=_torch.float32))
    return m.eval()
_T = lambda name, dtype=_torch.float32: _torch.tensor(INPUTS[name], dtype=dtype)
_A, _B, _C = _model(INPUTS["model_a"]), _model(INPUTS["model_b"]), _model(INPUTS["model_c"])
# %%
record("rd", lambda: rate_distortion(_A, _T("x_a"), _T("eps_rd")))
record("beta_losses", lambda: [beta_loss(_A, _T("x_a"), b, _T("eps_rd")) for b in INPUTS["betas"]])
record("best", lambda: [best_beta(*[list(c) for c in table]) for table in INPUTS["tables"]])
# %%
_D = _torch.float64
record("lme_random", lambda: log_mean_exp(_T("lme_random", _D)))
record("lme_one", lambda: log_mean_exp(_T("lme_one", _D)))
record("lme_base", lambda: log_mean_exp(_T("lme_base", _D)))
record("lme_up", lambda: log_mean_exp(_T("lme_base", _D) + INPUTS["lme_up"]))
record("lme_down", lambda: log_mean_exp(_T("lme_base", _D) + INPUTS["lme_down"]))
record("lme_equal", lambda: log_mean_exp(_torch.full((INPUTS["lme_equal"][1], 3), INPUTS["lme_equal"][0], dtype=_D)))
record("lme_equal_one", lambda: log_mean_exp(_torch.full((1, 3), INPUTS["lme_equal"][0], dtype=_D)))
# %%
record("lw_one", lambda: log_weights(_A, _T("x_a"), _T("eps_one")))
record("lw_k", lambda: log_weights(_A, _T("x_a"), _T("eps_k")))
record("lw_prior", lambda: log_weights(_B, _T("x_a"), _T("eps_prior")))
# %%
def _iw(k):
    x = _T("x_c")
    return [iwae_bound(_C, x, k) for _ in range(INPUTS["calls"][str(k)])]
record("iw_1", lambda: _iw(1))
record("iw_5", lambda: _iw(5))
record("iw_30", lambda: _iw(30))
# %%
record("gaps", lambda: [split_gap(*[_torch.tensor(v) for v in triple]) for triple in INPUTS["gaps"]])
"""


# ---------------------------------------------------------------------------------------------
# beta_vae


def _rd(got) -> tuple[np.ndarray, np.ndarray]:
    assert isinstance(got, list) and len(got) == 2, "rate_distortion should return a pair (rate, distortion)"
    return array(got[0], (6,)), array(got[1], (6,))


def _rate(i, got):
    close(_rd(got["rd"])[0], i["_rate"], rtol=1e-4, atol=1e-4)


def _distortion(i, got):
    close(_rd(got["rd"])[1], i["_distortion"], rtol=1e-4, atol=1e-3)


def _beta_weighs_the_rate(i, got):
    rate, distortion = np.asarray(i["_rate"]), np.asarray(i["_distortion"])
    values = got["beta_losses"]
    assert isinstance(values, list) and len(values) == 3, "beta_loss gave no value for some beta"
    for beta, value in zip(i["betas"], values):
        close(array(value, ()), np.mean(distortion + beta * rate), rtol=1e-4, atol=1e-3)


def _honest_choice(i, got):
    close(array(got["best"], (3,)), i["_best"], rtol=1e-6, atol=0)


# ---------------------------------------------------------------------------------------------
# log_mean_exp


def _lme_random(i, got):
    values = np.asarray(i["lme_random"])
    top = values.max(axis=0)
    expected = top + np.log(np.exp(values - top).mean(axis=0))
    close(got["lme_random"], expected, rtol=1e-6, atol=1e-5)
    close(got["lme_one"], np.asarray(i["lme_one"])[0], rtol=1e-6, atol=1e-6)


def _lme_stable(i, got):
    base = array(got["lme_base"], (4,))
    for name in ("lme_up", "lme_down"):
        shifted = array(got[name], (4,))
        if not np.all(np.isfinite(shifted)):
            raise Mismatch(f"finite values for log-weights near {i[name]:.0f}", shifted)
        close(shifted - i[name], base, rtol=0, atol=2e-3)


def _lme_equal(i, got):
    value = i["lme_equal"][0]
    close(got["lme_equal"], np.full(3, value), rtol=1e-6, atol=1e-5)
    close(got["lme_equal_one"], np.full(3, value), rtol=1e-6, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# log_weights


def _lw(name, shape):
    def test(i, got):
        close(array(got[name], shape), i["_" + name], rtol=1e-4, atol=2e-3)

    return test


# ---------------------------------------------------------------------------------------------
# iwae_bound


def _averages(i, got) -> dict[int, float]:
    averages = {}
    for k, calls in CALLS.items():
        values = array(got[f"iw_{k}"], (calls, len(i["x_c"])))
        if not np.all(np.isfinite(values)):
            raise AssertionError(f"iwae_bound(model, x, {k}) gave inf or nan")
        averages[k] = float(values.mean())
    return averages


def _near(i, got, k):
    average = _averages(i, got)[k]
    expected, error = i["_iwae"][str(k)]
    tolerance = SIGMAS * error + 0.01
    if abs(average - expected) > tolerance:
        raise Mismatch(f"an average of {expected:.3f} nats, within {tolerance:.2f}", average)


def _tighter(i, got):
    averages = _averages(i, got)
    reference = {k: i["_iwae"][str(k)][0] for k in CALLS}
    ks = list(CALLS)
    for low, high in itertools.pairwise(ks):
        gain = averages[high] - averages[low]
        if not gain > 0.5 * (reference[high] - reference[low]):
            raise Mismatch(
                f"the average to rise by about {reference[high] - reference[low]:.2f} nats from k = {low} to k = {high}",
                gain,
            )
    calls = array(got["iw_5"])
    assert not np.allclose(calls[0], calls[1]), "two calls gave the same values: draw fresh noise on every call"


# ---------------------------------------------------------------------------------------------
# gaps


def _gap_parts(i, got) -> list[np.ndarray]:
    values = got["gaps"]
    assert isinstance(values, list) and len(values) == len(i["gaps"]), "split_gap gave no value for some input"
    return [array(v, (2,)) for v in values]


def _expected_gaps(i) -> list[tuple[float, float]]:
    out = []
    for log_px, refined, encoder in i["gaps"]:
        log_px, refined, encoder = (np.asarray(v, dtype=np.float32).astype(float) for v in (log_px, refined, encoder))
        out.append((float(np.mean(log_px - refined)), float(np.mean(refined - encoder))))
    return out


def _amortisation(i, got):
    for got_pair, (_, amortisation) in zip(_gap_parts(i, got), _expected_gaps(i)):
        close(got_pair[1], amortisation, rtol=1e-5, atol=1e-4)


def _approximation(i, got):
    for got_pair, (approximation, _) in zip(_gap_parts(i, got), _expected_gaps(i)):
        close(got_pair[0], approximation, rtol=1e-5, atol=1e-4)


CHECKS = [
    Check(
        "beta_vae",
        "rate",
        1,
        "The rate of each image should be the closed-form KL(q(z|x) || N(0, I)) = 1/2 sum(mean^2 + exp(logvar) - logvar - 1) over the latent dimensions, in nats, shape [B].",
        _rate,
    ),
    Check(
        "beta_vae",
        "distortion",
        1,
        "The distortion of each image should be -log p(x|z), a positive number of nats, at the code z = mean + exp(logvar / 2) * eps built from the given noise, shape [B].",
        _distortion,
    ),
    Check(
        "beta_vae",
        "beta weighs the rate",
        1,
        "beta_loss should be the batch average of D + beta R for every beta, not only beta = 1: beta multiplies the rate (the KL term), never the distortion.",
        _beta_weighs_the_rate,
    ),
    Check(
        "beta_vae",
        "the honest choice",
        1,
        "best_beta should return the beta (the value, not its position) whose model has the largest ELBO at beta = 1, that is the smallest D + R, whatever beta each model was trained with and in whatever order the table lists them.",
        _honest_choice,
    ),
    Check(
        "log_mean_exp",
        "random log-weights",
        1,
        "log_mean_exp(log_w) for log_w of shape [k, B] should be log((1/k) sum_i exp(log_w[i])), shape [B], and give back the row itself when k = 1.",
        _lme_random,
    ),
    Check(
        "log_mean_exp",
        "no overflow",
        1,
        "Adding a constant c to every log-weight should add c to log_mean_exp, with no inf or nan even for c near +1000 or -3000, where exp overflows or underflows: subtract the largest log-weight first, or use torch.logsumexp.",
        _lme_stable,
    ),
    Check(
        "log_mean_exp",
        "the mean, not the sum",
        1,
        "The log-mean-exp of k equal log-weights c is c itself, for any k: subtract log k from the log-sum-exp.",
        _lme_equal,
    ),
    Check(
        "log_weights",
        "one draw",
        1,
        "With noise eps of shape [1, B, L], log_weights should give shape [1, B]: log p(x|z) + log p(z) - log q(z|x) at z = mean + exp(logvar / 2) * eps, in nats.",
        _lw("lw_one", (1, 6)),
    ),
    Check(
        "log_weights",
        "k draws",
        1,
        "With noise eps of shape [k, B, L], log_weights should give shape [k, B], one log-weight per draw and image; check the sign of log q(z|x) and that log p(z) and log q(z|x) are summed over the latent dimensions.",
        _lw("lw_k", (5, 6)),
    ),
    Check(
        "log_weights",
        "a learned prior",
        1,
        "For a model with a learned prior (a mixture of Gaussians), log p(z) should come from model.prior().log_prob(z), not from the formula of N(0, I).",
        _lw("lw_prior", (4, 6)),
    ),
    Check(
        "iwae_bound",
        "k = 1 is the ELBO",
        1,
        "iwae_bound(model, x, 1) should give one value per image, shape [B], whose average over many images and calls is the ELBO: with k = 1 the bound is the log of a single importance weight.",
        lambda i, got: _near(i, got, 1),
    ),
    Check(
        "iwae_bound",
        "k = 30",
        1,
        "Averaged over many images and calls, iwae_bound(model, x, 30) should match the importance-weighted bound L_30: the log of the mean of 30 weights, not the mean of their logs, and not the log of their sum.",
        lambda i, got: _near(i, got, 30),
    ),
    Check(
        "iwae_bound",
        "tighter with k",
        1,
        "The average of iwae_bound should rise from k = 1 to 5 to 30, by about what the bound gains, and each call should draw fresh noise.",
        _tighter,
    ),
    Check(
        "gaps",
        "amortisation",
        1,
        "The amortisation gap is the average of refined_elbo - encoder_elbo: what fitting q(z|x) to each image gains over the encoder, at least 0 when the refinement helps.",
        _amortisation,
    ),
    Check(
        "gaps",
        "approximation",
        1,
        "The approximation gap is the average of log_px - refined_elbo: what even the refined Gaussian q misses of log p(x).",
        _approximation,
    ),
]
