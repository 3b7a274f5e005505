"""vae.load refuses a file whose configuration cannot be right, before it allocates the model.

A saved file is a dict {"class", "config", "state_dict"}. Here a small model is saved, its config
is then edited to something absurd (a layer of a billion units, a negative size), and the file must
be refused with a ValueError that names the problem, without building the huge model first.
"""

import resource
import sys

import pytest
import torch

import vae
from vae.saving import load, save


def rewrite_config(path, **changes):
    payload = torch.load(path, weights_only=True)
    payload["config"] = {**payload["config"], **changes}
    torch.save(payload, path)


def peak_memory_mib() -> float:
    """This process's peak resident memory so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


@pytest.mark.parametrize("changes", [
    {"hidden_dims": [10**9]},  # 64e9 weights in the first layer: 256 GB in float32
    {"latent_dim": 10**9},
    {"input_dim": 10**9, "hidden_dims": [10**9]},
])
def test_an_absurd_config_is_refused_before_allocating(tmp_path, changes):
    path = save(vae.VAE(16, [8], 2), tmp_path / "small.pt")
    rewrite_config(path, **changes)
    before = peak_memory_mib()
    with pytest.raises(ValueError, match="weights do not fit the model its config describes"):
        load(path)
    assert peak_memory_mib() - before < 200, "load allocated the model its absurd config describes"


@pytest.mark.parametrize("changes, words", [
    ({"hidden_dims": [-3]}, "invalid config"),
    ({"latent_dim": 0}, "invalid config"),
    ({"likelihood": "poisson"}, "invalid config"),
])
def test_an_impossible_config_is_refused_with_its_reason(tmp_path, changes, words):
    path = save(vae.VAE(16, [8], 2), tmp_path / "small.pt")
    rewrite_config(path, **changes)
    with pytest.raises(ValueError, match=words):
        load(path)


def test_an_untouched_file_still_loads(tmp_path):
    model = vae.VAE(16, [8], 2)
    again = load(save(model, tmp_path / "small.pt"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_with_nan_or_inf_are_refused(tmp_path, bad):
    path = save(vae.VAE(16, [8], 2), tmp_path / "small.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["decoder.0.weight"][0, 0] = bad
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"decoder\.0\.weight contains NaN or inf"):
        load(path)


def test_a_class_that_is_not_a_name_is_refused(tmp_path):
    path = save(vae.VAE(16, [8], 2), tmp_path / "small.pt")
    payload = torch.load(path, weights_only=True)
    payload["class"] = ["VAE"]
    torch.save(payload, path)
    with pytest.raises(ValueError, match="rebuilds only"):
        load(path)
