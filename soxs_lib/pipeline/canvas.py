"""A small drawing surface for the QC plot, on Pillow: panels in data
coordinates with a frame, ticks, tick labels and titles, text in DejaVu Sans
(the font matplotlib ships, found without importing matplotlib).

Pillow rather than matplotlib: importing it and drawing three panels cost a
small part of a single run, so the plot never holds the run up (see the
benchmark's breakdown).
"""

from __future__ import annotations

from functools import lru_cache
import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

INK, PAPER = (0, 0, 0), (255, 255, 255)
TICK = 4                 # tick length, pixels
GAP = 3                  # between a tick and its label, pixels


@lru_cache(maxsize=None)
def font(size: int):
    """DejaVu Sans at ``size`` pixels (Pillow's own font if matplotlib's
    is not where matplotlib keeps it)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def nice_ticks(lo: float, hi: float, most: int = 6) -> np.ndarray:
    """At most ``most`` round values (steps of 1, 2, 2.5 or 5 times a power of
    ten) within [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.array([lo])
    mag = 10.0 ** math.floor(math.log10((hi - lo) / most))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10, 20) if (hi - lo) / (m * mag) <= most)
    first = math.ceil(lo / step) * step
    return np.arange(first, hi + step * 1e-9, step)


def tick_text(value: float, step: float) -> str:
    """A tick label with the decimals its step needs (0.25 steps: two)."""
    decimals = next((d for d in range(7) if abs(round(step, d) - step) <= 1e-9 * step), 6) \
        if step > 0 else 0
    return f"{value:.{decimals}f}".replace("-", "\u2212")


class Panel:
    """A rectangle of the canvas showing data: ``box`` (x0, y0, x1, y1) in
    pixels, y downwards; ``xlim``, ``ylim`` the data at its edges (``ylog``:
    a logarithmic y axis).  Every text it draws is kept in ``texts`` as
    (role, box) for the layout checks."""

    def __init__(self, canvas: Image.Image, box: tuple, xlim: tuple, ylim: tuple,
                 ylog: bool = False):
        self.canvas, self.draw = canvas, ImageDraw.Draw(canvas)
        self.box, self.xlim, self.ylim, self.ylog = box, xlim, ylim, ylog
        self.texts: list[tuple[str, tuple]] = []

    def y_px(self, y):
        """Pixel rows of data values ``y``."""
        lo, hi = self.ylim
        if self.ylog:
            y, lo, hi = np.log10(np.maximum(y, 1e-300)), math.log10(lo), math.log10(hi)
        return self.box[3] - (np.asarray(y) - lo) / (hi - lo) * (self.box[3] - self.box[1])

    def x_px(self, x):
        """Pixel columns of data values ``x``."""
        lo, hi = self.xlim
        return self.box[0] + (np.asarray(x) - lo) / (hi - lo) * (self.box[2] - self.box[0])

    def text(self, role: str, xy: tuple, text: str, size: int = 11, anchor: str = "la",
             fill=INK) -> None:
        """Text at ``xy`` (pixels), recorded under ``role``."""
        self.draw.text(xy, text, font=font(size), anchor=anchor, fill=fill)
        self.texts.append((role, self.draw.textbbox(xy, text, font=font(size), anchor=anchor)))

    def vtext(self, role: str, xy: tuple, text: str, size: int = 11) -> None:
        """Text read bottom to top, centred on ``xy``."""
        f = font(size)
        left, top, right, bottom = f.getbbox(text)
        strip = Image.new("RGBA", (right - left + 2, bottom - top + 2), (0, 0, 0, 0))
        ImageDraw.Draw(strip).text((1 - left, 1 - top), text, font=f, fill=INK)
        strip = strip.rotate(90, expand=True)
        at = (int(xy[0] - strip.width / 2), int(xy[1] - strip.height / 2))
        self.canvas.paste(strip, at, strip)
        self.texts.append((role, (at[0], at[1], at[0] + strip.width, at[1] + strip.height)))

    def frame(self) -> None:
        """The panel's border."""
        self.draw.rectangle(self.box, outline=INK)

    def xticks(self, ticks, labels) -> None:
        """Ticks below the panel at data x ``ticks``, labelled."""
        for x, label in zip(self.x_px(ticks), labels, strict=True):
            self.draw.line([(x, self.box[3]), (x, self.box[3] + TICK)], fill=INK)
            self.text("xtick", (x, self.box[3] + TICK + GAP), label, anchor="ma")

    def yticks(self, ticks, labels, right: bool = False) -> None:
        """Ticks left (or right) of the panel at data y ``ticks``, labelled."""
        edge = self.box[2] if right else self.box[0]
        sign = 1 if right else -1
        for y, label in zip(self.y_px(ticks), labels, strict=True):
            self.draw.line([(edge, y), (edge + sign * TICK, y)], fill=INK)
            self.text("ytick", (edge + sign * (TICK + GAP), y), label,
                      anchor="lm" if right else "rm")

    def labels(self, xlabel: str, ylabel: str, title: list[str]) -> None:
        """Axis labels outside the tick labels, and a title of one or more
        lines above the panel."""
        x0, y0, x1, y1 = self.box
        self.text("xlabel", ((x0 + x1) / 2, y1 + TICK + GAP + 16), xlabel, anchor="ma")
        left = min((b[0] for r, b in self.texts if r == "ytick"), default=x0)
        self.vtext("ylabel", (left - 10, (y0 + y1) / 2), ylabel)
        for k, line in enumerate(reversed(title)):
            self.text("title", ((x0 + x1) / 2, y0 - 6 - 16 * k), line, size=13, anchor="md")

    def image(self, rgb: np.ndarray) -> None:
        """An (rows, columns, 3) uint8 image filling the panel, row 0 at the
        bottom, each pixel a block."""
        x0, y0, x1, y1 = self.box
        img = Image.fromarray(np.ascontiguousarray(rgb[::-1]))
        self.canvas.paste(img.resize((x1 - x0, y1 - y0), Image.NEAREST), (x0, y0))
