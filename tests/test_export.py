"""Models for the website (vae/export.py) and the JavaScript that runs them (book/_static/latent-explorer.js).

The JavaScript's maths is checked under node, without a browser or a built site: it must decode the
stored weights to the same mean images as the library, within 1e-3 grey levels, for each way of
storing the weights and each likelihood. (``tests/test_site.py`` checks the same in Chromium, on
the built chapters.) The node tests skip when node is not installed.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

import vae
from vae import export

matplotlib.use("Agg")

SCRIPT = Path(__file__).resolve().parents[1] / "book" / "_static" / "latent-explorer.js"
TOLERANCE = 1e-3  # grey levels (or probabilities, for Bernoulli pixels)


def small_model(likelihood: str = "categorical", seed: int = 0, **settings) -> vae.VAE:
    """A VAE with the book's decoder shape, its weights random but not small (as if trained)."""
    torch.manual_seed(seed)
    model = vae.VAE(64, [128, 64], latent_dim=2, likelihood=likelihood, **settings)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3.0)
    return model.eval()


def digits(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 17, (n, 64), generator=g), torch.arange(n) % 10


def run_node(data: dict, z: np.ndarray, noise: np.ndarray | None = None) -> dict[str, list]:
    """The JavaScript's mean images (and samples, with ``noise``) of codes ``z`` [N, 2], under node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript's maths is checked in the browser test only")
    program = f"""
        const maths = require({json.dumps(str(SCRIPT))});
        const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const model = maths.readModel(input.data);
        const out = {{means: input.z.map(z => Array.from(maths.meanImage(model, z)))}};
        if (input.noise) out.samples = input.z.map(z => Array.from(maths.sampleImage(model, z, input.noise)));
        process.stdout.write(JSON.stringify(out));
    """
    payload = {"data": data, "z": z.tolist(), "noise": None if noise is None else noise.tolist()}
    done = subprocess.run([node, "-e", program], input=json.dumps(payload), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("weights", export.WEIGHT_DTYPES)
def test_javascript_decodes_like_the_library(weights):
    model = small_model()
    x, y = digits()
    data = json.loads(export.to_json(export.explorer_data(model, x, y, weights=weights)))
    z = np.random.default_rng(0).uniform(-3.5, 3.5, (40, 2))
    js = torch.tensor(run_node(data, z)["means"])
    stored = export.decode_data(data, torch.tensor(z))  # the library's maths on the stored weights
    assert (js - stored).abs().max() < TOLERANCE
    if weights == "float32":  # stored exactly: the same as the model itself
        with torch.no_grad():
            assert (js - model.decode(torch.tensor(z, dtype=torch.float32))).abs().max() < TOLERANCE


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_javascript_decodes_every_likelihood(likelihood):
    model = small_model(likelihood)
    x = torch.rand(30, 64).round() if likelihood == "bernoulli" else torch.randn(30, 64)
    data = json.loads(export.to_json(export.explorer_data(model, x, torch.arange(30) % 10, weights="float32")))
    z = np.random.default_rng(1).normal(size=(20, 2))
    with torch.no_grad():
        expected = model.decode(torch.tensor(z, dtype=torch.float32))
    assert (torch.tensor(run_node(data, z)["means"]) - expected).abs().max() < TOLERANCE


def test_javascript_samples_each_pixel_from_its_categorical_distribution():
    """A sample with noise u takes, per pixel, the first level whose cumulative probability passes u."""
    model = small_model()
    x, y = digits()
    data = json.loads(export.to_json(export.explorer_data(model, x, y, weights="float32")))
    z = np.array([[0.3, -1.2], [2.0, 1.0]])
    noise = np.random.default_rng(2).uniform(size=128)
    samples = np.array(run_node(data, z, noise)["samples"])
    with torch.no_grad():
        probs = model.lik.distribution(model.decoder(torch.tensor(z, dtype=torch.float32))).base_dist.probs
    expected = (probs.cumsum(-1).numpy() <= noise[None, :64, None]).sum(-1).clip(max=16)
    # a pixel may differ only where u lies within float error of a cumulative probability
    assert (samples != expected).mean() < 0.02
    assert set(np.unique(samples)) <= set(range(17))


def test_the_stored_decoder_stays_close_to_the_model():
    """The default, 8-bit weights in the large layer, moves the mean images by a few hundredths of a grey level."""
    model = small_model()
    x, y = digits()
    for weights, bound in [("int8", 0.1), ("float16", 0.05), ("float32", 1e-5)]:
        data = export.explorer_data(model, x, y, weights=weights)
        assert data["fidelity"]["max_abs_error"] < bound, weights
        stored = export.decode_data(data, torch.zeros(1, 2))
        with torch.no_grad():
            assert (stored - model.decode(torch.zeros(1, 2))).abs().max() <= data["fidelity"]["max_abs_error"] + 1e-6
    layers = export.explorer_data(model, x, y)["layers"]
    assert [layer["weight"]["dtype"] for layer in layers] == ["float16", "float16", "int8"]
    assert [layer["slope"] for layer in layers] == [0.01, 0.01, None]


def test_quantise_rows_beats_rounding_each_weight():
    torch.manual_seed(0)
    weight, inputs = torch.randn(50, 32), torch.randn(2000, 32) @ torch.randn(32, 32)  # correlated inputs
    levels, scale = export.quantise_rows(weight, inputs)
    assert levels.dtype == torch.int8 and levels.abs().max() <= 127 and scale.shape == (50,)
    plain = (weight / scale[:, None]).round() * scale[:, None]
    error = ((levels * scale[:, None] - weight) @ inputs.T).pow(2).mean()
    assert error < 0.7 * ((plain - weight) @ inputs.T).pow(2).mean()


def test_the_document_is_small_and_complete(tmp_path):
    model = small_model()
    x, y = digits(447)
    path = export.write_explorer_data(model, x, y, tmp_path / "model.json")
    data = export.read_explorer_data(path)
    assert path.stat().st_size < 260_000  # the book's decoder and 447 codes: about 230 kB
    assert data["likelihood"] == "categorical" and data["n_levels"] == 17 and data["image_shape"] == [8, 8]
    assert len(data["codes"]) == len(data["labels"]) == 447 and data["extent"] >= 3.5
    assert data["digit_colours"] == list(vae.style.DIGIT_COLOURS)
    codes = vae.latent.codes(model, x).numpy()
    assert np.abs(np.array(data["codes"]) - codes).max() <= 0.5 * 10**-export.CODE_DECIMALS + 1e-6
    with pytest.raises(FileNotFoundError, match="create it first"):
        export.write_explorer_data(model, x, y, tmp_path / "no" / "model.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a latent-explorer document"):
        export.read_explorer_data(tmp_path / "other.json")


def test_the_html_embeds_the_document_safely_and_refers_to_the_script():
    model = small_model()
    x, y = digits()
    html = export.explorer_html(export.explorer_data(model, x, y, title="</script><b>"), label='a "VAE"')
    assert html.count("</script>") == 2  # the data's own, and the script's: the title cannot close it
    assert 'src="../_static/latent-explorer.js"' in html and 'data-label="a &quot;VAE&quot;"' in html
    inline = html.split('class="latent-explorer-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(inline)["title"] == "</script><b>"
    assert "://" not in html  # nothing from the network


def test_show_explorer_gives_html_for_pages_and_a_still_for_the_rest():
    matplotlib.pyplot.close("all")  # figures other tests left open are not this one's
    model = small_model()
    x, y = digits()
    shown = export.show_explorer(model, x, y)
    bundle = shown._repr_mimebundle_()
    assert 'class="latent-explorer"' in bundle["text/html"]
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "latent explorer" in bundle["text/plain"]
    assert not matplotlib.pyplot.get_fignums()


def test_what_cannot_be_shown_on_a_plane_is_refused():
    x, y = digits()
    with pytest.raises(ValueError, match="2-D code plane"):
        export.explorer_data(vae.VAE(64, [32], latent_dim=3), x, y)
    with pytest.raises(ValueError, match="conditional"):
        export.explorer_data(vae.ConditionalVAE(64, [32], latent_dim=2, n_classes=10), x, y)
    with pytest.raises(ValueError, match="weights must be one of"):
        export.explorer_data(small_model(), x, y, weights="int4")
    with pytest.raises(ValueError, match="one label from 0 to 9"):
        export.explorer_data(small_model(), x, y + 5)


def test_an_autoencoder_is_shown_without_the_prior():
    torch.manual_seed(0)
    ae = vae.Autoencoder(64, [32], latent_dim=2, likelihood="categorical")
    x, y = digits()
    data = export.explorer_data(ae, x, y)
    assert data["prior"] is None and data["fidelity"]["max_abs_error"] < 0.1
