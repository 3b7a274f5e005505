"""Headless Chromium (or Chrome) under Playwright, for the book's tooling and its website tests.

`find_chromium` looks for the browser wherever it is installed; `open_browser` starts it headless
with a fresh profile and no network chatter. ``book/pdf.py`` prints the site with it and
``tests/sitecheck.py`` checks the site with it. Playwright is imported only when a browser opens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Command names under which Chromium or Chrome is installed, on Linux and elsewhere, in the order tried;
# then the application bundle where macOS keeps Chrome.
BROWSER_COMMANDS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
MACOS_CHROME = Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
# Where a browser lives without a command on the PATH: macOS's Chromium, Windows' Chrome, and the
# Chromium that ``playwright install chromium`` downloads into its cache.
OTHER_PLACES = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "C:/Program Files/Google/Chrome/Application/chrome.exe",
    "C:/Program Files (x86)/Google/Chrome/Application/chrome.exe",
    "~/.cache/ms-playwright/chromium-*/chrome-linux*/chrome",
    "~/Library/Caches/ms-playwright/chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
)
BROWSER_ENV = "VAE_BOOK_BROWSER"  # the browser's executable, if it is none of the above
HOW_TO_INSTALL = "install Chromium (apt-get install chromium, brew install --cask chromium) or Google Chrome"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETTLE_TIMEOUT_MS = 30_000  # for MathJax, fonts and images, once a page has loaded


def find_chromium() -> Path | None:
    """The executable of the first Chromium or Chrome found (the file `BROWSER_ENV` names, then
    `BROWSER_COMMANDS` on the ``PATH``, `MACOS_CHROME` and `OTHER_PLACES`), or None when there is none."""
    named = os.environ.get(BROWSER_ENV)
    if named:
        return Path(named) if Path(named).is_file() else None
    for command in BROWSER_COMMANDS:
        found = shutil.which(command)
        if found:
            return Path(found)
    if MACOS_CHROME.is_file():
        return MACOS_CHROME
    for place in OTHER_PLACES:
        expanded = Path(place).expanduser()
        matches = sorted(Path(expanded.anchor).glob(str(expanded.relative_to(expanded.anchor))), reverse=True)
        if matches and matches[0].is_file():
            return matches[0]
    return None


@contextlib.contextmanager
def open_browser(executable: Path | None = None) -> Iterator[Browser]:
    """Start headless Chromium under Playwright, with a fresh profile, and close it afterwards.

    ``executable`` defaults to what `find_chromium` finds; FileNotFoundError when there is none.
    Scroll bars are drawn as a reader's browser draws them (Playwright hides them by default), so
    that a box that scrolls can be told from one that cuts its content off.
    """
    executable = executable or find_chromium()
    if executable is None:
        raise FileNotFoundError(f"no Chromium or Chrome found: {HOW_TO_INSTALL}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, ignore_default_args=["--hide-scrollbars"]
        )
        try:
            yield browser
        finally:
            browser.close()
