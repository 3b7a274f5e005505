import gzip
import hashlib

import numpy as np
import pytest
import sklearn.datasets
import torch

import vae.data
from vae.data import load_digits, load_mnist, mixture_samples, read_idx, two_moons


def test_digits_split_is_the_standard_one():
    d = load_digits()
    assert (len(d.train), len(d.valid), len(d.test)) == (1000, 350, 447)
    assert d.image_shape == (8, 8) and d.n_levels == 17
    raw = sklearn.datasets.load_digits()
    assert torch.equal(d.valid.levels[0], torch.as_tensor(raw.data[1000], dtype=torch.int64))
    assert torch.equal(d.test.y, torch.as_tensor(raw.target[1350:]))
    for split in (d.train, d.valid, d.test):
        assert split.levels.dtype == torch.int64 and split.levels.min() == 0 and split.levels.max() == 16
        assert split.x.dtype == torch.float32
        torch.testing.assert_close(split.x, split.levels.float() / 16)


def test_two_moons_is_seeded():
    x, y = two_moons(200, seed=3)
    assert x.shape == (200, 2) and set(y.tolist()) == {0, 1}
    assert torch.equal(two_moons(200, seed=3)[0], x)
    with pytest.raises(ValueError, match="n must be"):
        two_moons(0)


def test_mixture_samples_matches_its_parameters():
    means = [[-3.0, 0.0], [3.0, 1.0]]
    covs = [[[1.0, 0.5], [0.5, 1.0]], [[0.2, 0.0], [0.0, 0.5]]]
    x, y = mixture_samples(20_000, means, covs, [0.3, 0.7], seed=0)
    assert (y == 1).float().mean().item() == pytest.approx(0.7, abs=0.01)
    for k in range(2):
        xk = x[y == k].numpy()
        np.testing.assert_allclose(xk.mean(0), means[k], atol=0.05)
        np.testing.assert_allclose(np.cov(xk.T), covs[k], atol=0.05)


def test_mixture_samples_rejects_bad_parameters():
    with pytest.raises(ValueError, match="sum to 1"):
        mixture_samples(10, [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]], [0.5])
    with pytest.raises(ValueError, match="covs"):
        mixture_samples(10, [[0.0, 0.0]], [[1.0, 0.0]], [1.0])


def write_idx(path, array: np.ndarray, type_code: int = 0x08, compress: bool = True) -> None:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:  # closed, so the file is complete on disk
        f.write(data)


def test_read_idx_round_trips_uint8_and_int32(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "images.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "images.gz"), images)
    counts = np.array([1, -2, 70000], dtype=np.int32)
    write_idx(tmp_path / "counts", counts, type_code=0x0C, compress=False)
    out = read_idx(tmp_path / "counts")
    np.testing.assert_array_equal(out, counts)
    assert out.dtype == np.int32


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"\x00\x01")
    with pytest.raises(ValueError, match="needs 13"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="no IDX file"):
        read_idx(tmp_path / "missing")


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """Four tiny IDX files standing in for MNIST, with their checksums patched in."""
    source = tmp_path / "source"
    source.mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([0, 1, 2, 3, 4], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([7, 9], dtype=np.uint8),
    }
    md5 = {}
    for name, array in arrays.items():
        write_idx(source / name, array)
        md5[name] = hashlib.md5((source / name).read_bytes()).hexdigest()
    monkeypatch.setattr(vae.data, "MNIST_MD5", md5)
    return source, arrays


def test_load_mnist_downloads_once_checks_and_parses(tmp_path, tiny_mnist):
    source, arrays = tiny_mnist
    cache = tmp_path / "cache"
    data = load_mnist(cache, n_valid=2, base_url=source.as_uri() + "/")
    assert (len(data.train), len(data.valid), len(data.test)) == (3, 2, 2)
    assert data.image_shape == (28, 28) and data.n_levels == 256
    np.testing.assert_array_equal(data.test.levels.numpy(), arrays["t10k-images-idx3-ubyte.gz"].reshape(2, 784))
    assert data.valid.y.tolist() == [3, 4]
    assert data.train.x.max() <= 1
    # a second call reads the cache: the source may be gone
    for f in source.iterdir():
        f.unlink()
    again = load_mnist(cache, n_valid=2, base_url=source.as_uri() + "/")
    assert torch.equal(again.train.levels, data.train.levels)
    assert sorted(p.name for p in cache.iterdir()) == sorted(arrays)


def test_load_mnist_offline_names_the_folder_to_fill(tmp_path, tiny_mnist):
    cache = tmp_path / "cache"
    with pytest.raises(ConnectionError, match=str(cache)):
        load_mnist(cache, base_url=(tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(FileNotFoundError, match=str(cache)):
        load_mnist(cache, download=False)
    assert list(cache.iterdir()) == []  # no partial files left behind


def test_load_mnist_rejects_a_corrupt_download(tmp_path, tiny_mnist, monkeypatch):
    source, _ = tiny_mnist
    monkeypatch.setitem(vae.data.MNIST_MD5, "train-images-idx3-ubyte.gz", "0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="wrong MD5"):
        load_mnist(cache, base_url=source.as_uri() + "/")
    assert not (cache / "train-images-idx3-ubyte.gz").exists()


def test_mnist_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_DATA", str(tmp_path))
    assert vae.data.mnist_cache_dir() == tmp_path / "mnist"


@pytest.mark.parametrize("n_valid, error", [(-1, "n_valid must be an int >= 0"), (2.5, "n_valid must be an int"),
                                            (5, "leaves no training images")])
def test_load_mnist_rejects_impossible_splits(tmp_path, tiny_mnist, n_valid, error):
    source, _ = tiny_mnist
    with pytest.raises(ValueError, match=error):
        load_mnist(tmp_path / "cache", n_valid=n_valid, base_url=source.as_uri() + "/")
