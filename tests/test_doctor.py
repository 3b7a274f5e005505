"""The loss doctor: its probes' known terms, its fit, and a catalogue of losses from the wild.

Each wrong loss below is a mistake seen in a public thread or source (cited beside it), written
against the classroom interface ``loss(output, x)``; each must get its verdict. Each correct loss
is the per-example negative ELBO written another way; none may be flagged.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vae
from vae import loss_doctor as doctor
from vae.objectives import gaussian_kl

B, D, L, SIGMA = 128, 64, 8, 0.1


@pytest.fixture(scope="module")
def digits():
    return vae.load_digits()


@pytest.fixture(scope="module")
def binary(digits):
    """Probes on 128 binarised digits, for a Bernoulli decoder (as in assignment 2)."""
    return doctor.make_probes((digits.train.x[:B] > 0.5).float(), L)


@pytest.fixture(scope="module")
def grey(digits):
    """Probes on 128 grey-level digits in [0, 1], for a Bernoulli decoder."""
    return doctor.make_probes(digits.train.x[:B], L)


@pytest.fixture(scope="module")
def gaussian(digits):
    """Probes on 128 grey-level digits for a Gaussian decoder with σ = 0.1 (as in chapter 7)."""
    return doctor.make_probes(digits.train.x[:B], L, likelihood="gaussian", sigma=SIGMA)


def diagnose(loss, probes):
    return doctor.diagnose_values(probes, doctor.evaluate(loss, probes))


# The pieces learners write, per example [B].
def bce(o, x):
    return F.binary_cross_entropy(o["imgs"], x, reduction="none").sum(-1)


def kl(o):
    return 0.5 * (o["mean"] ** 2 + o["logvar"].exp() - o["logvar"] - 1).sum(-1)


def sse(o, x):
    return ((o["imgs"] - x) ** 2).sum(-1)


def seed_loss_kl_wo_e(o):
    """The seed notes' `loss_KL_wo_E`: it returns −KL."""
    return -0.5 * (o["mean"] ** 2 + o["logvar"].exp() - 1.0 - o["logvar"]).sum(-1)


# --- The probes' known terms ---------------------------------------------------------------------


def test_probe_terms_are_the_elbo_terms(binary):
    """Column 0 is −log p(x|z) under torch's Bernoulli, the three KL parts add up to the closed-form KL,
    and the Monte Carlo column is log q(z|x) − log p(z) at the probe's z, all summed over the batch."""
    for i in (0, 17, 47):
        o, x, terms = binary.outputs[i], binary.xs[i], binary.terms[i]
        rec = -Bernoulli(probs=o["imgs"].double()).log_prob(x.double()).sum()
        assert terms[0].item() == pytest.approx(rec.item(), rel=1e-9)
        kl_sum = gaussian_kl(o["mean"].double(), o["logvar"].double()).sum()
        assert terms[2:5].sum().item() == pytest.approx(kl_sum.item(), rel=1e-9)
        q = Normal(o["mean"].double(), (0.5 * o["logvar"].double()).exp())
        at_z = (q.log_prob(o["z"].double()) - Normal(0.0, 1.0).log_prob(o["z"].double())).sum()
        assert terms[7].item() == pytest.approx(at_z.item(), rel=1e-9)
        assert terms[1].item() == pytest.approx(sse(o, x).sum().item(), rel=1e-5)


def test_gaussian_probe_term_is_the_gaussian_log_likelihood(gaussian):
    o, x = gaussian.outputs[3], gaussian.xs[3]
    rec = -Normal(o["imgs"].double(), SIGMA).log_prob(x.double()).sum()
    assert gaussian.terms[3, 0].item() == pytest.approx(rec.item(), rel=1e-9)


def test_the_true_loss_is_finite_at_every_boundary_probe(binary):
    """The boundary probes test for NaN and inf only where the negative ELBO itself is finite."""
    assert binary.names[doctor.N_FIT:] == list(doctor.BOUNDARIES)
    for o, x in zip(binary.outputs[doctor.N_FIT:], binary.xs[doctor.N_FIT:]):
        value = -(Bernoulli(probs=o["imgs"]).log_prob(x).sum(-1) - gaussian_kl(o["mean"], o["logvar"])).mean()
        assert math.isfinite(value.item())
    assert binary.outputs[doctor.N_FIT]["imgs"].eq(binary.xs[doctor.N_FIT]).all()  # binary x: every pixel at 0 or 1


def test_fit_recovers_known_coefficients(binary):
    """Values built from the terms with known coefficients come back exactly, with no learner code."""
    coef = torch.tensor([0.3, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 5.0], dtype=torch.float64)
    d = doctor.diagnose_values(binary, (binary.terms @ coef).tolist() + [0.0] * len(doctor.BOUNDARIES))
    assert (d.a, d.b, d.c) == pytest.approx((0.3, 2.0, 5.0), rel=1e-6)
    assert d.misfit < 1e-9 and d.scale == pytest.approx(0.3 * B)
    assert d.kl_weight == pytest.approx(2.0 / 0.3)


def test_the_entropy_floor_of_grey_pixels(grey, binary):
    """Σ H(x_i): the cross-entropy of a perfect reconstruction, imgs = x, averaged over the batch."""
    x = grey.xs[0].clamp(1e-6, 1 - 1e-6)
    floor = F.binary_cross_entropy(x, x, reduction="sum") / len(x)
    assert grey.entropy == pytest.approx(floor.item(), rel=1e-3) and grey.entropy > 1
    assert binary.entropy == 0


# --- Correct losses, written in different ways: none flagged -------------------------------------


CORRECT_BERNOULLI = {
    # assignment 2's solution: torch.distributions for p(x|z), the closed-form KL by hand
    "Bernoulli log_prob minus the KL": lambda o, x: -(Bernoulli(probs=o["imgs"]).log_prob(x).sum(-1) - kl(o)).mean(),
    # pytorch/examples' loss (sums over everything) divided by the batch size afterwards
    "sums, then divided by the batch": lambda o, x: (
        F.binary_cross_entropy(o["imgs"], x, reduction="sum") - 0.5 * torch.sum(
            1 + o["logvar"] - o["mean"].pow(2) - o["logvar"].exp())) / len(x),
    # every term from torch.distributions, the KL included
    "torch.distributions throughout": lambda o, x: (
        -Independent(Bernoulli(probs=o["imgs"]), 1).log_prob(x)
        + kl_divergence(Independent(Normal(o["mean"], (0.5 * o["logvar"]).exp()), 1),
                        Independent(Normal(torch.zeros_like(o["mean"]), torch.ones_like(o["mean"])), 1))).mean(),
    # logits recovered from the probabilities, and the KL from the standard deviation
    "logits and the standard deviation": lambda o, x: (
        F.binary_cross_entropy_with_logits(torch.logit(o["imgs"], eps=1e-6), x, reduction="none").sum(1)
        + 0.5 * ((0.5 * o["logvar"]).exp().pow(2) + o["mean"].pow(2) - 2 * (0.5 * o["logvar"]) - 1).sum(1)).mean(),
    # a Monte Carlo KL at the sampled code: log q(z|x) − log p(z)
    "Monte Carlo KL at z": lambda o, x: (
        bce(o, x) + (Normal(o["mean"], (0.5 * o["logvar"]).exp()).log_prob(o["z"])
                     - Normal(0.0, 1.0).log_prob(o["z"])).sum(-1)).mean(),
    # hand-written logarithms kept off log 0 by a small constant, as many tutorials do
    "logs of p + 1e-8": lambda o, x: (
        -(x * (o["imgs"] + 1e-8).log() + (1 - x) * (1 - o["imgs"] + 1e-8).log()).sum(1) + kl(o)).mean(),
    # the library's own KL and clamped hand-written logarithms
    "clamped logs and vae.gaussian_kl": lambda o, x: (
        -(x * o["imgs"].clamp(1e-7, 1).log() + (1 - x) * (1 - o["imgs"]).clamp(1e-7, 1).log()).sum(1)
        + vae.gaussian_kl(o["mean"], o["logvar"])).mean(),
}

CORRECT_GAUSSIAN = {
    "Normal log_prob minus the KL": lambda o, x: -(Normal(o["imgs"], SIGMA).log_prob(x).sum(-1) - kl(o)).mean(),
    "squared error with its scale and constant": lambda o, x: (
        sse(o, x) / (2 * SIGMA**2) + x.shape[1] / 2 * math.log(2 * math.pi * SIGMA**2) + kl(o)).mean(),
    "gaussian_nll_loss with full=True": lambda o, x: (
        F.gaussian_nll_loss(o["imgs"], x, torch.full_like(x, SIGMA**2), full=True, reduction="sum") / len(x)
        + kl(o).mean()),
}


@pytest.mark.parametrize("name", CORRECT_BERNOULLI)
def test_correct_bernoulli_losses_are_not_flagged(binary, name):
    d = diagnose(CORRECT_BERNOULLI[name], binary)
    assert d.correct, str(d)
    assert (d.a * B, d.b * B) == pytest.approx((1, 1), rel=1e-4) and abs(d.c) < 1e-3
    assert str(d).startswith("Loss doctor: correct.")


@pytest.mark.parametrize("name", CORRECT_GAUSSIAN)
def test_correct_gaussian_losses_are_not_flagged(gaussian, name):
    d = diagnose(CORRECT_GAUSSIAN[name], gaussian)
    assert d.correct, str(d)
    assert (d.a * B, d.b * B) == pytest.approx((1, 1), rel=1e-4)


# --- The catalogue of mistakes: (loss, the probes it is written for, the verdict) ---------------

WRONG = {
    # The seed notes print the KL as ½Σ[log σ² + σ² + μ² − 1]: the log term's sign is wrong.
    "seed: sign of the log term": (
        lambda o, x: (bce(o, x) + 0.5 * (o["logvar"] + o["logvar"].exp() + o["mean"] ** 2 - 1).sum(-1)).mean(),
        "binary", "kl-log-sign"),
    # The seed notes' `loss_KL_wo_E` returns −KL; added to the reconstruction as a KL it flips the sign.
    "seed: a function that returns −KL": (
        lambda o, x: (bce(o, x) + seed_loss_kl_wo_e(o)).mean(), "binary", "kl-sign"),
    # pytorch/examples #824: "loss = 0.5 * torch.sum(...) + BCE", Kingma and Welling's −KL taken as the KL.
    "pytorch/examples #824: ½Σ(1 + log σ² − μ² − σ²) added": (
        lambda o, x: F.binary_cross_entropy(o["imgs"], x, reduction="sum")
        + 0.5 * torch.sum(1 + o["logvar"] - o["mean"].pow(2) - o["logvar"].exp()), "binary", "kl-sign"),
    # pytorch/examples #298 ("Reversed sign?"): a minus sign in front of the whole loss, to maximise.
    "pytorch/examples #298: the whole loss negated": (
        lambda o, x: -(bce(o, x) + kl(o)).mean(), "binary", "negated"),
    # pytorch/examples #290 and #294: the 2018 example averaged BCE over batch and pixels and divided
    # the KL by batch_size * 784 to match.
    "pytorch/examples #290, #294: both terms per pixel": (
        lambda o, x: F.binary_cross_entropy(o["imgs"], x) + kl(o).sum() / (len(x) * x.shape[1]),
        "binary", "pixel-mean"),
    # pytorch/examples #652 ("why not divide by batch size?"): today's example sums over the batch.
    "pytorch/examples #652: summed over the batch": (
        lambda o, x: F.binary_cross_entropy(o["imgs"], x, reduction="sum") + kl(o).sum(), "binary", "batch-sum"),
    # Keras #6015 and keras-team/keras PR #3383: binary_crossentropy averages over pixels, the KL is
    # summed over latent dimensions, so the KL weighs D times too much.
    "Keras #6015: reconstruction averaged over pixels": (
        lambda o, x: (bce(o, x) / x.shape[1] + kl(o)).mean(), "binary", "kl-weight"),
    # Keras #6015, the blog's version: both averaged, over pixels and over latent dimensions.
    "Keras #6015 (blog): pixel mean and latent mean": (
        lambda o, x: (bce(o, x) / x.shape[1] + kl(o) / o["mean"].shape[1]).mean(), "binary", "kl-weight"),
    # y0ast/VAE-Torch #11 and pytorch/examples #234: BCE with size averaging, the KL summed over the batch.
    "VAE-Torch #11: sizeAverage BCE, summed KL": (
        lambda o, x: F.binary_cross_entropy(o["imgs"], x) + kl(o).sum(), "binary", "kl-weight"),
    # podgorskiy/VAE #1: the KL averaged over latent dimensions, torch.mean(torch.mean(...)).
    "podgorskiy/VAE #1: KL averaged over latent dimensions": (
        lambda o, x: bce(o, x).mean() - 0.5 * torch.mean(torch.mean(
            1 + o["logvar"] - o["mean"].pow(2) - o["logvar"].exp(), 1)), "binary", "kl-weight"),
    # AntixK/PyTorch-VAE #11, #40: kld_weight = batch size / number of training images (here 1000).
    "PyTorch-VAE #11: kld_weight = batch / N": (
        lambda o, x: (bce(o, x) + len(x) / 1000 * kl(o)).mean(), "binary", "kl-weight"),
    # AntixK/PyTorch-VAE #56: F.mse_loss (a mean over pixels, no σ) plus 0.00025 times the KL.
    "PyTorch-VAE #56: mse_loss + 0.00025 KL": (
        lambda o, x: F.mse_loss(o["imgs"], x) + 0.00025 * kl(o).mean(), "gaussian", "kl-weight"),
    # HiroIshida/mohou PR #199 ("fix: enable vae kld loss"): the KL term was switched off.
    "mohou #199: no KL": (lambda o, x: bce(o, x).mean(), "binary", "kl-missing"),
    # pytorch/examples #460: BCE on MNIST's grey levels, which a Bernoulli cannot score.
    "pytorch/examples #460: BCE on grey pixels": (
        lambda o, x: (bce(o, x) + kl(o)).mean(), "grey", "bce-grey"),
    # L1aoXingyu/pytorch-beginner #34 (a variable called BCE holds an MSE) and yunjey/pytorch-tutorial
    # #104 ("it does not matter if you replace BCE with MSE"): squared error for a Bernoulli decoder.
    "pytorch-beginner #34: MSE for a Bernoulli decoder": (
        lambda o, x: (sse(o, x) + kl(o)).mean(), "binary", "rec-not-likelihood"),
    # Lightning-bolts #177 and nadavbh12/VQ-VAE #16: binary cross-entropy for real-valued images.
    "Lightning-bolts #177: BCE for a Gaussian decoder": (
        lambda o, x: (bce(o, x) + kl(o)).mean(), "gaussian", "rec-not-likelihood"),
    # The seed notes: "the reconstruction loss is just MSE", a Gaussian without its 1/(2σ²).
    "seed: MSE as the reconstruction": (lambda o, x: (sse(o, x) + kl(o)).mean(), "gaussian", "rec-sigma"),
    # torch's gaussian_nll_loss leaves out ½ log 2π per pixel unless full=True (its documentation).
    "gaussian_nll_loss without full=True": (
        lambda o, x: F.gaussian_nll_loss(o["imgs"], x, torch.full_like(x, SIGMA**2), reduction="sum") / len(x)
        + kl(o).mean(), "gaussian", "offset"),
    # FluxML/model-zoo PR #76: log σ written where log σ² (2 log σ) belongs.
    "FluxML model-zoo #76: log σ for log σ²": (
        lambda o, x: (bce(o, x) - 0.5 * (1 + torch.log((0.5 * o["logvar"]).exp()) - o["mean"] ** 2
                                          - o["logvar"].exp()).sum(-1)).mean(), "binary", "kl-log-scale"),
    # DaehanKim/vgae_pytorch #2: exp(logstd), the standard deviation, where the variance belongs.
    "vgae_pytorch #2: σ where σ² belongs": (
        lambda o, x: (bce(o, x) - 0.5 * (1 + o["logvar"] - o["mean"] ** 2 - (0.5 * o["logvar"]).exp()).sum(-1)).mean(),
        "binary", "kl-variance"),
    # keras-team/keras PRs #3220 and #3300: z_log_std and z_log_var confused, the variance as exp(2 · logvar).
    "Keras #3220: logvar read as log σ": (
        lambda o, x: (bce(o, x) - 0.5 * (1 + 2 * o["logvar"] - o["mean"] ** 2
                                          - (2 * o["logvar"]).exp()).sum(-1)).mean(),
        "binary", "kl-variance"),
    # hwalsuklee/tensorflow-mnist-VAE #4 ("Nan loss", from log(0)): cross-entropy written by hand.
    "tensorflow-mnist-VAE #4: hand-written log of 0": (
        lambda o, x: (-(x * o["imgs"].log() + (1 - x) * (1 - o["imgs"]).log()).sum(-1) + kl(o)).mean(),
        "binary", "nan-probability"),
}


@pytest.mark.parametrize("name", WRONG)
def test_catalogue_of_mistakes(binary, grey, gaussian, name):
    loss, kind, verdict = WRONG[name]
    d = diagnose(loss, {"binary": binary, "grey": grey, "gaussian": gaussian}[kind])
    assert not d.correct
    assert verdict in d.codes, str(d)
    assert "Fix:" in str(d)


def test_the_catalogue_is_large_and_varied():
    assert len(WRONG) >= 12 and len(CORRECT_BERNOULLI) + len(CORRECT_GAUSSIAN) >= 5
    assert len({verdict for _, _, verdict in WRONG.values()}) >= 12


def test_fitted_numbers_of_three_mistakes(binary, gaussian):
    """The fit reads the weights off exactly: the KL's sign, the pixel averaging, the Gaussian's σ."""
    d = diagnose(WRONG["seed: a function that returns −KL"][0], binary)
    assert d.kl_weight == pytest.approx(-1, rel=1e-4) and d.scale == pytest.approx(1, rel=1e-4)
    d = diagnose(WRONG["Keras #6015: reconstruction averaged over pixels"][0], binary)
    assert d.kl_weight == pytest.approx(D, rel=1e-4) and d.codes == ("kl-weight",)
    d = diagnose(WRONG["seed: MSE as the reconstruction"][0], gaussian)
    assert d.kl_weight == pytest.approx(1 / (2 * SIGMA**2), rel=1e-4)
    assert d.codes == ("rec-sigma", "offset")  # the slope changes what is learned; the constant only the value
    assert [f.changes_gradient for f in d.findings] == [True, False]
    assert d.c / d.a / B == pytest.approx(-D / 2 * math.log(2 * math.pi * SIGMA**2), rel=1e-4)


def test_loss_that_is_nan_on_ordinary_outputs(binary):
    d = diagnose(lambda o, x: (bce(o, x) + torch.log(o["logvar"]).sum(-1)).mean(), binary)
    assert d.codes[0] == "nan"


def test_constant_and_unexplained_losses(binary):
    assert diagnose(lambda o, x: torch.tensor(3.0), binary).codes == ("constant",)
    d = diagnose(lambda o, x: (bce(o, x) + kl(o) + (o["imgs"] - 0.5).abs().sum(-1)).mean(), binary)
    assert d.codes == ("unexplained",) and d.misfit > doctor.TOLERANCE


# --- The public entry points ----------------------------------------------------------------------


def test_diagnose_loss_on_a_library_model(digits):
    model = vae.VAE(64, [32], latent_dim=4)
    x = (digits.train.x[:32] > 0.5).float()
    d = vae.diagnose_loss(lambda o, x: (bce(o, x) + kl(o)).mean(), model, x)
    assert d.correct and d.batch_size == 32
    d = vae.diagnose_loss(lambda o, x: (bce(o, x) + kl(o)).mean(), vae.VAE(64, [32], 4, likelihood="gaussian"), x)
    assert "rec-not-likelihood" in d.codes


def test_bad_input_is_refused(digits, binary):
    x = (digits.train.x[:8] > 0.5).float()
    with pytest.raises(ValueError, match="categorical"):
        doctor.make_probes(x, 4, likelihood="categorical")
    with pytest.raises(ValueError, match="at least 2"):
        doctor.make_probes(x[:1], 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        doctor.make_probes(x + 1, 4)
    with pytest.raises(TypeError, match="one number"):
        doctor.evaluate(lambda o, x: bce(o, x), binary)  # per-example, not reduced
    with pytest.raises(TypeError, match="function"):
        doctor.evaluate("loss", binary)
    with pytest.raises(ValueError, match="one number per probe"):
        doctor.diagnose_values(binary, [0.0])
    with pytest.raises(ValueError, match="fixed"):
        vae.diagnose_loss(lambda o, x: 0.0, vae.VAE(64, [8], 2, likelihood="gaussian", learn_sigma=True), x)
    with pytest.raises(TypeError, match="vae.VAE"):
        vae.diagnose_loss(lambda o, x: 0.0, vae.Autoencoder(64, [8]), x)


def test_the_loss_cannot_change_the_probes(binary):
    before = binary.outputs[0]["imgs"].clone()
    doctor.evaluate(lambda o, x: o["imgs"].mul_(0).sum() + x.mul_(0).sum(), binary)
    assert torch.equal(binary.outputs[0]["imgs"], before) and binary.xs[0].sum() > 0
