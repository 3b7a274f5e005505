"""The checks that grade assignment 2 (build and train a VAE), run by ``python -m classroom``.

The probe calls the submission's model and functions on inputs drawn afresh for each submission;
the tests compare the plain results with values computed here. The trained model is scored here
too: the probe returns only the encoder's means and log-variances for the test images and the
decoder's probabilities for codes built from noise this module can recompute, and the ELBO is
computed from those numbers, so a model that copies its input into its output gains nothing.
"""

import math

import numpy as np
import torch

from classroom.checks import Check, Mismatch, array, close
from vae import loss_doctor as doctor
from vae.data import load_digits

PASSES = 3  # samples of z per held-out image for the test ELBO
DOCTOR_BATCH = 32  # test images in each of the loss doctor's probes
DECOYS = 200  # codes from the prior mixed into the decoder's batch
SHARPNESS = 0.03  # how far from the 0.5 threshold a grey level may be and still flip


def test_images() -> np.ndarray:
    """The 447 binarised test digits [447, 64], as the notebook makes them."""
    return (load_digits().test.x > 0.5).double().numpy()


def held_out(rng: np.random.Generator) -> np.ndarray:
    """The test digits binarised afresh for one submission: each grey pixel is on with a probability
    that rises steeply around the notebook's threshold of 0.5, so only pixels near it change, and
    every image differs from every binarised image of the public digits set (re-drawn, then the
    pixel nearest the threshold flipped, until it does)."""
    digits = load_digits()
    grey = digits.test.x.double().numpy()
    public = {
        row.tobytes()
        for part in (digits.train, digits.valid, digits.test)
        for row in (part.x > 0.5).numpy().astype(np.uint8)
    }
    on = 1 / (1 + np.exp(-(grey - 0.5) / SHARPNESS))
    images = (rng.random(grey.shape) < on).astype(np.uint8)
    for n, row in enumerate(images):
        for pixel in np.argsort(np.abs(grey[n] - 0.5)):
            if row.tobytes() not in public:
                break
            row[pixel] = 1 - row[pixel]
    return images.astype(float)


def _codes(inputs: dict, mean: np.ndarray, logvar: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codes the decoder is given, drawn here: PASSES samples of q(z|x) per held-out image and
    DECOYS codes from the prior, in an order shuffled for this submission. Returns the codes as
    sent, the samples [PASSES, N, L] and where each sample went in the batch."""
    rng = np.random.default_rng(inputs["_code_seed"])
    n, latent = mean.shape
    z = mean + np.exp(0.5 * logvar) * rng.standard_normal((PASSES, n, latent))
    batch = np.concatenate([z.reshape(-1, latent), rng.standard_normal((DECOYS, latent))])
    order = rng.permutation(len(batch))
    place = np.argsort(order)[: PASSES * n].reshape(PASSES, n)
    return batch[order], z, place


def _encoded(inputs: dict, got) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's means and log-variances for the held-out images, in the images' own order."""
    assert isinstance(got, list) and len(got) == 2, "encode should return (mean, logvar)"
    n = len(inputs["_held"])
    mean, logvar = array(got[0]), array(got[1])
    assert mean.ndim == 2 and mean.shape[0] == n and logvar.shape == mean.shape, "encode gave the wrong shapes"
    assert 1 <= mean.shape[1] <= 512, "encode gave codes of an odd size"
    back = np.argsort(inputs["_encode_order"])
    return mean[back], logvar[back]


def follow_up(inputs: dict, results: dict) -> dict:
    """The codes for the decoder's request, once the encoder has answered."""
    if "held_encoded" not in results:
        return {}
    mean, logvar = _encoded(inputs, results["held_encoded"])
    return {"codes": _codes(inputs, mean, logvar)[0].tolist()}


def draw(rng: np.random.Generator) -> dict:
    """Inputs for one submission."""
    held = held_out(rng)
    order = rng.permutation(len(held))
    return {
        "_held": held.tolist(),  # names starting with _ stay with the grader
        "_encode_order": order.tolist(),
        "_code_seed": int(rng.integers(2**31)),
        "held_shuffled": held[order].tolist(),
        "moment_mean": rng.uniform(-2.0, 2.0, size=(1, 2)).tolist(),
        "moment_std": rng.uniform(0.5, 2.0, size=(1, 2)).tolist(),
        "single_mean": rng.normal(size=(6, 3)).tolist(),
        "kl_mean": rng.normal(size=(2, 5, 4)).tolist(),
        "kl_logvar": rng.normal(size=(2, 5, 4)).tolist(),
        "binary": (rng.random((4, 64)) > 0.5).astype(float).tolist(),
        "seed": int(rng.integers(2**31)),
        "test": "".join("1" if v else "0" for v in test_images().ravel()),
    }


PROBE = """\
import torch as _torch
_T = lambda name: _torch.tensor(INPUTS[name], dtype=_torch.float32)
# %%
_torch.manual_seed(INPUTS["seed"])
record("encode", lambda: VAE(64, [32, 16], 3).encode(_torch.rand(5, 64)))
record("decode", lambda: VAE(64, [32, 16], 3).decode(_torch.randn(5, 3)))
def _forward():
    model = VAE(64, [32, 16], 3)
    return model(_torch.rand(5, 64)), model(_torch.rand(5, 64), n_samples_per_z=4)
record("forward", _forward)
def _average():
    model = VAE(64, [16], 2)
    out = model(_torch.rand(3, 64), n_samples_per_z=6)
    return out["imgs"], model.decode(out["z"])
record("average", _average)
# %%
record("moments", lambda: VAE(4, [4], 2).reparameterize(_T("moment_mean"), 2 * _T("moment_std").log(), n_samples_per_z=20000))
def _gradients():
    mean = _torch.zeros(3, 2, requires_grad=True)
    logvar = _torch.zeros(3, 2, requires_grad=True)
    VAE(4, [4], 2).reparameterize(mean, logvar, n_samples_per_z=7).sum().backward()
    return mean.grad, logvar.grad
record("gradients", _gradients)
def _single():
    model, mean = VAE(4, [4], 3), _T("single_mean")
    z1, z2 = model.reparameterize(mean, _torch.zeros(6, 3)), model.reparameterize(mean, _torch.zeros(6, 3))
    return z1, z2, model.reparameterize(mean, _torch.full((6, 3), -30.0))
record("single", _single)
# %%
record("kl_zero", lambda: gaussian_kl(_torch.zeros(4, 3), _torch.zeros(4, 3)))
record("kl_two", lambda: gaussian_kl(_torch.tensor([[2.0]]), _torch.tensor([[0.0]])))
record("kl_log_sigma_one", lambda: gaussian_kl(_torch.tensor([[0.0]]), _torch.tensor([[2.0]])))
record("kl_random", lambda: gaussian_kl(_T("kl_mean"), _T("kl_logvar")))
# %%
class _Flat(_torch.nn.Module):
    def forward(self, x, n_samples_per_z=1):
        b = x.shape[0]
        return {"imgs": _torch.full((b, 64), 0.5), "z": _torch.zeros(b, 2), "mean": _torch.zeros(b, 2), "logvar": _torch.zeros(b, 2)}
class _Sharp(_torch.nn.Module):
    def forward(self, x, n_samples_per_z=1):
        b = x.shape[0]
        mean = _torch.tensor([[2.0, 0.0]]).expand(b, 2)
        return {"imgs": 0.8 * x + 0.1, "z": mean, "mean": mean, "logvar": _torch.zeros(b, 2)}
record("elbo_flat", lambda: elbo(_Flat(), _T("binary")))
record("elbo_sharp", lambda: elbo(_Sharp(), _T("binary")))
class _Replay(_torch.nn.Module):
    # A model whose forward returns the given outputs: the doctor's probes, replayed through elbo.
    def __init__(self, out):
        super().__init__()
        self.out = out
    def forward(self, x, n_samples_per_z=1):
        return self.out
def _doctor_probes():
    # The loss doctor's probes (the grader makes the same ones): outputs whose terms are known.
    from vae import loss_doctor as _doctor
    x = _torch.tensor([float(c) for c in INPUTS["test"]]).reshape(-1, 64)[:DOCTOR_BATCH]
    return _doctor, _doctor.make_probes(x, latent_dim=2, seed=INPUTS["seed"])
def _doctor():
    # -elbo's mean on each probe, and one call as training makes it (with gradients, then backward).
    _doctor, probes = _doctor_probes()
    return _doctor.evaluate(lambda out, x: -elbo(_Replay(out), x).mean(), probes)
def _doctor_training():
    _doctor, probes = _doctor_probes()
    return _doctor.check_training(lambda out, x: -elbo(_Replay(out), x).mean(), probes)
record("doctor", _doctor)
record("doctor_training", _doctor_training)
# %%
record("trained", lambda: {"is_vae": type(model) is VAE, "losses": [float(v) for v in losses]})
def _encode_held():
    model.eval()
    with _torch.no_grad():
        return model.encode(_T("held_shuffled"))
record("held_encoded", _encode_held)
# %%
def _decode_held():
    with _torch.no_grad():
        return model.decode(_T("codes"))
record("held_decoded", _decode_held)
""".replace("DOCTOR_BATCH", str(DOCTOR_BATCH))


def test_neg_elbo(inputs: dict, got: dict) -> float:
    """The -ELBO in nats per image on the held-out images, computed here: the encoder's means and
    log-variances (one request, images shuffled), codes drawn here, and the decoder's probabilities
    for them (a later request, codes shuffled among codes from the prior)."""
    x = np.asarray(inputs["_held"])
    mean, logvar = _encoded(inputs, got["held_encoded"])
    batch, _, place = _codes(inputs, mean, logvar)
    probs = array(got["held_decoded"], (len(batch), x.shape[1]))
    p = np.clip(probs[place], 1.1920928955078125e-07, 1 - 1.1920928955078125e-07)
    reconstruction = (x * np.log(p) + (1 - x) * np.log1p(-p)).sum(-1)
    kl = 0.5 * (mean**2 + np.exp(logvar) - logvar - 1).sum(-1)
    value = float(np.mean(kl - reconstruction))
    assert math.isfinite(value), "the test -ELBO is not finite"
    return value


def _encode(i, got):
    assert isinstance(got["encode"], list) and len(got["encode"]) == 2, "encode should return (mean, logvar)"
    array(got["encode"][0], (5, 3))
    array(got["encode"][1], (5, 3))


def _decode(i, got):
    imgs = array(got["decode"], (5, 64))
    assert np.all(imgs > 0) and np.all(imgs < 1), "decode gave values outside (0, 1)"


def _forward(i, got):
    one, four = got["forward"]
    shapes = {"imgs": (5, 64), "z": (5, 3), "mean": (5, 3), "logvar": (5, 3)}
    for out, z_shape in ((one, (5, 3)), (four, (5, 4, 3))):
        assert isinstance(out, dict) and set(shapes) <= set(out), (
            "forward should return a dict with imgs, z, mean, logvar"
        )
        for key, shape in {**shapes, "z": z_shape}.items():
            array(out[key], shape)


def _average(i, got):
    imgs, decoded = got["average"]
    close(imgs, array(decoded, (3, 6, 64)).mean(axis=1), rtol=0, atol=1e-6)


def _moments(i, got):
    z = array(got["moments"], (1, 20000, 2))
    close(z.mean(axis=1), i["moment_mean"], rtol=0, atol=0.06)
    close(z.std(axis=1, ddof=1), i["moment_std"], rtol=0.03)


def _gradients(i, got):
    mean_grad, logvar_grad = got["gradients"]
    close(mean_grad, np.full((3, 2), 7.0))
    assert np.all(array(logvar_grad, (3, 2)) != 0), "some gradient with respect to logvar is zero"


def _single(i, got):
    z1, z2, tiny = (array(v, (6, 3)) for v in got["single"])
    assert not np.allclose(z1, z2), "two calls gave the same codes"
    close(tiny, i["single_mean"], rtol=0, atol=1e-5)


def _kl_random(i, got):
    mean, logvar = np.asarray(i["kl_mean"]), np.asarray(i["kl_logvar"])
    close(got["kl_random"], 0.5 * (mean**2 + np.exp(logvar) - logvar - 1).sum(-1), rtol=1e-4, atol=1e-5)


def _diagnosis(i, got):
    """The loss doctor's verdict on -elbo, from its values on probes made here (chapter 7)."""
    values = got["doctor"]
    if isinstance(values, dict):
        raise AssertionError("elbo could not be evaluated on outputs of the classroom interface")  # noqa: TRY004
    values = [float(v) if isinstance(v, (int, float)) else math.nan for v in array(values, (len(values),))]
    x = torch.tensor(test_images()[:DOCTOR_BATCH], dtype=torch.float32)
    found = doctor.diagnose_values(doctor.make_probes(x, latent_dim=2, seed=i["seed"]), values,
                                   _training_report(got.get("doctor_training")))
    if not found.correct:
        raise AssertionError("; ".join(f"{f.code}: {f.fix}" for f in found.findings) or "not the ELBO")


def _training_report(raw) -> dict | None:
    """check_training's report as it came back from the sandbox, rebuilt from known values only: the
    keys' names it may list, booleans, and a fixed sentence for a failed backward (its message is
    the submission's text, which feedback never shows)."""
    if not isinstance(raw, dict):
        return None
    keys = ("imgs", "z", "mean", "logvar")
    listed = lambda name, allowed: [k for k in allowed if isinstance(raw.get(name), list) and k in raw[name]]
    return {
        "returns": "tensor" if raw.get("returns") == "tensor" else "float",
        "requires_grad": raw.get("requires_grad") is True,
        "reaches": listed("reaches", keys),
        "changed": listed("changed", (*keys, "x")),
        "backward_error": "it raised an error" if raw.get("backward_error") else None,
    }


def _trained(i, got):
    trained = got["trained"]
    assert isinstance(trained, dict) and trained.get("is_vae") is True, "model is not an instance of VAE"
    losses = array(trained["losses"])
    assert losses.ndim == 1 and len(losses) >= 2 and losses[-1] < losses[0], "losses should go down"
    value = test_neg_elbo(i, got)
    if not value < 44.36:
        raise Mismatch("a test -ELBO below 44.36 nats", value)


def _threshold(i, got):
    value = test_neg_elbo(i, got)
    if not value < 22.0:
        raise Mismatch("a test -ELBO below 22 nats", value)


CHECKS = [
    Check(
        "vae_model",
        "encode shapes",
        1,
        "VAE(64, [32, 16], 3).encode(x) for x of shape [5, 64] should return a tuple (mean, logvar) of two tensors of shape [5, 3].",
        _encode,
    ),
    Check(
        "vae_model",
        "decode gives probabilities",
        1,
        "decode(z) for z of shape [5, 3] should return probabilities of shape [5, 64], all strictly between 0 and 1.",
        _decode,
    ),
    Check(
        "vae_model",
        "forward shapes",
        1,
        "forward(x) should return a dict with keys imgs [B, 64], z [B, L], mean [B, L] and logvar [B, L]; with n_samples_per_z=4, z should be [B, 4, L] and imgs still [B, 64].",
        _forward,
    ),
    Check(
        "vae_model",
        "imgs average the samples",
        1,
        "With several samples per input, imgs should be the average of decode(z) over the samples, and decode should also accept codes of shape [B, S, L].",
        _average,
    ),
    Check(
        "reparameterize",
        "moments",
        1,
        "Over 20000 draws for one mean and standard deviation, the sample mean should be within 0.06 of the mean and the sample std within 3% of exp(logvar / 2); check that you use exp(0.5 * logvar), not exp(logvar), and that each draw gets its own noise.",
        _moments,
    ),
    Check(
        "reparameterize",
        "gradients reach both",
        1,
        "The sum of 7 codes drawn for each of 3 inputs should have gradient exactly 7 with respect to every entry of mean and a non-zero gradient with respect to logvar; build z from mean and logvar with torch operations only (no .detach(), no .item(), no numpy).",
        _gradients,
    ),
    Check(
        "reparameterize",
        "single sample",
        1,
        "With one sample per input, reparameterize should return [B, L] codes, fresh noise on every call, and for logvar = -30 (a tiny std) codes equal to the mean.",
        _single,
    ),
    Check(
        "gaussian_kl",
        "zero at the prior",
        1,
        "The KL of N(0, I) from itself is 0, for each of the 4 rows of a [4, 3] input; the result should have shape [4].",
        lambda i, got: close(got["kl_zero"], np.zeros(4), atol=1e-6),
    ),
    Check(
        "gaussian_kl",
        "mean two",
        1,
        "For one dimension with mean 2 and unit variance (logvar 0), the KL is mu^2 / 2 = 2 nats.",
        lambda i, got: close(got["kl_two"], [2.0], rtol=1e-5),
    ),
    Check(
        "gaussian_kl",
        "log sigma one",
        1,
        "For one dimension with mean 0 and log sigma = 1 (logvar 2), the KL is (e^2 - 1 - 2) / 2, about 2.1945 nats; a value near 4.19 means the log term has the wrong sign.",
        lambda i, got: close(got["kl_log_sigma_one"], [0.5 * (math.e**2 - 3)], rtol=1e-5),
    ),
    Check(
        "gaussian_kl",
        "random batches",
        1,
        "On random means and log-variances of shape [2, 5, 4] the result should have shape [2, 5] and match the closed form summed over the last dimension.",
        _kl_random,
    ),
    Check(
        "elbo",
        "flat decoder",
        1,
        "For a model whose decoder gives probability 0.5 to every pixel and whose q(z|x) is N(0, I), the ELBO of any binary 64-pixel image is 64 log(1/2), about -44.36 nats, with shape [B].",
        lambda i, got: close(got["elbo_flat"], np.full(4, -64 * math.log(2)), rtol=1e-5),
    ),
    Check(
        "elbo",
        "known terms",
        1,
        "For a decoder that gives the right value of every pixel probability 0.9 and a q(z|x) with mean 2 in one of 2 dimensions, the ELBO is 64 log 0.9 - 2, about -8.74 nats; check both the reconstruction term and the sign of the KL.",
        lambda i, got: close(got["elbo_sharp"], np.full(4, 64 * math.log(0.9) - 2.0), rtol=1e-5),
    ),
    Check(
        "elbo",
        "loss doctor",
        0,
        "Advice, no points: the book's loss doctor (vae.diagnose_loss, chapter 7) fitted -elbo(model, x).mean() on outputs whose terms it knows and found it is not the per-example negative ELBO in nats; its findings and fixes:",
        _diagnosis,
    ),
    Check(
        "training",
        "model trained",
        1,
        "model should be an instance of your VAE class, losses a list of per-epoch training losses that ends lower than it starts, and the test -ELBO should at least beat the 44.36 nats of a flat decoder.",
        _trained,
    ),
    Check(
        "training",
        "test ELBO below 22 nats",
        2,
        "The test -ELBO (computed by the grader from your encoder's means and log-variances and your decoder's probabilities for the 447 test images) should be below 22 nats per image.",
        _threshold,
    ),
]
