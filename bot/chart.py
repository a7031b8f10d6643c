"""A small PNG line chart of readiness over time, written with zlib alone.

The digest needs one picture, drawn once per round: a dependency the size of matplotlib (and its
import time) buys nothing here. The chart has no text; the digest message and the file's title
and alt text carry the numbers.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence

WIDTH, HEIGHT = 600, 200
MARGIN = 12
WHITE = (255, 255, 255)
GRID = (225, 228, 232)
LINE = (29, 155, 209)
DOT = (18, 100, 163)
READY = (46, 182, 125)

Pixel = tuple[int, int, int]


def readiness_png(percents: Sequence[float], width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A PNG of percents (0-100, oldest first): grid lines at every 25 %, the 100 % line in
    green, one dot per digest joined by a line. One point is drawn as a dot."""
    canvas = [[WHITE] * width for _ in range(height)]
    top, bottom = MARGIN, height - MARGIN
    left, right = MARGIN, width - MARGIN

    def y_of(percent: float) -> int:
        clamped = min(100.0, max(0.0, percent))
        return round(bottom - (bottom - top) * clamped / 100.0)

    for level in (0, 25, 50, 75):
        _hline(canvas, left, right, y_of(level), GRID)
    _hline(canvas, left, right, y_of(100), READY)
    if percents:
        step = (right - left) / max(1, len(percents) - 1)
        points = [
            (round(left + i * step) if len(percents) > 1 else (left + right) // 2, y_of(p))
            for i, p in enumerate(percents)
        ]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            _line(canvas, x0, y0, x1, y1, LINE)
        for x, y in points:
            _dot(canvas, x, y, DOT)
    return _png(canvas, width, height)


def _set(canvas: list[list[Pixel]], x: int, y: int, color: Pixel) -> None:
    if 0 <= y < len(canvas) and 0 <= x < len(canvas[0]):
        canvas[y][x] = color


def _hline(canvas: list[list[Pixel]], x0: int, x1: int, y: int, color: Pixel) -> None:
    for x in range(x0, x1 + 1):
        _set(canvas, x, y, color)


def _line(canvas: list[list[Pixel]], x0: int, y0: int, x1: int, y1: int, color: Pixel) -> None:
    """Bresenham, two pixels thick."""
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        _set(canvas, x0, y0, color)
        _set(canvas, x0, y0 + 1, color)
        if x0 == x1 and y0 == y1:
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def _dot(canvas: list[list[Pixel]], x: int, y: int, color: Pixel, r: int = 3) -> None:
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                _set(canvas, x + dx, y + dy, color)


def _png(canvas: list[list[Pixel]], width: int, height: int) -> bytes:
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in canvas)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
