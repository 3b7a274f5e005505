"""Keep the book's repository URL in one setting: ``repository.url`` in ``_config.yml``.

The site's repository, issue, Binder and Colab buttons read that setting. A notebook opened in
Colab or downloaded from the site has no ``_config.yml`` beside it, so its first cell must carry the
URL to install the library from; this script writes that cell in every notebook from the setting
(and ``tests/test_reader_path.py`` fails when a notebook disagrees with it).

    python book/set_repository.py                 # rewrite the install cells from _config.yml
    python book/set_repository.py https://github.com/you/your-fork   # change the setting first
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "_config.yml"
URL_LINE = re.compile(r"^(  url: )(\S+)$", re.MULTILINE)  # the url under `repository:`
INSTALL_CELL = '''\
# Colab, or a notebook downloaded from the site: install the book's library when it is missing.
try:
    import vae
except ImportError:
    %pip install --quiet "vae-book @ git+{url}"'''


def repository_url() -> str:
    """The URL set in ``_config.yml`` under ``repository: url:``."""
    block = CONFIG.read_text().split("\nrepository:\n", 1)[1]
    return URL_LINE.search(block).group(2)


def notebooks() -> list[Path]:
    """Every chapter notebook (the assignments install nothing: they run where the course runs)."""
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def install_cell(url: str) -> str:
    return INSTALL_CELL.format(url=url)


def write_install_cells(url: str) -> list[Path]:
    """Make the first code cell of every chapter the install cell for ``url``; return the files changed."""
    changed = []
    for path in notebooks():
        text = path.read_text()
        nb = json.loads(text)
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
        cell["source"] = install_cell(url).splitlines(keepends=True)
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        sys.exit(__doc__)
    if argv:
        url = argv[0].rstrip("/")
        if not re.fullmatch(r"https://\S+", url):
            sys.exit(f"expected an https:// URL of the repository, got {url!r}")
        config = CONFIG.read_text()
        head, block = config.split("\nrepository:\n", 1)
        CONFIG.write_text(head + "\nrepository:\n" + URL_LINE.sub(lambda m: m.group(1) + url, block, count=1))
    url = repository_url()
    for path in write_install_cells(url):
        print(f"rewrote the install cell of {path.relative_to(ROOT)}")
    print(f"repository: {url}")


if __name__ == "__main__":
    main(sys.argv[1:])
