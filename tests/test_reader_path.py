"""A reader's path outside this repository: the repository URL, Colab, Binder and a downloaded notebook.

The Colab-style test rebuilds, offline, what a reader gets on Colab: a fresh virtual environment
holding only what Colab ships (torch, numpy, matplotlib, scikit-learn, sympy, ipywidgets,
ipykernel, and what those need; tqdm, pip and setuptools, which Colab also ships), a chapter taken from
the built site's download button, its install cell pointed at this clone (``git+file://``), run with
nbclient in that environment. The packages are linked from the test environment rather than
downloaded, and pip runs with ``--no-index``, so nothing leaves the machine. It needs a built site::

    VAE_SITE=_build/html python -m pytest tests/test_reader_path.py -p no:nbmake -o addopts=""

and a git checkout: ``pip install git+file://`` installs the committed tree (HEAD).
"""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path
from urllib.parse import unquote, urljoin

import nbclient
import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
import set_repository  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL_SITE = os.environ.get("VAE_SITE")
COLAB_SHIPS = ["torch", "numpy", "matplotlib", "scikit-learn", "sympy", "ipywidgets", "ipykernel",
               "tqdm", "setuptools", "pip"]
CHAPTER = "05_vae_digits"  # trains a VAE, evaluates it and draws with the library: most of what a reader runs


def test_the_repository_url_is_one_setting():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert set_repository.repository_url() == url
    for path in set_repository.notebooks():
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert "".join(first["source"]) == set_repository.install_cell(url), (
            f"{path.name}: its install cell does not match _config.yml; run python book/set_repository.py"
        )
    others = [
        p for p in ROOT.rglob("*")
        if p.is_file() and p.suffix in {".py", ".md", ".yml", ".toml", ".txt", ".ipynb"}
        and not {".git", ".venv", "_build"} & set(p.relative_to(ROOT).parts)
        and url in p.read_text(errors="ignore") and p.parent != ROOT / "notebooks" and p.name != "_config.yml"
    ]
    assert others == [], f"the repository URL is typed outside _config.yml: {others}"


def test_binder_gets_the_cpu_build_of_torch_and_the_pinned_requirements():
    lines = (ROOT / ".binder" / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.txt" in lines
    assert any(line.startswith("--extra-index-url") and line.endswith("/whl/cpu") for line in lines)
    assert re.fullmatch(r"python-3\.1[1-3]", (ROOT / ".binder" / "runtime.txt").read_text().strip())


def colab_like_environment(folder: Path) -> Path:
    """A virtual environment in ``folder`` holding COLAB_SHIPS and their requirements, linked from this one."""
    venv.create(folder, with_pip=False)  # pip and setuptools are linked below, like the rest
    python = folder / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    wanted, linked = list(COLAB_SHIPS), set()
    while wanted:
        name = canonicalize_name(wanted.pop())
        if name in linked:
            continue
        dist = importlib.metadata.distribution(name)
        linked.add(name)
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            source, target = Path(dist.locate_file(top)), site / top
            if source.exists() and not target.exists() and not top.startswith("__editable__"):
                target.symlink_to(source)
    assert "vae-book" not in linked
    return python


def download_link(page: Path) -> Path:
    """The .ipynb behind the page's download button."""
    page = page.resolve()
    hrefs = [h for h in re.findall(r'href="([^"]+\.ipynb)"', page.read_text()) if "://" not in h]
    assert hrefs, f"{page} has no .ipynb download link"
    return Path(unquote(urljoin(page.as_uri(), hrefs[0]).removeprefix("file://")))


@pytest.mark.skipif(not REAL_SITE, reason="set VAE_SITE to a built site, e.g. VAE_SITE=_build/html")
def test_a_downloaded_chapter_runs_in_a_colab_like_environment(tmp_path, monkeypatch):
    notebook = download_link(Path(REAL_SITE) / "notebooks" / f"{CHAPTER}.html")
    nb = nbformat.read(notebook, as_version=4)
    install = nb.cells[[c.cell_type for c in nb.cells].index("code")]
    url = set_repository.repository_url()
    assert url in install.source, "the downloaded notebook does not install from the configured repository"
    # file://localhost/...: the pip that venv installs (23.2) rejects a git+file URL without a host.
    install.source = install.source.replace(f"git+{url}", f"git+file://localhost{ROOT}")

    python = colab_like_environment(tmp_path / "colab")
    probe = "import importlib.util as u; print(u.find_spec('vae'), u.find_spec('jupyter_book'))"
    assert subprocess.check_output([python, "-c", probe], text=True, cwd=tmp_path).split() == ["None", "None"]
    kernels = tmp_path / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (kernels / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python", "display_name": "Colab"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: every requirement is already there
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")  # build with the setuptools that is there
    monkeypatch.setenv("MPLBACKEND", "agg")

    nbclient.NotebookClient(nb, kernel_name="colab", timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    installed = subprocess.check_output([python, "-m", "pip", "show", "-f", "vae-book"], text=True)
    assert "vae/models.py" in installed  # a real install from the clone, not a link to the working tree
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "test set" in outputs and "bits/dim" in outputs
