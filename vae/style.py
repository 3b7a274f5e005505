"""The book's figure style: sizes that read in the text column, and colours that survive colour blindness.

A figure is drawn in inches and shown at ``CSS_PX_PER_INCH`` CSS pixels per inch, so a figure
``COLUMN_WIDTH`` inches wide fills the book's text column (about 690 CSS pixels on a desktop) at
100 %: a 9-point tick label is then 12.5 pixels tall on screen. `use_book_style` sets the sizes and
colours and makes notebooks show every figure as a PNG at twice that resolution (sharp on high-DPI
screens) whose HTML size is given, so the page does not jump while it loads and the book links each
figure to its full-size file. The PNG records the height of its smallest text
(``MIN_TEXT_KEY``), which the website test turns into the size a reader sees. Matplotlib is imported
only when a function here runs, so ``import vae`` (and modules without figures, such as ``vae.em``)
does not load it.

The ten digit classes get `DIGIT_COLOURS` (Paul Tol's "muted" scheme, with a dark grey for the
tenth class) and `DIGIT_MARKERS`, a second cue for readers who cannot tell two colours apart.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from cycler import cycler

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLUMN_WIDTH = 6.8  # inches: the text column of the website at CSS_PX_PER_INCH
CSS_PX_PER_INCH = 100  # how large the website shows one inch of a figure, in CSS pixels
PNG_SCALE = 2  # image pixels per CSS pixel, for high-DPI screens
MIN_TEXT_KEY = "min-text-px"  # PNG text key: height of the smallest text, in CSS pixels at 100 %

DIGIT_COLOURS = (
    "#332288",  # 0 indigo
    "#88CCEE",  # 1 cyan
    "#44AA99",  # 2 teal
    "#117733",  # 3 green
    "#999933",  # 4 olive
    "#DDCC77",  # 5 sand
    "#CC6677",  # 6 rose
    "#882255",  # 7 wine
    "#AA4499",  # 8 purple
    "#555555",  # 9 dark grey
)
DIGIT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", "p", ">")

# Okabe and Ito's colour-blind-safe qualitative colours, for lines and categories other than digits.
LINE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

BOOK_STYLE = {
    "figure.figsize": (COLUMN_WIDTH, 3.2),
    "figure.dpi": CSS_PX_PER_INCH,
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 11,
    "axes.prop_cycle": cycler(color=LINE_COLOURS),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "savefig.facecolor": "white",
    "savefig.pad_inches": 0.03,  # the crop's margin: a figure COLUMN_WIDTH wide still fits the column
}


def min_text_pt(fig: Figure) -> float | None:
    """The size in points of the smallest visible, non-empty text in ``fig`` (None if it has no text)."""
    from matplotlib.text import Text

    sizes = [text.get_fontsize() for text in fig.findobj(Text) if text.get_visible() and text.get_text().strip()]
    return min(sizes, default=None)


def png(fig: Figure) -> tuple[str, dict[str, int]]:
    """``fig`` as a base64-encoded PNG at `PNG_SCALE` times the website's resolution, and its size in CSS pixels.

    The PNG carries the height of its smallest text in CSS pixels under `MIN_TEXT_KEY` (absent
    for a figure without text). This is the notebook display formatter that `use_book_style` installs.
    """
    fig.draw_without_rendering()  # tick labels get their text when the figure is drawn
    smallest = min_text_pt(fig)
    metadata = {} if smallest is None else {MIN_TEXT_KEY: f"{smallest * CSS_PX_PER_INCH / 72:.2f}"}
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_SCALE * CSS_PX_PER_INCH, bbox_inches="tight", metadata=metadata)
    data = buffer.getvalue()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    return base64.b64encode(data).decode("ascii"), {"width": round(width / PNG_SCALE), "height": round(height / PNG_SCALE)}


def use_book_style() -> None:
    """Set the book's figure sizes, fonts and colours, and show figures in notebooks with `png`.

    Every chapter calls this once at the top. Outside IPython only the style is set.
    """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # Load the notebook's backend now (pyplot loads it only for the first figure): it installs its own
    # PNG formatter, which the one below must replace.
    plt.switch_backend(plt.get_backend())
    plt.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, png)
