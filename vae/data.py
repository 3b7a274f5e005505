"""Data sets: scikit-learn's digits (offline, the default), 2-D toys, and optional MNIST."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sklearn.datasets
import torch
from torch import Tensor

from vae.validation import check_positive, check_positive_int

N_LEVELS = 17  # sklearn's digits hold grey levels 0..16


@dataclass
class Split:
    """One split of an image data set.

    ``x`` [N, D] float32 intensities in [0, 1]; ``levels`` [N, D] int64 grey
    levels ``0 .. n_levels - 1`` (for a categorical likelihood); ``y`` [N] labels.
    """

    x: Tensor
    levels: Tensor
    y: Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class ImageData:
    """Train, validation and test splits plus what is needed to draw them."""

    train: Split
    valid: Split
    test: Split
    image_shape: tuple[int, int]
    n_levels: int


def _split(levels: np.ndarray, y: np.ndarray, n_levels: int) -> Split:
    levels_t = torch.as_tensor(levels, dtype=torch.int64)
    return Split(levels_t.float() / (n_levels - 1), levels_t, torch.as_tensor(y, dtype=torch.int64))


def load_digits() -> ImageData:
    """scikit-learn's 8x8 handwritten digits (1797 images, 64 pixels, levels 0..16).

    The split used in the literature on this data set: the first 1000 images
    for training, the next 350 for validation, the remaining 447 for testing.
    Bundled with scikit-learn, so nothing is downloaded.
    """
    bunch = sklearn.datasets.load_digits()
    levels, y = bunch.data.astype(np.int64), bunch.target
    parts = [slice(0, 1000), slice(1000, 1350), slice(1350, None)]
    train, valid, test = (_split(levels[s], y[s], N_LEVELS) for s in parts)
    return ImageData(train, valid, test, image_shape=(8, 8), n_levels=N_LEVELS)


def two_moons(n: int = 1000, noise: float = 0.08, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two interleaving half circles in 2-D: points [n, 2] float32 and labels [n] (0 or 1)."""
    check_positive_int("n", n)
    check_positive("noise", noise)
    x, y = sklearn.datasets.make_moons(n, noise=noise, random_state=seed)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def mixture_samples(
    n: int = 1000,
    means: list[list[float]] | None = None,
    covs: list[list[list[float]]] | None = None,
    weights: list[float] | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Samples [n, 2] from a mixture of 2-D Gaussians, with their component labels [n].

    Defaults to three well-separated, differently shaped components.
    """
    check_positive_int("n", n)
    means = np.array(means if means is not None else [[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    k = len(means)
    covs = np.array(covs if covs is not None else [[[0.6, 0.3], [0.3, 0.4]], [[0.3, -0.2], [-0.2, 0.8]], [[0.5, 0.0], [0.0, 0.2]]])
    weights = np.array(weights if weights is not None else np.full(k, 1 / k))
    if means.ndim != 2 or covs.shape != (k, means.shape[1], means.shape[1]) or weights.shape != (k,):
        raise ValueError(f"need means [K, d], covs [K, d, d] and weights [K]; got {means.shape}, {covs.shape}, {weights.shape}")
    if (weights < 0).any() or not np.isclose(weights.sum(), 1):
        raise ValueError(f"weights must be >= 0 and sum to 1, got {weights.tolist()}")
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=weights)
    x = np.stack([rng.multivariate_normal(means[c], covs[c]) for c in y])
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


# ---------------------------------------------------------------- MNIST (optional)

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped or not, into a numpy array.

    Layout: two zero bytes, a type code, the number of dimensions n, then n
    big-endian uint32 sizes and the data in row-major order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: bad magic number {raw[:4].hex()}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: header needs {header} bytes, file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} has {len(raw)} bytes but its header {shape} needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mnist_cache_dir() -> Path:
    """Where MNIST files are kept: ``$VAE_DATA/mnist``, else ``~/.cache/vae-book/mnist``."""
    root = os.environ.get("VAE_DATA") or Path.home() / ".cache" / "vae-book"
    return Path(root) / "mnist"


def _fetch(name: str, folder: Path, base_url: str) -> Path:
    """Download one file into ``folder`` (via a temp file) and check its MD5."""
    target = folder / name
    if target.is_file() and _md5(target) == MNIST_MD5[name]:
        return target
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(base_url + name, timeout=30) as response:
            shutil.copyfileobj(response, out)
        if _md5(Path(tmp)) != MNIST_MD5[name]:
            raise ValueError(f"{name} downloaded from {base_url} has the wrong MD5 checksum; not saved")
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as err:
        raise ConnectionError(
            f"could not download {name} ({err}). If this machine is offline, copy the four MNIST files "
            f"{sorted(MNIST_MD5)} into {folder} and call load_mnist() again."
        ) from err
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def load_mnist(
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
    n_valid: int = 10000,
    base_url: str = MNIST_URL,
) -> ImageData:
    """MNIST (28x28, levels 0..255): train 50000 / valid 10000 / test 10000 by default.

    The four IDX files are downloaded once into ``cache_dir`` (default
    :func:`mnist_cache_dir`) and checked against their MD5 sums; later calls
    read the cache. With ``download=False``, or offline, a missing file raises
    an error naming the folder to fill. ``levels`` keeps the raw 0..255 values.
    """
    if isinstance(n_valid, bool) or not isinstance(n_valid, int) or n_valid < 0:
        raise ValueError(f"n_valid must be an int >= 0 (images held out of the 60000 for validation), got {n_valid!r}")
    folder = Path(cache_dir) if cache_dir is not None else mnist_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, md5 in MNIST_MD5.items():
        if download:
            paths[name] = _fetch(name, folder, base_url)
        elif not (folder / name).is_file():
            raise FileNotFoundError(f"{name} is not in {folder}; put the four MNIST files there or pass download=True")
        elif _md5(folder / name) != md5:
            raise ValueError(f"{folder / name} has the wrong MD5 checksum; delete it and download it again")
        else:
            paths[name] = folder / name
    images = [read_idx(paths[f"{p}-images-idx3-ubyte.gz"]).reshape(-1, 784) for p in ("train", "t10k")]
    labels = [read_idx(paths[f"{p}-labels-idx1-ubyte.gz"]) for p in ("train", "t10k")]
    n_train = len(images[0]) - n_valid
    if n_train <= 0:
        raise ValueError(f"n_valid={n_valid} leaves no training images out of {len(images[0])}")
    train = _split(images[0][:n_train], labels[0][:n_train], 256)
    valid = _split(images[0][n_train:], labels[0][n_train:], 256)
    test = _split(images[1], labels[1], 256)
    return ImageData(train, valid, test, image_shape=(28, 28), n_levels=256)
