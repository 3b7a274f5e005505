"""The loss doctor: its probes' known terms, its fit, and a catalogue of losses from the wild.

Each wrong loss below is a mistake seen in a public thread or source (cited beside it), written
against the classroom interface ``loss(output, x)``; each must get its verdict. Each correct loss
is the per-example negative ELBO written another way; none may be flagged.
"""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vae
from vae import loss_doctor as doctor
from vae.interface import ClassroomVAE
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
    """The whole check, as vae.diagnose_loss makes it: values, the call with gradients, the reading."""
    return doctor.diagnose_values(probes, doctor.evaluate(loss, probes), doctor.check_training(loss, probes))


SIZES = (128, 100, 37)  # every catalogue entry is checked at each of these batch sizes
_PROBES = {}


def probes_for(digits, kind, size):
    """Probes of ``size`` digits: binarised ("binary"), grey ("grey"), or for a Gaussian decoder with σ = 0.1."""
    if (kind, size) not in _PROBES:
        x = digits.train.x[:size]
        _PROBES[kind, size] = {
            "binary": lambda: doctor.make_probes((x > 0.5).float(), L),
            "grey": lambda: doctor.make_probes(x, L),
            "gaussian": lambda: doctor.make_probes(x, L, likelihood="gaussian", sigma=SIGMA),
        }[kind]()
    return _PROBES[kind, size]


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
    for i in (0, 13, doctor.N_FIT + 5):
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
    first = doctor.N_FIT + doctor.N_RESIZED
    assert binary.names[first:] == list(doctor.BOUNDARIES)
    for o, x in zip(binary.outputs[first:], binary.xs[first:]):
        value = -(Bernoulli(probs=o["imgs"]).log_prob(x).sum(-1) - gaussian_kl(o["mean"], o["logvar"])).mean()
        assert math.isfinite(value.item())
    assert binary.outputs[first]["imgs"].eq(binary.xs[first]).all()  # binary x: every pixel at 0 or 1


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


NEW_CORRECT = {  # (loss, probes): the second pass's catalogue, from other sources
    # Keras VAE example (keras.io/examples/generative/vae): mean over the batch of the summed cross-entropy,
    # plus the mean of the summed −½(1 + log σ² − μ² − σ²)
    "Keras VAE example": (lambda o, x: (
        F.binary_cross_entropy(o["imgs"], x, reduction="none").sum(1).mean()
        + (-0.5 * (1 + o["logvar"] - o["mean"].square() - o["logvar"].exp())).sum(1).mean()), "binary"),
    # pytorch/examples vae/main.py: its 4-argument loss_function, adapted to (output, x), divided by the batch
    "pytorch/examples loss_function, adapted and averaged": (
        lambda o, x: pytorch_examples_loss(o["imgs"], x, o["mean"], o["logvar"]) / len(x), "binary"),
    # TensorFlow's CVAE tutorial (tensorflow.org/tutorials/generative/cvae): a one-sample Monte Carlo
    # estimate, log p(x|z) + log p(z) − log q(z|x) at the sampled z, written with log-normal densities
    "TensorFlow CVAE tutorial: Monte Carlo with log-normal pdfs": (lambda o, x: -(
        -bce(o, x) + log_normal_pdf(o["z"], torch.zeros_like(o["z"]), torch.zeros_like(o["z"]))
        - log_normal_pdf(o["z"], o["mean"], o["logvar"])).mean(), "binary"),
    # a course's assignment (Stanford CS236 style): the KL from the log standard deviation
    "KL from log σ = logvar / 2": (lambda o, x: (bce(o, x) + (
        -0.5 * o["logvar"] + 0.5 * (o["logvar"].exp() + o["mean"] ** 2) - 0.5).sum(-1)).mean(), "binary"),
    # a forum answer: cross-entropy with torch.xlogy, which is 0 at 0 · log 0
    "torch.xlogy cross-entropy": (lambda o, x: (
        -(torch.xlogy(x, o["imgs"]) + torch.xlogy(1 - x, 1 - o["imgs"])).sum(-1) + kl(o)).mean(), "binary"),
    # a forum question on DataParallel: the loss returned with shape [1] so replicas can be gathered
    "one-element tensor of shape [1]": (lambda o, x: (bce(o, x) + kl(o)).mean().unsqueeze(0), "binary"),
    # a Gaussian decoder from a tutorial: F.mse_loss summed, scaled by 1/(2σ²), with its constant
    "mse_loss summed with 1/(2σ²) and the constant": (lambda o, x: (
        F.mse_loss(o["imgs"], x, reduction="sum") / (2 * SIGMA**2)
        + x.numel() / 2 * math.log(2 * math.pi * SIGMA**2) + kl(o).sum()) / len(x), "gaussian"),
}


def pytorch_examples_loss(recon_x, x, mu, logvar):
    """pytorch/examples vae/main.py's loss, for 64-pixel digits: summed over the batch."""
    bce_sum = F.binary_cross_entropy(recon_x, x.view(-1, x.shape[1]), reduction="sum")
    return bce_sum - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def log_normal_pdf(sample, mean, logvar):
    return (-0.5 * ((sample - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))).sum(-1)


ALL_CORRECT = ({name: (loss, "binary") for name, loss in CORRECT_BERNOULLI.items()}
               | {name: (loss, "gaussian") for name, loss in CORRECT_GAUSSIAN.items()} | NEW_CORRECT)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ALL_CORRECT)
def test_correct_losses_are_not_flagged_at_any_batch_size(digits, name, size):
    loss, kind = ALL_CORRECT[name]
    d = diagnose(loss, probes_for(digits, kind, size))
    assert d.correct, str(d)
    assert (d.a * size, d.b * size) == pytest.approx((1, 1), rel=1e-4) and abs(d.c) < 1e-3 * size
    assert str(d).startswith("Loss doctor: correct.") and "misfit" not in str(d)


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


NEW_WRONG = {  # the second pass's catalogue: (loss, probes, the verdict)
    # a forum question on reporting bits: the whole loss divided by ln 2
    "bits per example": (lambda o, x: (bce(o, x) + kl(o)).mean() / math.log(2), "binary", "bits"),
    # image-model papers report bits per dimension: the per-example loss divided by D ln 2
    "bits per dimension": (lambda o, x: (bce(o, x) + kl(o)).mean() / (x.shape[1] * math.log(2)), "binary", "bits"),
    # a forum question: −½Σ(1 + log σ² + μ² − σ²), a + where the μ² term needs a −
    "+μ² sign slip": (lambda o, x: (bce(o, x) - 0.5 * (
        1 + o["logvar"] + o["mean"] ** 2 - o["logvar"].exp()).sum(-1)).mean(), "binary", "kl-mu-sign"),
    # a forum question: the cross-entropy summed over the batch (.sum(0)) and then averaged over pixels
    ".sum(0).mean() on the cross-entropy": (lambda o, x: F.binary_cross_entropy(
        o["imgs"], x, reduction="none").sum(0).mean() + kl(o).mean(), "binary", "kl-weight"),
    # a forum question: the loss function returns loss.item(), "to save memory"
    "returns .item()": (lambda o, x: (bce(o, x) + kl(o)).mean().item(), "binary", "not-a-tensor"),
    # a forum question on NaN losses: probabilities clamped in place before the cross-entropy
    "clamp_ on output['imgs']": (lambda o, x: (F.binary_cross_entropy(
        o["imgs"].clamp_(1e-6, 1 - 1e-6), x, reduction="none").sum(-1) + kl(o)).mean(), "binary", "in-place"),
    # a forum question: the variance computed with exp_, which overwrites logvar for the next term
    "exp_ on output['logvar']": (lambda o, x: (bce(o, x) + 0.5 * (
        o["mean"] ** 2 + o["logvar"].exp_() - o["logvar"] - 1).sum(-1)).mean(), "binary", "in-place"),
    # a forum question: the KL added as kld.item(), copied from the logging code
    "KL added as a number": (lambda o, x: bce(o, x).mean() + kl(o).mean().item(), "binary", "detached"),
    # a forum question: the loss rebuilt with torch.tensor(...) to change its dtype
    "rebuilt with torch.tensor": (lambda o, x: torch.tensor((bce(o, x) + kl(o)).mean().item()),
                                  "binary", "no-gradient"),
    # Keras-era code: the sums divided by a fixed BATCH_SIZE = 128 instead of len(x)
    "divided by a fixed 128": (lambda o, x: (bce(o, x) + kl(o)).sum() / 128, "binary", "fixed-batch"),
    # a tutorial: F.binary_cross_entropy's default (a mean over pixels and batch) plus the KL's batch mean
    "default-reduction BCE plus mean KL": (lambda o, x: F.binary_cross_entropy(o["imgs"], x) + kl(o).mean(),
                                           "binary", "kl-weight"),
    # a blog's "KL": an L2 penalty on the means alone
    "KL as ½Σμ² only": (lambda o, x: (bce(o, x) + 0.5 * (o["mean"] ** 2).sum(-1)).mean(), "binary", "kl-form"),
    # a forum question: the −log σ² term forgotten
    "KL without its log term": (lambda o, x: (bce(o, x) + 0.5 * (
        o["mean"] ** 2 + o["logvar"].exp() - 1).sum(-1)).mean(), "binary", "kl-form"),
    # a forum question: pytorch/examples' loss with F.mse_loss in place of BCE, for real-valued images
    "pytorch/examples with mse_loss": (lambda o, x: (F.mse_loss(o["imgs"], x, reduction="sum") + kl(o).sum()),
                                       "gaussian", "rec-sigma"),
    # KL annealing (Bowman et al. 2016) at its first step: β = 0
    "KL annealing at β = 0": (lambda o, x: (bce(o, x) + 0.0 * kl(o)).mean(), "binary", "kl-missing"),
    # a forum question: the reconstruction in bits per dimension, the KL in nats per example
    "bits per dimension for the reconstruction only": (lambda o, x: (
        bce(o, x) / (x.shape[1] * math.log(2)) + kl(o)).mean(), "binary", "kl-weight"),
}
ALL_WRONG = WRONG | NEW_WRONG


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ALL_WRONG)
def test_catalogue_of_mistakes_at_every_batch_size(digits, name, size):
    loss, kind, verdict = ALL_WRONG[name]
    d = diagnose(loss, probes_for(digits, kind, size))
    assert not d.correct
    assert verdict in d.codes, str(d)
    report = str(d)
    assert "Fix:" in report and "misfit nan" not in report
    assert not re.search(r"\d\.\d*(9999|0000)\d|e-\d\d", report), report  # no rounding noise in the words


def test_the_catalogue_is_large_and_varied():
    assert len(NEW_WRONG) >= 15 and len(NEW_CORRECT) >= 5
    assert len(WRONG) >= 12 and len(CORRECT_BERNOULLI) + len(CORRECT_GAUSSIAN) >= 5
    assert len({verdict for _, _, verdict in ALL_WRONG.values()}) >= 20


def test_the_story_is_the_same_at_every_batch_size(digits):
    """The words name how each term is reduced, which holds for every batch size; only numbers may differ."""
    for name in (".sum(0).mean() on the cross-entropy", "divided by a fixed 128", "bits per dimension"):
        loss, kind, _ = NEW_WRONG[name]
        reports = (" ".join(str(diagnose(loss, probes_for(digits, kind, size))).split()) for size in SIZES)
        stories = {re.split(r"so their balance|So the KL", report.split(" 1. ")[1])[0] for report in reports}
        assert len(stories) == 1, stories


def test_plain_words_for_plain_numbers(digits):
    d = diagnose(WRONG["seed: sign of the log term"][0], probes_for(digits, "binary", 128))
    assert "1/128 · rec" in str(d)
    halved = diagnose(lambda o, x: (bce(o, x) + 0.5 * kl(o)).mean(), probes_for(digits, "binary", 100))
    assert "halved" in str(halved) and "half what it does" in str(halved) and "0.4999" not in str(halved)
    only_mu = str(diagnose(NEW_WRONG["KL as ½Σμ² only"][0], probes_for(digits, "binary", 37)))
    assert "is missing" in only_mu and "e-0" not in only_mu  # no noise-level coefficients
    bits = str(diagnose(NEW_WRONG["bits per dimension"][0], probes_for(digits, "binary", 100)))
    assert "bits per dimension" in bits and "len(x)" not in bits


def test_float64_rounding_is_never_a_finding(digits):
    """Large values (a Gaussian with σ = 0.1, summed over the batch) leave no spurious offset."""
    loss = lambda o, x: (F.mse_loss(o["imgs"], x, reduction="sum") / (2 * SIGMA**2)
                         + x.numel() / 2 * math.log(2 * math.pi * SIGMA**2) + kl(o).sum())
    for size in SIZES:
        d = diagnose(loss, probes_for(digits, "gaussian", size))
        assert d.codes == ("batch-sum",), str(d)
        assert d.misfit < 1e-9


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


# --- Errors in the learner's loss come back as the library's own LossError, with what to do ------


def loss_function(recon_x, x, mu, logvar):  # pytorch/examples vae/main.py's signature
    return F.binary_cross_entropy(recon_x, x, reduction="sum") - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def swapped(x, output):  # a forum question: the arguments in the other order
    return (bce(output, x) + kl(output)).mean()


LOSS_ERRORS = {
    # pytorch/examples vae/main.py: four arguments, recognised, and the one-line adapter offered
    "four arguments": (loss_function, [
        "needs 4", 'lambda output, x: loss_function(output["imgs"], x, output["mean"], output["logvar"])']),
    # a forum question: loss(x, output)
    "arguments swapped": (swapped, ["IndexError", "output is a dict and x a tensor", "test_doctor.py", "[128, 64]"]),
    # a tutorial's key names: output["recon_x"]
    "a key of another tutorial": (lambda o, x: F.binary_cross_entropy(o["recon_x"], x), [
        "KeyError", "no key 'recon_x'", "output['imgs']", "o[\"recon_x\"]"]),
    # pytorch/examples on MNIST: x.view(-1, 784)
    "a reshape to 784 pixels": (lambda o, x: F.binary_cross_entropy(o["imgs"], x.view(-1, 784)), [
        "RuntimeError", "D = 64 pixels", "8 × 8", "x.view(len(x), -1)"]),
    # a tutorial's loss that also returns its terms
    "a tuple (loss, rec, kl)": (lambda o, x: ((bce(o, x) + kl(o)).mean(), bce(o, x).mean(), kl(o).mean()),
                                ["tuple of 3", "[0]"]),
    # per-example losses not reduced
    "one loss per example": (lambda o, x: bce(o, x) + kl(o), ["shape [128]", ".mean()"]),
    # a missing return statement
    "returns None": (lambda o, x: None, ["None", "return"]),
}


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")  # torch, on the swapped loss's o["imgs"]
@pytest.mark.parametrize("name", LOSS_ERRORS)
def test_errors_in_the_loss_are_explained(digits, name):
    loss, words = LOSS_ERRORS[name]
    model = vae.VAE(64, [32], latent_dim=L)
    with pytest.raises(vae.LossError) as caught:
        vae.diagnose_loss(loss, model, (digits.train.x[:128] > 0.5).float())
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_the_adapter_it_offers_works(digits):
    x = (digits.train.x[:100] > 0.5).float()
    adapted = lambda output, x: loss_function(output["imgs"], x, output["mean"], output["logvar"])
    assert vae.diagnose_loss(adapted, vae.VAE(64, [32], L), x).codes == ("batch-sum",)


def test_a_loss_that_fails_only_on_the_other_batch_size_says_so(digits):
    loss = lambda o, x: (bce(o, x) + kl(o)).view(128).mean()  # a batch size written as a number
    with pytest.raises(vae.LossError, match="also tries another size"):
        vae.diagnose_loss(loss, vae.VAE(64, [32], L), (digits.train.x[:128] > 0.5).float())


# --- The contract per model kind: diagnosed, or refused with the reason --------------------------


def closed_form(o, x):
    return (bce(o, x) + kl(o)).mean()


def monte_carlo_against(model):
    """A correct loss for a learned prior: log q(z|x) − log p(z) at z, with the model's own prior."""
    return lambda o, x: (bce(o, x) + Normal(o["mean"], (0.5 * o["logvar"]).exp()).log_prob(o["z"]).sum(-1)
                         - model.prior().log_prob(o["z"])).mean()


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_a_learned_prior_is_refused_whatever_the_loss(digits, prior):
    """Neither the N(0, I) closed form (wrong for this model) nor a correct Monte Carlo KL against the
    model's prior gets a verdict: the doctor cannot judge them, and says why."""
    model = vae.VAE(64, [32], L, prior=prior, n_components=5)
    x = (digits.train.x[:37] > 0.5).float()
    for loss in (closed_form, monte_carlo_against(model)):
        with pytest.raises(ValueError, match=f"learned '{prior}' prior.*prior='standard'"):
            vae.diagnose_loss(loss, model, x)


def test_the_other_model_kinds_are_refused_with_their_reason(digits):
    x = (digits.train.x[:37] > 0.5).float()
    with pytest.raises(TypeError, match="no labels.*unconditional vae.VAE"):
        vae.diagnose_loss(closed_form, vae.ConditionalVAE(64, [32], L, n_classes=10), x)
    with pytest.raises(ValueError, match="learn_sigma=True.*fixed σ"):
        vae.diagnose_loss(closed_form, vae.VAE(64, [32], L, likelihood="gaussian", learn_sigma=True), x)
    with pytest.raises(ValueError, match="categorical.*mean level"):
        vae.diagnose_loss(closed_form, vae.VAE(64, [32], L, likelihood="categorical"), digits.train.levels[:37])


def test_the_diagnosed_kinds(digits):
    """Bernoulli, fixed-σ Gaussian and the classroom's VAE are diagnosed."""
    binary, grey = (digits.train.x[:37] > 0.5).float(), digits.train.x[:37]
    assert vae.diagnose_loss(closed_form, vae.VAE(64, [32], L), binary).correct
    assert vae.diagnose_loss(closed_form, ClassroomVAE(64, [32, 16]), binary).correct
    gaussian = vae.VAE(64, [32], L, likelihood="gaussian", sigma=SIGMA)
    assert vae.diagnose_loss(CORRECT_GAUSSIAN["Normal log_prob minus the KL"], gaussian, grey).correct
